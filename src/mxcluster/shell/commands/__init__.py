"""Every shell command; importing this package registers them all in ``REGISTRY``."""

from mxcluster.shell.commands import (  # noqa: F401
    blocks,
    check,
    cluster,
    general,
    history,
    joining,
    listeners,
    mail,
    unsub,
    users,
    yamlcmds,
)
