"""Shape lint: warnings for configs that silently do something other than they seem to."""
from __future__ import annotations

from dataclasses import dataclass

from .graph import ZooModel


@dataclass(frozen=True)
class LintWarning:
    row: int | None
    text: str


def lint_model(model: ZooModel) -> tuple[LintWarning, ...]:
    """Checks that need the built graph (filled in by the module-family work)."""
    return ()
