"""Error types. Every error a user can trigger says *what* is wrong and *where*."""

from __future__ import annotations


class SkelrepError(Exception):
    """Base class for errors raised deliberately by skelrep."""


class DataError(SkelrepError):
    """Bad input data. Names the file and, for text formats, the 1-based line."""

    def __init__(self, path: str, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")

    def __reduce__(self):
        # Keep the structured fields when the error crosses a worker-process boundary.
        return (type(self), (self.path, self.reason, self.line))


class ParamsError(SkelrepError):
    """Invalid params.yaml value. Names the dotted key and what is allowed."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.reason = message
        super().__init__(f"params.yaml: {key}: {message}")

    def __reduce__(self):
        return (type(self), (self.key, self.reason))
