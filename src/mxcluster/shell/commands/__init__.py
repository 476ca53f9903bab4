"""Every shell command; importing this package registers them all in ``REGISTRY``."""

from mxcluster.shell.commands import (  # noqa: F401
    blocks,
    general,
    history,
    listeners,
    mail,
    unsub,
    users,
    yamlcmds,
)
