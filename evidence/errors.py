"""The small exception hierarchy: every error a user can cause has a stable code, a message and a hint."""

from __future__ import annotations

# Documented exit codes (README "Exit codes").
EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3
EXIT_INTERNAL = 4
EXIT_UNSIGNED = 5  # verify: a public key was given but the pack carries no signature
EXIT_BAD_SIGNATURE = 6  # verify: invalid signature, or made by another key
EXIT_UNVERIFIED = 7  # verify: intact, but authenticity not established (no trust anchor given)


class AuditpackError(Exception):
    """Base class: `code` is stable (for scripts and docs), `hint` says how to fix it."""

    code = "AP000"
    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InputError(AuditpackError):
    """Bad input from the user: a file, a flag, a directory."""

    code = "AP100"


class SnapshotError(InputError):
    """A snapshot file that cannot be read or parsed."""

    code = "AP101"


class ScopeError(InputError):
    """An invalid scope file."""

    code = "AP102"


class ControlError(InputError):
    """An invalid control or framework file, including CEL syntax and type errors."""

    code = "AP103"


class PackError(InputError):
    """A pack directory that cannot be written or read."""

    code = "AP104"


class CollectionError(AuditpackError):
    """The cluster could not be read completely (unreachable, credentials rejected)."""

    code = "AP300"
    exit_code = EXIT_INCOMPLETE


class InternalError(AuditpackError):
    """A bug in auditpack, named as precisely as we can: the stage and the object it was processing."""

    code = "AP400"
    exit_code = EXIT_INTERNAL
