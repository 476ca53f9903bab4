"""The SSH service of one machine (SPEC §3.1): the appliance shell over SSH.

Layers::

    SSHService        lifecycle: listen on address:port, stop (server.py)
      LoginServer     one per connection: password / public-key login against the user
                      database, slowed down and limited by a LoginThrottle (server.py)
        AdminSession  one per channel (session.py):
                        exec request          -> batch: the lines run in one Session
                        shell with a PTY      -> interactive prompt_toolkit shell
                        shell without a PTY   -> batch read from stdin

Every call into the ``Machine`` and the ``Shell`` goes through ``run_in_store`` (the
store's single thread); the asyncio loop only moves bytes.
"""

from mxcluster.sshd.server import SSHService
from mxcluster.sshd.session import RunInStore

__all__ = ["RunInStore", "SSHService"]
