"""The one exception type for errors a user can fix, turned into exit code 2 by the CLI."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: a file, a field path inside it, and what is wrong.

    The CLI prints ``str(err)`` as a single line and exits with code 2.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.message = message.replace("\n", " ").strip()
        self.source = source
        self.field = field
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """``file: field: message`` with the parts that are known."""
        parts = [p for p in (self.source, self.field) if p]
        return ": ".join([*parts, self.message])


class RunFailed(Exception):
    """An external step (terraform, ansible, a load run) failed; exit code 1, message as given."""
