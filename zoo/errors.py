"""The one exception a user sees: where in which file, and what is wrong."""
from __future__ import annotations

import re
from typing import Any

# C0/C1 control characters and the bidirectional overrides: a name or value quoted in an error must not
# move the cursor, recolour the terminal or reorder the line it is printed on.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with control characters written as escapes (\\x1b, \\n, \\u202e)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def shown(value: Any, width: int = 60) -> str:
    """repr() cut to `width` characters: an error line quotes a value, not a 5,000-digit number (also one
    inside a list or a mapping, which repr() would refuse to write)."""
    text = _repr(value, 4)
    return text if len(text) <= width else text[:width - 3] + "..."


def _repr(value: Any, depth: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"{'-' if value < 0 else ''}2**{abs(value).bit_length() - 1}+"  # repr() may refuse it
    if isinstance(value, (list, tuple, dict)):
        if depth == 0:
            return "[...]" if isinstance(value, list) else "(...)" if isinstance(value, tuple) else "{...}"
        items = list(value.items())[:20] if isinstance(value, dict) else list(value)[:20]
        if isinstance(value, dict):
            inner = ", ".join(f"{_repr(k, depth - 1)}: {_repr(v, depth - 1)}" for k, v in items)
        else:
            inner = ", ".join(_repr(v, depth - 1) for v in items)
        more = ", ..." if len(value) > 20 else ""
        if isinstance(value, list):
            return f"[{inner}{more}]"
        if isinstance(value, tuple):
            return f"({inner}{',' if len(value) == 1 else ''}{more})"
        return f"{{{inner}{more}}}"
    return repr(value)


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
    def where(self) -> str:
        where = self.file
        if self.row is not None:
            where += f": row {self.row}"
            if self.module:
                where += f" ({self.module})"
            if self.line is not None:
                where += f" [line {self.line}]"
        elif self.line is not None:
            where += f":{self.line}"
        return where

    @property
    def message(self) -> str:
        return printable(f"{self.where}: {self.text}")

    @property
    def cli_message(self) -> str:
        """The message as the command line reports it (options named as flags)."""
        return self.message

    def __str__(self) -> str:
        return self.message


class OptionError(ConfigError):
    """A bad option value: the API names the parameter (`imgsz=300`), the CLI the flag (`--imgsz 300`)."""

    def __init__(self, file: str | None, param: str, value: Any, text: str) -> None:
        self.param = param
        self.value = value
        super().__init__(file, text)

    @property
    def where(self) -> str:
        return "" if self.file == "<config>" else super().where  # an option may concern no file

    @property
    def message(self) -> str:
        return printable(f"{self.where}: " * bool(self.where) + f"{self.param}={shown(self.value)} {self.text}")

    @property
    def cli_message(self) -> str:
        flag = "--" + self.param.replace("_", "-")
        given = self.value if isinstance(self.value, str) else shown(self.value)  # as typed on the command line
        return printable(f"{self.where}: " * bool(self.where) + f"{flag} {given} {self.text}")
