"""Samplers of a search, and the directions of its objectives.

NSGA-II is the default: a genetic search whose cost per trial stays a few milliseconds over 10,000
trials (bench/results/search_throughput.md), where TPE's grows with every trial (about 26 ms a trial by
1,500 trials on one core, Optuna 5); TPE stays available for short studies. Samplers run on a study
held in memory (search.worker), so their reads never touch the storage.
"""
from __future__ import annotations

from typing import Sequence

import optuna

SAMPLERS = ("nsga2", "tpe", "random")
DEFAULT_SAMPLER = "nsga2"
POPULATION = 50  # NSGA-II's generation size: 20 generations in 1,000 trials


def make_sampler(name: str, seed: int, *, trials: int, workers: int = 1) -> optuna.samplers.BaseSampler:
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(POPULATION, trials // 5)))
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=workers > 1,
                                          n_startup_trials=min(10, max(3, trials // 6)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")


def directions(objectives: Sequence[str], score_direction: str = "maximize") -> list[str]:
    """The score goes its objective's way; latency (the second objective of a Pareto search) is minimised."""
    return [score_direction if o == "score" else "minimize" for o in objectives]


__all__ = ["DEFAULT_SAMPLER", "SAMPLERS", "directions", "make_sampler"]
