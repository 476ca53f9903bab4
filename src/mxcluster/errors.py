"""The one exception tree of mxcluster.

Every error renders a message that says what happened, with which value, and what to
do; each carries the exit code the shell and ``mxcluster cli`` report (SPEC §3)::

    MxclusterError                  exit 1   base of everything we raise on purpose
    ├── UsageError                  exit 2   malformed command line, unknown command
    ├── ValidationError             exit 1   bad configuration input (lists every problem)
    ├── NotFoundError               exit 1   a named thing (block, user, commit...) is absent
    ├── ConflictError               exit 1   a staged block changed underneath (commit)
    ├── StateError                  exit 1   the machine is in the wrong state for this
    ├── AuthError                   exit 3   authentication failed
    │   └── PermissionDenied        exit 3   authenticated, but the role does not allow it
    └── UnreachableError            exit 4   cannot reach the machine or peer
"""

from __future__ import annotations

from collections.abc import Iterable


class MxclusterError(Exception):
    """Base class; ``str(err)`` is the operator-facing message."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message

    def to_dict(self) -> dict[str, object]:
        """The one JSON error shape used by the shell's --json output and the API."""
        return {"error": type(self).__name__, "message": str(self), "exit_code": self.exit_code}


class UsageError(MxclusterError):
    """The command line is malformed: unknown command, missing or bad argument."""

    exit_code = 2


class ValidationError(MxclusterError):
    """Configuration input is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: Iterable[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        lines = "; ".join(self.problems) if len(self.problems) <= 3 else (
            "\n  " + "\n  ".join(self.problems)
        )
        super().__init__(f"invalid configuration: {lines}", hint=hint)


class NotFoundError(MxclusterError):
    """A named object does not exist."""


class ConflictError(MxclusterError):
    """Staged blocks were changed by someone else since this session read them."""

    def __init__(self, conflicts: list[str]) -> None:
        self.conflicts = conflicts
        super().__init__(
            "changed underneath since you read them: " + ", ".join(conflicts),
            hint="run 'commit --force' to overwrite, or 'clearchanges' to discard your edits",
        )


class StateError(MxclusterError):
    """The machine or cluster is not in a state that allows this operation."""


class AuthError(MxclusterError):
    """Authentication failed (wrong user, password or key)."""

    exit_code = 3


class PermissionDenied(AuthError):
    """The user is authenticated but the role does not allow the command."""


class UnreachableError(MxclusterError):
    """The machine (or a peer) cannot be reached."""

    exit_code = 4
