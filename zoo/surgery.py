"""Config surgery: insert, replace or delete a row of a YAML config and keep every `from` pointing at
the same layer.

Works on the plain YAML data (the mapping `zoo.yamlio` reads) and returns new data; the input is
never changed. Every row is checked by `zoo.config.check_row` (the loader's row validator) where it stands. Rows are numbered globally, backbone then head, as the model summary numbers them.
Renumbering rules:
- insert after I: the new row goes into I's section at I+1 and reads I through its own `from`; the row
  that read I through `-1` (the old row I+1) now reads the new row (the chain). Every other reference
  keeps its layer: absolute indices above I grow by one, relative ones that span the insertion grow too.
- delete I: references above I shrink by one. A `-1` that pointed at I points at I's input when I had
  exactly one; any other reference to I is an error that names the reading row.
- replace I: numbering is unchanged; the new row's `from` is read relative to I.
A `scales` file edited at one scale (a built-in name such as yolov5l-gfpn, or an explicit choice) has
that scale written out by `pin_scale`, so the edited file builds the same model whatever it is named.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from . import yamlio
from .builder import build_model
from .config import check_row, family_of, locate
from .errors import ConfigError
from .registry import REGISTRY
from .yamlio import SECTIONS


@dataclass(frozen=True)
class _Slot:
    section: str
    row: list[Any]


def load(path: str | Path) -> dict[str, Any]:
    """Read a config file or a built-in's file (zoo.config.locate) with zoo.yamlio."""
    data = yamlio.read_file(locate(path)[0], source=str(path)).data
    if not isinstance(data, dict) or not isinstance(data.get("backbone"), list):
        raise ConfigError(str(path), "a config must be a mapping with a 'backbone' list of rows")
    return data


def builtin_scale(source: str | Path) -> str | None:
    """The scale a built-in name stands for (yolov5l-gfpn -> "l"); None for a file or a one-scale name."""
    return locate(source)[2]


def pin_scale(data: Mapping[str, Any], scale: str | None, *, file: str | None = None) -> dict[str, Any]:
    """New data whose only scale is `scale`, written where `scales` was.

    A [depth, width] scale becomes depth_multiple/width_multiple; a scale with max_channels (which has no
    top-level key), or one of a family whose blocks read the scale's name (FamilySpec.scale_by_name, e.g.
    Ultralytics), keeps `scales` with that key alone.
    Either way the loader has one choice left, so the file's name no longer picks the scale.
    With `scale` None the data is returned unchanged (a copy).
    """
    out = {k: copy.deepcopy(v) for k, v in data.items()}
    if scale is None:
        return out
    scales = data.get("scales")
    if scales is None:
        raise ConfigError(file, f"scale {scale!r} chosen but the config has no 'scales'")
    if not isinstance(scales, Mapping) or not scales:
        raise ConfigError(file, "scales: must map scale names to [depth, width(, max_channels)]")
    key = next((k for k in scales if str(k) == str(scale)), None)
    if key is None:
        raise ConfigError(file, f"scale {scale!r} is not in the config's scales "
                                f"({', '.join(str(k) for k in scales)})")
    value = copy.deepcopy(scales[key])
    # a family whose blocks read the scale's name keeps it; a [depth, width] scale of others becomes multiples
    by_name = REGISTRY.family(family_of(data, file or "<config>")).scale_by_name
    as_multiples = not by_name and isinstance(value, list) and len(value) == 2
    pinned: dict[str, Any] = {}
    for k, v in out.items():
        if k != "scales":
            pinned[k] = v
        elif as_multiples:
            pinned["depth_multiple"], pinned["width_multiple"] = value
        else:
            pinned["scales"] = {key: value}
    return pinned


def parse_row(text: str) -> Any:
    """A `--row` text such as "[-1, 2, GhostModuleV3, [512, 3]]", read by zoo.yamlio; the row is checked
    where it is placed (insert_after, replace)."""
    return yamlio.read_text(text, source="--row").data


def check_builds(data: Mapping[str, Any], *, file: str | None = None) -> None:
    """Build `data` on the meta device at every scale it still holds (one after `pin_scale`).

    A ConfigError names `file` (where the result goes), the scale when there are several, and the row.
    """
    scales = data.get("scales")
    for scale in (list(scales) if isinstance(scales, dict) and scales else [None]):
        try:
            build_model(data, scale=None if scale is None else str(scale), device="meta")
        except ConfigError as e:
            at = f" at scale {scale}" if scale is not None and len(scales) > 1 else ""
            raise ConfigError(file, f"the edited config does not build{at}: {e.text}", row=e.row,
                              module=e.module) from None


def insert_after(data: Mapping[str, Any], index: int, row: list[Any], *,
                 file: str | None = None) -> dict[str, Any]:
    """New data with `row` at index+1, in row `index`'s section, chained after it."""
    slots = _slots(data, file)
    _check_index(index, slots, file)
    new_pos = index + 1
    row = _check_row(copy.deepcopy(row), file, new_pos)

    def move(pos: int, f: int) -> int:
        old = pos + f if f < 0 else f
        if pos == index + 1 and f == -1:  # the chain: the old next row now reads the inserted one
            return -1
        new_target = old + 1 if old > index else old
        return new_target - (pos + 1) if f < 0 else new_target

    out = [_Slot(s.section, _renumber(s.row, lambda f, p=pos: move(p, f))) if pos > index else s
           for pos, s in enumerate(slots)]
    out.insert(new_pos, _Slot(slots[index].section, row))
    return _assemble(data, out)


def replace(data: Mapping[str, Any], index: int, row: list[Any], *, file: str | None = None) -> dict[str, Any]:
    """New data with row `index` replaced; nothing else changes."""
    slots = _slots(data, file)
    _check_index(index, slots, file)
    slots[index] = _Slot(slots[index].section, _check_row(copy.deepcopy(row), file, index))
    return _assemble(data, slots)


def delete(data: Mapping[str, Any], index: int, *, file: str | None = None) -> dict[str, Any]:
    """New data without row `index`; its readers are re-pointed or named in a ConfigError."""
    slots = _slots(data, file)
    _check_index(index, slots, file)
    gone = slots[index]
    froms = _froms(gone.row[0])
    single = (index + froms[0] if froms[0] < 0 else froms[0]) if len(froms) == 1 else None
    section_rows = sum(s.section == gone.section for s in slots)
    if section_rows == 1:
        raise ConfigError(file, f"deleting it would leave the {gone.section} empty", row=index,
                          module=str(gone.row[2]))

    def move(pos: int, f: int) -> int:
        old = pos + f if f < 0 else f
        new_pos = pos - 1
        if old == index:
            if f == -1 and single is not None:
                return single - new_pos
            reason = ("it has several inputs" if f == -1 else
                      "only a -1 can follow a deleted row to its input")
            raise ConfigError(file, f"row {pos} ({slots[pos].row[2]}) reads this row through from {f}; "
                              f"{reason}: point row {pos} elsewhere first", row=index, module=str(gone.row[2]))
        new_target = old - 1 if old > index else old
        return new_target - new_pos if f < 0 else new_target

    out = [_Slot(s.section, _renumber(s.row, lambda f, p=pos: move(p, f))) if pos > index else s
           for pos, s in enumerate(slots) if pos != index]
    return _assemble(data, out)


# -- helpers -----------------------------------------------------------------------------------------

def _froms(f: Any) -> list[int]:
    return [f] if isinstance(f, int) else list(f)


def _renumber(row: list[Any], move: Callable[[int], int]) -> list[Any]:
    f = row[0]
    new_from: Any = move(f) if isinstance(f, int) else [move(x) for x in f]
    return [new_from, *copy.deepcopy(row[1:])]


def _slots(data: Mapping[str, Any], file: str | None) -> list[_Slot]:
    if not isinstance(data, Mapping) or not isinstance(data.get("backbone"), list):
        raise ConfigError(file, "a config must be a mapping with a 'backbone' list of rows")
    slots: list[_Slot] = []
    for section in SECTIONS:
        rows = data.get(section)
        if rows is None:
            continue
        if not isinstance(rows, list):
            raise ConfigError(file, f"{section} must be a list of [from, repeats, module, args] rows")
        for row in rows:
            slots.append(_Slot(section, _check_row(copy.deepcopy(row), file, len(slots))))
    return slots


def _check_index(index: Any, slots: list[_Slot], file: str | None) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(slots):
        raise ConfigError(file, f"row {index!r} does not exist (the config has rows 0..{len(slots) - 1})")


def _check_row(row: Any, file: str | None, index: int) -> list[Any]:
    """The loader's row validator (same limits), on the row as it will stand at `index`."""
    check_row(row, index, file=file)
    return row


def _assemble(data: Mapping[str, Any], slots: list[_Slot]) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in data.items()}
    for section in SECTIONS:
        if section in out:
            out[section] = [s.row for s in slots if s.section == section]
    return out
