"""The appliance shell: a command registry (click commands) and a line dispatcher.

``Shell.execute(line)`` runs one command for one ``Session`` and returns an ``Outcome``
(stdout, stderr, exit code). The SSH service, ``mxcluster cli`` and the tests all use it;
the interactive front end (prompt_toolkit) only adds line editing, history and completion.
"""

from mxcluster.shell.core import Outcome, Prompter, Result, Shell

__all__ = ["Outcome", "Prompter", "Result", "Shell"]
