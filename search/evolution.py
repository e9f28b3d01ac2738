"""The MAE-NAS style evolutionary sampler: mutate one of the best candidates found so far by a step or two
along one or two of its ordered choices.

Every search dimension is an index into an ordered list of choices (a width, a depth, a size, a kernel),
so a step of one is the smallest change a candidate can make. Under a tight budget the best candidates sit
on the budget's edge, where crossing two of them (NSGA-II) or drawing anew (random, TPE's start) mostly
lands over the budget or far below it; a small mutation of a good parent trades one stage's width for
another's and stays near the edge. On yolov5s at 320 px with sizes 256-384 searched under 3.31 GFLOPs,
NSGA-II never left the best uniform scaling (246.58) in 1,000 trials while steps of one from it reach 286
(bench/results/search_quality*.md has the measured comparison).

The population is the `population` best completed trials: feasible ones by score, then infeasible ones by
their total violation (Optuna's constraints); with two objectives, the feasible Pareto front comes first.
A parent is the better of two drawn from it (a tournament); its child changes one choice (or two, with
probability 1/2) by +-1 (or +-2, with probability 1/4), and is drawn again if the study has tried it.
Until `population` trials have completed, for a share `explore` of the trials after that, and whenever no
new child is found, candidates are drawn at random (Optuna's RandomSampler): a search that starts from
the uniform scalings (as `zoo search` does) otherwise only ever refines them. The cost per trial is a sort of the new trials into the population.
"""
from __future__ import annotations

import bisect
from typing import Any, Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

TRIES = 32  # children drawn before falling back to a random candidate (all were tried already)


class EvolutionSampler(BaseSampler):
    """Tournament selection from the best trials, then a mutation of one or two ordered choices."""

    def __init__(self, *, population: int = 64, explore: float = 0.0, seed: int | None = None) -> None:
        self.population = max(2, population)
        self.explore = explore  # the share of trials drawn at random after the population fills
        self._rng = np.random.RandomState(seed)
        self._random = RandomSampler(seed=seed)
        self._space = optuna.search_space.IntersectionSearchSpace()  # incremental: no rescan per trial
        self._seen: set[int] = set()  # trial numbers already ranked
        self._scan_from = 0  # trials before this index are all finished and ranked
        self._ranked: list[tuple[tuple[float, ...], int, dict[str, Any]]] = []  # (key, number, params), best first
        self._tried: set[tuple[tuple[str, Any], ...]] = set()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {name: d for name, d in self._space.calculate(study).items()
                if isinstance(d, IntDistribution) and d.step == 1}

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        self._update(study)
        if len(self._ranked) < self.population or self._rng.rand() < self.explore:
            return {}
        parents = self._ranked[:self.population]
        for _ in range(TRIES):
            a, b = self._rng.randint(len(parents), size=2)
            parent = parents[min(a, b)][2]  # ranked best first: the smaller index wins the tournament
            child = self._mutate(parent, search_space)
            key = tuple(sorted(child.items()))
            if key not in self._tried:
                self._tried.add(key)
                return child
        return {}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def _mutate(self, parent: dict[str, Any], space: dict[str, BaseDistribution]) -> dict[str, Any]:
        child = {k: v for k, v in parent.items() if k in space}
        for k, d in space.items():
            child.setdefault(k, d.low)
        movable = [k for k, d in space.items() if d.high > d.low]
        if not movable:
            return child
        n = 1 + int(self._rng.rand() < 0.5 and len(movable) > 1)
        for k in self._rng.choice(movable, size=n, replace=False):
            d = space[k]
            step = (2 if self._rng.rand() < 0.25 else 1) * (1 if self._rng.rand() < 0.5 else -1)
            v = child[k] + step
            if not d.low <= v <= d.high:
                v = child[k] - step
            child[k] = int(min(d.high, max(d.low, v)))
        return child

    def _update(self, study: Study) -> None:
        """Rank the trials completed since the last call into the population."""
        maximize = [d == StudyDirection.MAXIMIZE for d in study.directions]
        front = ({t.number for t in study.best_trials} if len(maximize) > 1 else set())
        if front:  # the Pareto front moves: rank afresh (a two-objective study is a short one)
            self._seen.clear()
            self._ranked.clear()
            self._scan_from = 0
        trials = study.get_trials(deepcopy=False)
        settled = True
        for i in range(self._scan_from, len(trials)):
            t = trials[i]
            if t.state not in (TrialState.COMPLETE, TrialState.FAIL):
                settled = False  # still running: looked at again next time
                continue
            if settled:
                self._scan_from = i + 1
            if t.number in self._seen:
                continue
            self._seen.add(t.number)
            self._tried.add(tuple(sorted(t.params.items())))
            if t.state != TrialState.COMPLETE or t.values is None:
                continue
            bisect.insort(self._ranked, (_key(t, maximize, front), t.number, dict(t.params)))

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._random.after_trial(study, trial, state, values)


def _key(t: FrozenTrial, maximize: list[bool], front: set[int]) -> tuple[float, ...]:
    """Smaller is better: feasible before infeasible (by total violation), the front first, then the score."""
    violation = sum(max(0.0, float(c)) for c in (t.constraints or {}).values())
    score = t.values[0] if maximize[0] else -t.values[0]
    return (violation, 0.0 if t.number in front or not front else 1.0, -score)
