"""Each model's level in an in-context table: the speed the device ran at while that model's rows were timed.

An in-context build times a thousand models one after another over 10-20 minutes, and this VM's speed
moves by 5-15% over such a stretch. A row key is timed in many models, so a row's records disagree by the
level of the moment each was timed in, and a candidate priced from rows of fast and slow moments is ranked
by when its rows were timed, not by what they cost. The records hold enough to take that out: a row's time
in a model is (its cost) x (that model's level), log-additive, and the models share most of their rows, so
both are fitted together (alternating robust estimates, like a median polish):
  - a key's cost: the table's estimator over its records, each divided by its model's level;
  - a model's level: the median of its records' time / cost, weighted by time (its big rows say more than
    its 0.05 ms Concat), over the rows it shares with other models only (a row timed in one model alone says
    nothing about that model's level). A model whose shared rows hold less than MIN_SHARED_SHARE of its time
    keeps the level it was expected at.
The expected level of a model is the anchor factor in force when it was timed (1 before any anchor), and
the levels are scaled so that their median ratio to it is 1: the table stays at its build's typical speed,
and models a search appends under an anchor do not move it.

Measured on the four tables kept from issue 18's sessions (bench/results/lut_levels.md, nothing re-timed): the
models' levels spread by 2.8-6.1% (sd; 5th-95th percentile as wide as 0.890-1.085), and the fitted entries
rank the recorded candidates better in 14 of 15 table-session pairs (Kendall tau +0.005 to +0.034, the other
+0.000) and every table against its sessions pooled (+0.011 to +0.028); within 10% stays 99-100% either way. A
fresh yolov8s table built with them and judged at once: 100% within 10%, tau 0.939, where the same records
read without them gave 0.913 (bench/results/lut_accuracy_torch320_yolov8s_fresh_levels.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .incontext import estimate

MIN_SHARED_SHARE = 0.25  # a model's level needs rows shared with other models for this much of its time
MAX_ITERATIONS = 50
TOLERANCE = 1e-9  # the largest change of a log level that still counts as moving


@dataclass(frozen=True)
class Record:
    """One row as timed in one model (ms as measured), and the level that model was expected at."""

    model: str
    key: str
    ms: float
    expected: float = 1.0


@dataclass(frozen=True)
class Levels:
    entries: Mapping[str, float]  # key -> its cost at the table's level
    levels: Mapping[str, float]  # model -> the level its rows were timed at
    fitted: frozenset[str]  # the models whose level came from their shared rows (others kept the expected one)
    iterations: int


def fit_levels(records: Sequence[Record], estimator: str = "median") -> Levels:
    """Each key's cost and each model's level from in-context records (module docstring)."""
    if not records:
        return Levels({}, {}, frozenset(), 0)
    models = list(dict.fromkeys(r.model for r in records))
    keys = list(dict.fromkeys(r.key for r in records))
    mi = {m: i for i, m in enumerate(models)}
    ki = {k: i for i, k in enumerate(keys)}
    m_of = np.array([mi[r.model] for r in records])
    k_of = np.array([ki[r.key] for r in records])
    ms = np.array([r.ms for r in records], dtype=float)
    if not np.all(np.isfinite(ms)) or np.any(ms < 0):
        raise ValueError("record times must be finite and >= 0")
    expected = np.ones(len(models))
    for r in records:
        expected[mi[r.model]] = r.expected
    shared = _shared_keys(m_of, k_of, len(keys))[k_of]  # per record: its key was timed in another model too
    total = np.bincount(m_of, weights=ms, minlength=len(models))
    on_shared = np.bincount(m_of, weights=ms * shared, minlength=len(models))
    fit = (on_shared > 0) & (on_shared >= MIN_SHARED_SHARE * total)
    level = expected.copy()
    informative = shared & fit[m_of] & (ms > 0)
    cost = _key_costs(ms / level[m_of], k_of, len(keys), estimator)
    iterations = 0
    for iterations in range(1, MAX_ITERATIONS + 1):
        new = level.copy()
        if informative.any():
            ratio = ms[informative] / np.maximum(cost[k_of[informative]], 1e-12)
            found = _weighted_medians(ratio, ms[informative], m_of[informative], len(models))
            new[fit] = found[fit]
            scale = float(np.median(new[fit] / expected[fit]))
            new[fit] /= scale
        moved = float(np.max(np.abs(np.log(new) - np.log(level))))
        level = new
        cost = _key_costs(ms / level[m_of], k_of, len(keys), estimator)
        if moved < TOLERANCE:
            break
    return Levels(entries={k: float(cost[i]) for k, i in ki.items()},
                  levels={m: float(level[i]) for m, i in mi.items()},
                  fitted=frozenset(m for m, i in mi.items() if fit[i]), iterations=iterations)


def level_of(rows: Sequence[tuple[float, float | None]], expected: float = 1.0) -> float:
    """One new model's level against a table's costs: `rows` are (ms as timed, the key's cost in the table,
    None where the table lacks it); the expected level where the known rows hold too little of its time."""
    known = [(ms, cost) for ms, cost in rows if cost is not None and cost > 0 and ms > 0]
    total = sum(ms for ms, _ in rows)
    on_known = sum(ms for ms, _ in known)
    if not known or on_known < MIN_SHARED_SHARE * total:
        return expected
    ratio = np.array([ms / cost for ms, cost in known])
    weight = np.array([ms for ms, _ in known])
    return float(_weighted_medians(ratio, weight, np.zeros(len(known), dtype=int), 1)[0])


def _shared_keys(m_of: np.ndarray, k_of: np.ndarray, n_keys: int) -> np.ndarray:
    """Per key: timed in at least two distinct models."""
    pairs = np.unique(np.stack([k_of, m_of]), axis=1)
    return np.bincount(pairs[0], minlength=n_keys) >= 2


def _key_costs(values: np.ndarray, k_of: np.ndarray, n_keys: int, estimator: str) -> np.ndarray:
    if estimator == "median":  # the default, vectorised: one sort for all keys
        order = np.lexsort((values, k_of))
        v = values[order]
        counts = np.bincount(k_of, minlength=n_keys)
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return (v[start + (counts - 1) // 2] + v[start + counts // 2]) / 2
    groups: list[list[float]] = [[] for _ in range(n_keys)]
    for k, x in zip(k_of.tolist(), values.tolist()):  # in record order: min_of_medians reads it
        groups[k].append(x)
    return np.array([estimate(g, estimator) for g in groups])


def _weighted_medians(values: np.ndarray, weights: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """Per group, the smallest value whose cumulative weight reaches half the group's (nan for an empty one)."""
    out = np.full(n, np.nan)
    if not len(values):
        return out
    order = np.lexsort((values, group))
    v, w, g = values[order], weights[order], group[order]
    cum = np.cumsum(w)
    before = cum - w  # the cumulative weight ahead of each element, within the whole array
    start = np.searchsorted(g, np.arange(n), side="left")
    offset = np.where(start < len(g), before[np.minimum(start, len(g) - 1)], 0.0)
    half = np.bincount(g, weights=w, minlength=n) / 2
    reached = (cum - offset[g]) >= half[g]
    idx = np.flatnonzero(reached)
    first, at = np.unique(g[idx], return_index=True)
    out[first] = v[idx[at]]
    return out
