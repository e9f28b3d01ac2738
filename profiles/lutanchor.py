"""Anchor a latency table to its device's speed now: time a few whole models the table prices, and scale
every later prediction by their measured / predicted (the median over the models).

Why: a table is built over minutes to hours and holds the device's speed of that time. A 2-core VM moves
between speed regimes some 10% apart for minutes at a time (bench/results/machine_drift.md), so a table
built in one regime predicts every model timed in another off by the gap, its ranking intact: twice in
bench/results/lut_accuracy_torch320_* a yolov5s table predicted all 100 candidates 4-18% high (median
+10%, spread 2.3%). The rows are right against each other; only the level is of its moment, and a few
whole models timed now measure that level (as HELP adapts to a device from ten measured architectures).

An anchor needs the table's own device (it measures); the models should not be the ones it is judged on,
nor the table's own (`zoo lut anchor` takes candidates of the space that the table prices whole, drawn
with a seed the build does not use by default: search.lutplans.anchor_sources says why). The record is
appended to the table; the latest one stands (profiles.lut.LatencyTable.anchor) until the next.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Callable, Sequence

from zoo.errors import ConfigError
from zoo.limits import MAX_ANCHOR_ROUNDS

from .backends import backend_of
from .backends.base import model_timer, random_inputs
from .fingerprint import device_fingerprint, fingerprint_diff
from .lut import Anchor, AnchorModel, LatencyTable, LutError, _now, plan_refs, predict_plan
from .lutbuild import BuildSource, _whole, warm_up

ANCHOR_ROUNDS = 3  # rounds over the models, interleaved: a slow second falls on all of them a little
Progress = Callable[[int, int, str], None]


def open_to_anchor(path: str | Path) -> LatencyTable:
    """The table opened to measure on the device its fingerprint names (backend, threads, device and the
    backend's recorded settings); another device's table is refused, naming the fields that differ."""
    fp = LatencyTable.load(path).fingerprint
    try:
        backend = backend_of(fp)
    except (ValueError, ConfigError) as e:
        text = e.text if isinstance(e, ConfigError) else str(e)
        raise LutError(str(path), f"an anchor measures on the table's device, and this machine cannot run its "
                                  f"backend as recorded: {text}") from None
    return LatencyTable.open(path, backend)


def open_if_here(path: str | Path, *, backend: str | None = None, threads: int | None = None,
                 device: str | None = None) -> LatencyTable | None:
    """The table opened to anchor when this machine, with the settings given (a search's flags, over the
    table's recorded ones), is its device; None when it is another device's: a search prices from such a
    table read only, at the speed it was measured at, with nothing to time here."""
    fp = LatencyTable.load(path).fingerprint
    try:
        here = backend_of(fp, backend=backend, threads=threads, device=device)
    except (ValueError, ConfigError):
        return None
    if fingerprint_diff(fp, device_fingerprint(here)):
        return None
    return LatencyTable.open(path, here)


def measure_anchor(table: LatencyTable, sources: Sequence[BuildSource], *, rounds: int = ANCHOR_ROUNDS,
                   on_progress: Progress | None = None) -> Anchor:
    """Time each source's whole model on the table's device (the table's model protocol, `rounds`
    interleaved rounds, the median of their medians), beside the table's prediction of it before any
    anchor, and append the anchor. `on_progress` hears (0, total, ...) once the checks pass, before any
    timing, then each model's turn.

    Every model must be priced whole from the table, checked before anything is timed: a row timed now
    would be at the level the anchor is about to measure, and the old factor cannot say what that is."""
    backend = table._measuring_backend()
    if not sources:
        raise LutError(str(table.path), "an anchor needs at least one model to time")
    if not 1 <= rounds <= MAX_ANCHOR_ROUNDS:
        raise LutError(str(table.path), f"an anchor's rounds must be 1 to {MAX_ANCHOR_ROUNDS}, got {rounds}")
    for s in sources:
        missing = table.missing(plan_refs(s.plan))
        if missing:
            raise LutError(str(table.path), f"{s.model_name}: {len(missing)} of its rows are not in the table (row "
                                            f"{missing[0].row}: {missing[0].label}); an anchor times models the table "
                                            "prices whole: build the table for them first, or anchor on candidates "
                                            "it holds (`zoo lut anchor --samples N`)")
    total, done = rounds * len(sources), 0
    if on_progress is not None:  # checked: from here on it times
        on_progress(0, total, f"{len(sources)} model{'s' if len(sources) > 1 else ''}, {rounds} round"
                              f"{'s' if rounds > 1 else ''}")
    names, predicted, timers = [], [], []
    for s in sources:
        pred = predict_plan(table, s.plan)
        model = _whole(s, table.form)
        shape = (1, s.plan.config.ch, s.plan.imgsz, s.plan.imgsz)
        if not timers:
            warm_up(backend, (model, random_inputs(shape)))
        names.append(s.model_name)
        predicted.append(pred.total_ms / pred.anchor)
        timers.append(model_timer(backend, model, shape))
    got: list[list[float]] = [[] for _ in sources]
    for r in range(rounds):
        for j in range(len(sources)):
            i = (j + r) % len(sources)  # each round starts one model later: no model always first
            got[i].append(timers[i](table.model_protocol).median_ms)
            done += 1
            if on_progress is not None:
                on_progress(done, total, f"round {r + 1}: {names[i]}")
    models = tuple(AnchorModel(n, p, statistics.median(g)) for n, p, g in zip(names, predicted, got))
    factor = statistics.median(m.ratio for m in models)
    return table.add_anchor(Anchor(_now(), factor, rounds, models))


__all__ = ["ANCHOR_ROUNDS", "measure_anchor", "open_if_here", "open_to_anchor"]
