"""mxcluster: a peer-to-peer cluster manager for SMTP mail gateways.

Layers (dependencies point downwards only)::

    cli (console script: setup, serve, cli client)
      daemon            the composition root: wires everything for one machine
        sshd, shell     administration surfaces (SSH service, command shell)
          service       the service layer: sessions, staging, commit, roles
            users       roles, password hashing, login throttling
            unsubscribe entry grammar and matching (pure)
            config      setting-block registry, levels, changesets, HLC, SQLite store
              errors    the one exception tree

Pure modules (no I/O): config.levels, config.hlc, config.registry, config.resolve,
config.changeset, unsubscribe.entries, users.roles, users.throttle.
"""

__version__ = "0.1.0"
