"""The one exception a user sees: where in which file, and what is wrong."""
from __future__ import annotations


class ConfigError(Exception):
    """A config cannot be loaded or built.

    Carries the file, the row (global index, as the model summary numbers rows) or the YAML line
    where no row applies, so the CLI can print one actionable line.
    """

    def __init__(self, file: str | None, text: str, *, row: int | None = None,
                 module: str | None = None, line: int | None = None) -> None:
        self.file = file or "<config>"
        self.text = text
        self.row = row
        self.module = module
        self.line = line
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = self.file
        if self.row is not None:
            where += f": row {self.row}"
            if self.module:
                where += f" ({self.module})"
            if self.line is not None:
                where += f" [line {self.line}]"
        elif self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.text}"

    def __str__(self) -> str:
        return self.message
