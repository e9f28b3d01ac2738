"""Resolve a row's YAML arguments without ever evaluating them."""
from __future__ import annotations

import ast
import re
from typing import Any, Mapping

from .activation import parse_activation
from .errors import shown
from .limits import number_problem

_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_CONSTANTS = {"None": None, "True": True, "False": False}


def resolve_arg(value: Any, names: Mapping[str, Any]) -> Any:
    """One argument: names from the config (`nc`, `anchors`), literals, plain words, activations.

    Raises ValueError with the offending text for anything else (expressions, calls, attributes) and
    for numbers out of range (zoo.limits.MAX_ARG, not finite): they would overflow or allocate unboundedly.
    """
    if isinstance(value, list):
        return [_check_nested(v) for v in value]
    if not isinstance(value, str):
        return _check_nested(value)
    text = value.strip()
    if text in names:
        return names[text]
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    if text.startswith("nn."):
        return parse_activation(text)
    try:
        literal = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        literal = _NOT_LITERAL
    if literal is not _NOT_LITERAL:
        return _check_nested(literal)
    if _WORD.match(text):
        return text  # a plain word such as 'nearest' or 'relu': passed on as a string
    raise ValueError(f"argument {shown(value)} is not a literal, a known name (nc, anchors) or an allowed activation")


_NOT_LITERAL = object()


def _check_nested(value: Any) -> Any:
    """Nested values must be plain data; strings inside lists are only plain words."""
    if isinstance(value, (list, tuple)):
        return [_check_nested(v) for v in value]
    if isinstance(value, str):
        if _WORD.match(value):
            return value
        raise ValueError(f"argument {shown(value)} is not a plain word or number")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        problem = number_problem(value)
        if problem is not None:
            raise ValueError(f"argument {problem}")
        return value
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"argument {shown(value)} has an unsupported type {type(value).__name__}")
