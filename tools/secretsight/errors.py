"""One error root, carrying where the problem is (file and line) when known."""

from __future__ import annotations


class SecretSightError(Exception):
    """A user-facing error: bad input, bad config, bad rule. The CLI prints it and exits 2."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = self.file or ""
        if self.file and self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.message}" if where else self.message
