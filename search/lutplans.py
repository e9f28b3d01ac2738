"""What a latency table is built for: configs, and random candidates of their search spaces.

Each config is a calibration model (measured whole); so are the first `calibrate` sampled candidates of
each, spread over the space, so that the fit sees small and large models. The candidates are the
space's own plans at the table's image size (search.space.SearchSpace.sample, seeded), the same ones a
rerun draws, so an interrupted build resumes over the same rows.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

from profiles.lut import LatencyTable, LutError, LutWarning, plan_refs
from profiles.lutbuild import BuildSource
from zoo.config import load_config
from zoo.plan import plan_config

from .settings import load_settings
from .space import build_space

DEFAULT_CALIBRATE = 24  # sampled candidates per config measured whole (besides the config itself)
BUILD_SEED = 0  # `zoo lut build`'s draws of a space: the table's own candidates


def source_name(cfg: Any, imgsz: int, sample: int | None = None, seed: int = BUILD_SEED) -> str:
    """A model's name in a table's records: the config's file stem at the size ("yolov5s@320"); a sampled
    candidate's adds its index among the space's draws and their seed ("yolov5s@320 sample 7 (seed 2)")."""
    name = f"{Path(cfg.name).stem}@{imgsz}"
    return name if sample is None else f"{name} sample {sample} (seed {seed})"


def lut_sources(configs: Sequence[Any], *, imgsz: int, samples: int = 0, space_file: str | None = None,
                seed: int = BUILD_SEED, calibrate: int = DEFAULT_CALIBRATE, scale: str | None = None,
                nc: int | None = None) -> list[BuildSource]:
    """One source per config (calibrating) and, with `samples`, that many candidates of its space."""
    out: list[BuildSource] = []
    for source in configs:
        cfg = load_config(source, scale=scale, nc=nc)
        out.append(BuildSource(source_name(cfg, imgsz), plan_config(cfg, imgsz=imgsz), calibrate=True))
        if samples <= 0:
            continue
        space = build_space(cfg, load_settings(cfg, space_file=space_file))
        for i, params in enumerate(space.sample(samples, seed=seed)):
            out.append(BuildSource(source_name(cfg, imgsz, i, seed), space.plan(params, imgsz=imgsz),
                                   calibrate=i < calibrate))
    return out


ANCHOR_SEED = 2  # an anchor's candidates: not BUILD_SEED (the table's own samples) nor the bench's judged seed 1
ANCHOR_DRAWS = 50  # candidates drawn per model an anchor asks for, looking for ones the table prices whole


def anchor_sources(table: LatencyTable, configs: Sequence[Any], *, imgsz: int, samples: int,
                   seed: int = ANCHOR_SEED, space_file: str | None = None, scale: str | None = None,
                   nc: int | None = None) -> list[BuildSource]:
    """The models an anchor times (profiles.lutanchor): per config, the first `samples` candidates of its
    space drawn with `seed` whose every row the table already holds, so each is priced from the table's
    shared entries as a search's candidate is; `samples` 0: the configs themselves.

    Why not the table's own models (the config, the build's first samples): their rarer rows' entries are
    their own samples of the build, of that moment's speed. Timed beside 30 other candidates in one
    interleaved set (bench/results/anchor_models.md), they ran 2.3% (yolov5s) and 2.7% (yolov8s) further
    off their predictions than the candidates did; candidates outside the table, 1.1% and 1.4% (the other
    way)."""
    out: list[BuildSource] = []
    for source in configs:
        cfg = load_config(source, scale=scale, nc=nc)
        if samples <= 0:
            out.append(BuildSource(source_name(cfg, imgsz), plan_config(cfg, imgsz=imgsz)))
            continue
        space = build_space(cfg, load_settings(cfg, space_file=space_file))
        found, draws = 0, space.sample(samples * ANCHOR_DRAWS, seed=seed)  # fewer from a small space (repeats)
        drawn = f"{len(draws)} candidates of its space at {imgsz} px (seed {seed})"
        for i, params in enumerate(draws):
            plan = space.plan(params, imgsz=imgsz)
            if not table.missing(plan_refs(plan)):
                out.append(BuildSource(source_name(cfg, imgsz, i, seed), plan))
                found += 1
                if found == samples:
                    break
        if 0 < found < samples:
            warnings.warn(LutWarning(f"{table.path}: {source}: only {found} of {drawn} have every row in the table: "
                                     f"the anchor times {found}, not {samples}"), stacklevel=2)
        if found == 0:
            raise LutError(str(table.path), f"{source}: none of {drawn} has every row in the table: build it for this "
                                            f"space (`zoo lut build {source} --imgsz {imgsz} --samples N`), or anchor "
                                            "on the config itself (--samples 0)")
    return out


__all__ = ["ANCHOR_DRAWS", "ANCHOR_SEED", "BUILD_SEED", "DEFAULT_CALIBRATE", "anchor_sources", "lut_sources",
           "source_name"]
