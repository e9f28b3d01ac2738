"""Samplers of a search, and the directions of its objectives.

NSGA-II is the default. The evolution sampler (search.evolution, MAE-NAS's way: mutate one of the best
by a step) is the default of a one-objective search whose input size is searched too: there NSGA-II and
random search never beat the best uniform scaling at 1,000 trials and evolution does on every seed,
while at one size NSGA-II is level or ahead (bench/results/search_quality*.md). Both cost a few milliseconds a trial over 10,000 trials
(bench/results/search_throughput.md), where TPE's grows with every trial (about 26 ms a trial by 1,500
trials on one core, Optuna 5); TPE stays available for short studies. Samplers run on a study
held in memory (search.worker), so their reads never touch the storage.
"""
from __future__ import annotations

from typing import Sequence

import optuna

SAMPLERS = ("evolution", "nsga2", "tpe", "random")
DEFAULT_SAMPLER = "nsga2"
SIZES_SAMPLER = "evolution"  # the default when the input size is searched too
PARETO_SAMPLER = "nsga2"
POPULATION = 50  # NSGA-II's generation size: 20 generations in 1,000 trials
EVOLUTION_POPULATION = 64  # the evolution sampler's parents: the best 64 trials
EVOLUTION_EXPLORE = 0.2  # its share of random draws: without them it stays near the uniform scalings
# enqueued first (yolov5s at 320, 1,000 trials: 232.7 mean best without, 239.7 with; sizes searched: 265.2, 260.8)


def make_sampler(name: str, seed: int, *, trials: int, workers: int = 1) -> optuna.samplers.BaseSampler:
    if name == "evolution":
        from .evolution import EvolutionSampler

        return EvolutionSampler(seed=seed, population=max(4, min(EVOLUTION_POPULATION, trials // 10)),
                                explore=EVOLUTION_EXPLORE)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(POPULATION, trials // 5)))
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=workers > 1,
                                          n_startup_trials=min(10, max(3, trials // 6)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")


def default_sampler(objectives: Sequence[str], *, sizes_searched: bool = False) -> str:
    """The sampler a search uses unless told: NSGA-II, or evolution for one objective with the input size
    searched (bench/results/search_quality*.md: the only one there above every uniform scaling)."""
    if len(objectives) > 1:
        return PARETO_SAMPLER
    return SIZES_SAMPLER if sizes_searched else DEFAULT_SAMPLER


def directions(objectives: Sequence[str], score_direction: str = "maximize") -> list[str]:
    """The score goes its objective's way; latency (the second objective of a Pareto search) is minimised."""
    return [score_direction if o == "score" else "minimize" for o in objectives]


__all__ = ["DEFAULT_SAMPLER", "PARETO_SAMPLER", "SIZES_SAMPLER", "SAMPLERS", "default_sampler", "directions", "make_sampler"]
