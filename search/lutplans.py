"""What a latency table is built for: configs, and random candidates of their search spaces.

Each config is a calibration model (measured whole); so are the first `calibrate` sampled candidates of
each, spread over the space, so that the fit sees small and large models. The candidates are the
space's own plans at the table's image size (search.space.SearchSpace.sample, seeded), the same ones a
rerun draws, so an interrupted build resumes over the same rows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from profiles.lutbuild import BuildSource
from zoo.config import load_config
from zoo.plan import plan_config

from .settings import load_settings
from .space import build_space

DEFAULT_CALIBRATE = 24  # sampled candidates per config measured whole (besides the config itself)


def lut_sources(configs: Sequence[Any], *, imgsz: int, samples: int = 0, space_file: str | None = None,
                seed: int = 0, calibrate: int = DEFAULT_CALIBRATE, scale: str | None = None,
                nc: int | None = None) -> list[BuildSource]:
    """One source per config (calibrating) and, with `samples`, that many candidates of its space."""
    out: list[BuildSource] = []
    for source in configs:
        cfg = load_config(source, scale=scale, nc=nc)
        name = f"{Path(cfg.name).stem}@{imgsz}"
        out.append(BuildSource(name, plan_config(cfg, imgsz=imgsz), calibrate=True))
        if samples <= 0:
            continue
        space = build_space(cfg, load_settings(cfg, space_file=space_file))
        for i, params in enumerate(space.sample(samples, seed=seed)):
            out.append(BuildSource(f"{name} sample {i} (seed {seed})", space.plan(params, imgsz=imgsz),
                                   calibrate=i < calibrate))
    return out


__all__ = ["DEFAULT_CALIBRATE", "lut_sources"]
