"""Input size: one choice per candidate (`--imgsz 256,320,384` or `256:416[:step]`), each a multiple of
the model's max stride; costs, objectives, latency tables and budgets are priced at the candidate's own
size (its plan is made at it). Without the setting the study's one size is used."""
from __future__ import annotations

from typing import Any

from zoo.config import Config
from zoo.limits import MAX_IMGSZ

from .base import Candidate, Dimension, Knob, SpaceBase, Uniform, nearest, register_dimension

MAX_SIZES = 64  # sizes one study may search (a range with a small step would make thousands)


def parse_sizes(value: Any) -> list[int] | str:
    """A list of sizes, or a range "A:B" / "A:B:STEP" (STEP default: the max stride, known with the model)."""
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"a range is FROM:TO or FROM:TO:STEP in pixels, got {value!r}")
        a, b, *step = (int(p) for p in parts)
        if not 1 <= a <= b <= MAX_IMGSZ or (step and step[0] < 1):
            raise ValueError(f"range {value!r}: need 1 <= FROM <= TO <= {MAX_IMGSZ} and STEP >= 1")
        if step and (b - a) // step[0] + 1 > MAX_SIZES:
            raise ValueError(f"range {value!r} holds over {MAX_SIZES} sizes")
        return value
    if (not isinstance(value, list) or not value or len(value) > MAX_SIZES
            or any(isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= MAX_IMGSZ for x in value)):
        raise ValueError(f"must be a list of 1..{MAX_SIZES} sizes in pixels (1..{MAX_IMGSZ}) or FROM:TO[:STEP], "
                         f"got {value!r}")
    return sorted(set(value))


def expand_sizes(value: list[int] | str, stride: int) -> list[int]:
    if isinstance(value, list):
        return value
    a, b, *step = (int(p) for p in value.split(":"))
    st = step[0] if step else stride
    first = -(-a // stride) * stride if not step else a
    sizes = list(range(first, b + 1, st))
    if len(sizes) > MAX_SIZES:
        raise ValueError(f"range {value!r} holds {len(sizes)} sizes, over {MAX_SIZES}")
    return sizes


@register_dimension
class ImageSize(Dimension):
    name = "imgsz"
    key = "imgsz"
    order = 60

    def parse(self, value: Any) -> Any:
        return parse_sizes(value)

    def knobs(self, base: SpaceBase) -> tuple[Knob, ...]:
        value = base.setting(self.key)
        if value is None:
            return ()
        stride = max((int(round(rp.stride)) for rp in base.plan.rows if rp.stride), default=1)
        sizes = expand_sizes(value, stride)
        bad = [s for s in sizes if s % stride]
        if bad or not sizes:
            raise ValueError(f"{', '.join(map(str, bad)) or 'no size'}: every size must be a multiple of the "
                             f"max stride {stride}")
        return (Knob(self.name, "imgsz", "input size", (), tuple(sizes), max(sizes)),)

    def apply(self, knob: Knob, value: Any, cand: Candidate, config: Config) -> Candidate:
        from dataclasses import replace

        return replace(cand, imgsz=int(value))

    def uniform_index(self, knob: Knob, u: Uniform, config: Config) -> int:
        return nearest(knob.choices, u.imgsz if u.imgsz is not None else knob.base)
