"""What a search tells its caller while it runs (the face prints them; the library never does)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class TrialEvent:
    """A trial this process finished."""

    number: int
    state: str  # COMPLETE | FAIL
    score: float | None
    feasible: bool
    reason: str | None = None
    timings_s: Mapping[str, float] = field(default_factory=dict)  # sampler, claim, plan, costs, latency, record


@dataclass(frozen=True)
class StudyOpened:
    """The study a run works on: new, or resumed with `done` of `total` trials over."""

    name: str
    storage: str
    resumed: bool
    done: int
    total: int


@dataclass(frozen=True)
class ScoringChosen:
    """How this run scores candidates: the objective, its direction and the depth budget (None: none)."""

    objective: str
    direction: str
    depth_budget: str | None  # the budget's reason, e.g. "... at most the base's (83, 0.4561)"


@dataclass(frozen=True)
class WorkerLost:
    """A worker that died (or went silent) while running trials; they were failed and enqueued again."""

    pid: int | None
    host: str | None
    trials: tuple[int, ...]
    reason: str | None = None


@dataclass(frozen=True)
class Finishing:
    """Ctrl-C was received: no more trials; `remeasure` top candidates are re-measured (0: none) before the
    export; another Ctrl-C stops at once."""

    remeasure: int


@dataclass(frozen=True)
class TableAnchoring:
    """A resumed study's own latency table is about to be anchored: `models` models are timed whole in
    `rounds` rounds now (tens of seconds on a CPU), before any trial runs."""

    path: str
    models: int
    rounds: int


@dataclass(frozen=True)
class TableAnchored:
    """A resumed study's own latency table (--latency auto) anchored to the device's speed now on the base
    config: its rows were timed in earlier runs, at their speed. `skipped` says why it was not (then
    `factor` is None)."""

    path: str
    factor: float | None
    note: str | None = None  # profiles.lut.Anchor.note: how far the device runs off the table
    skipped: str | None = None


__all__ = ["Finishing", "ScoringChosen", "StudyOpened", "TableAnchored", "TableAnchoring", "TrialEvent",
           "WorkerLost"]
