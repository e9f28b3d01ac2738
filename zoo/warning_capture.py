"""Python and torch warnings raised while zoo works, kept as data so the face can print each one as a
single `warning: ...` line (torch's own format is two lines with a source path)."""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Iterator

from .errors import printable


@dataclass
class CapturedWarnings:
    """The warnings recorded so far by `capture_warnings` (filled while its block runs)."""

    records: list[warnings.WarningMessage] = field(default_factory=list)

    @property
    def lines(self) -> tuple[str, ...]:
        """One line per distinct warning, in the order first raised: `Category: first line of the message`."""
        out: dict[str, None] = {}
        for r in self.records:
            text = str(r.message).strip().splitlines()
            out.setdefault(printable(f"{r.category.__name__}: {text[0] if text else ''}".rstrip(": ")))
        return tuple(out)


@contextlib.contextmanager
def capture_warnings() -> Iterator[CapturedWarnings]:
    """Record every warning raised in the block (none printed); read `.lines` afterwards."""
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        yield CapturedWarnings(records)
