"""Building a latency table: every distinct row of some plans measured once, a few of the plans measured
whole to calibrate the sum, the fit stored; resumable (what a build measured stays, a rerun skips it).

Per-row protocol (ROW_PROTOCOL), chosen from the coefficient of variation measured here (yolov5s and
yolov8s rows at 320 and 640 px, torch and onnxruntime, 1 thread, 60 timed runs after a 0.2 s warm-up,
in a process already warm from earlier rows): the per-run CV of a row is 2-8% on a quiet machine and
falls with the row's size; the median of n runs then moves by about 1.25 * CV / sqrt(n), so 15 runs keep
a row's median within about 2.5% (1 sigma) where the whole model's median, which the table is judged
against, moves 1-3% between repeated `zoo profile` runs; more runs buy less than the noise between
processes. The warm-up is short because a build times hundreds of rows in one process: the 10-50x
slow first seconds of a process (profiles.latency) are paid once, by BUILD_WARMUP_S of the first row's
calls; after that each row needs only its own first calls (allocations, oneDNN's primitive cache,
ORT's first runs) out of the way, which 3 calls and 50 ms cover (the 4th and later calls of a row sit
within its run-to-run noise). Rows are small (a yolov5s row at 320 px is 0.01-15 ms), so a row costs
about 18 of its own calls plus building the module (and, for ORT, its share of a chunk's export).

Calibration models (MODEL_PROTOCOL) are timed exactly as `zoo profile` times a model (30 runs after a
warm-up of 5 calls and 1 s), since that is the measurement a prediction stands in for.

Timing `in_context` (the default where the backend can: eager torch) times no row alone: each source
whose rows the table lacks is built whole and its rows timed inside its forward passes
(profiles.incontext, IN_CONTEXT_PROTOCOL: 10 passes after 2 calls and 0.1 s, about 0.7 s for a yolov5s
at 320 px), every row of it recorded (so a key seen in several models gets a robust estimate over them);
a source whose rows are all in the table already is skipped unless it calibrates. Calibration models
are timed in context too, then whole without hooks (MODEL_PROTOCOL) for the fit. ONNX Runtime runs a
whole graph as one fused session, so no hook can see a row there: its tables keep timing rows alone.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from zoo.plan import ModelPlan

if TYPE_CHECKING:
    from torch import nn

from .backends.base import Backend, random_inputs, time_each
from .latency import TimingProtocol
from .lut import Calibration, LatencyTable, RowMaker, RowRef, measure_plan_in_context, plan_refs

ROW_PROTOCOL = TimingProtocol(runs=15, warmup_runs=3, warmup_s=0.05, max_warmup_s=5.0)
IN_CONTEXT_PROTOCOL = TimingProtocol(runs=10, warmup_runs=2, warmup_s=0.1)
MODEL_PROTOCOL = TimingProtocol(runs=30, warmup_runs=5, warmup_s=1.0)
BUILD_WARMUP_S = 2.0  # the process's own warm-up before the first row is timed

Progress = Callable[[int, int, str], None]  # (done, total, what was just done)


@dataclass(frozen=True)
class BuildSource:
    """A plan whose rows the table must hold; `calibrate` also measures it whole for the fit."""

    name: str
    plan: ModelPlan
    calibrate: bool = False

    @property
    def model_name(self) -> str:
        """The calibration record's name: the source's name and a digest of its row keys, so that a
        config edited between two builds is a new model, never the old record."""
        keys = "\n".join(r.key for r in plan_refs(self.plan))
        return f"{self.name} #{hashlib.sha1(keys.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class BuildReport:
    path: str
    sources: int
    rows: int  # distinct row keys of the sources
    rows_measured: int  # by this build (the rest were in the table already)
    models: int  # calibration models of the sources
    models_measured: int
    seconds: float
    calibration: Calibration | None
    table: LatencyTable


def build_table(path: str | Path, backend: Backend, sources: Sequence[BuildSource], *,
                protocol: TimingProtocol | None = None, model_protocol: TimingProtocol | None = None,
                form: str = "train", timing: str | None = None,
                on_progress: Progress | None = None) -> BuildReport:
    """Measure the sources' missing rows and calibration models (interleaved), then store the fit.

    Appends to the table at `path` (created when absent; an existing one must be this device's, with
    these protocols, form and timing). `timing` None: an existing table's, else `default_timing(backend)`.
    Ctrl-C leaves every entry measured so far in the file.
    """
    started = time.perf_counter()
    if timing is None:
        timing = LatencyTable.load(path).timing if Path(path).exists() else default_timing(backend)
    if timing == "in_context":
        return _build_in_context(path, backend, sources, protocol=protocol, model_protocol=model_protocol,
                                 form=form, on_progress=on_progress, started=started)
    table = LatencyTable.open(path, backend, protocol=protocol or ROW_PROTOCOL,
                              model_protocol=model_protocol or MODEL_PROTOCOL, form=form, timing=timing)
    maker = RowMaker(form)
    refs: list[RowRef] = []
    for s in sources:
        refs += maker.add(s.plan)
    keys = list(dict.fromkeys(r.key for r in refs))
    missing_rows = list(dict.fromkeys(r.key for r in table.missing(refs)))
    calibrating = list({s.model_name: s for s in sources if s.calibrate}.items())
    missing_models = [(name, s) for name, s in calibrating if name not in table.models]
    total = len(missing_rows) + len(missing_models)
    done = 0

    def tick(text: str) -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total, text)

    if on_progress is not None:
        on_progress(0, total, f"{len(keys) - len(missing_rows)} of {len(keys)} rows already measured")
    if missing_rows:
        warm_up(backend, maker(missing_rows[0]))
    measured: list[str] = []
    for rows, model in interleave(table.missing(refs), missing_models):
        measured += table.measure_missing(rows, maker, on_measured=lambda e, i, n: tick(f"row {e.label or e.key}"))
        if model is None:
            continue
        name, s = model
        table.measure_model(name, _whole(s, form), (1, s.plan.config.ch, s.plan.imgsz, s.plan.imgsz),
                            [r.key for r in plan_refs(s.plan)])
        tick(f"model {s.name}")
    if table.models and not table.fit_is_current:
        table.save_fit()
    seconds = time.perf_counter() - started
    if measured or missing_models:
        table.add_build(seconds, len(measured), len(missing_models), [s.name for s in sources])
    return BuildReport(str(path), len(sources), len(keys), len(measured), len(calibrating), len(missing_models),
                       seconds, table.calibration, table)


def default_timing(backend: Backend) -> str:
    """`in_context` where the backend can time rows inside a whole pass (eager torch), else `isolated`."""
    return "in_context" if hasattr(backend, "time_in_context") else "isolated"


def in_context_plan(table: LatencyTable, sources: Sequence[BuildSource]) -> list[BuildSource]:
    """The sources an in-context build times, in order: each that brings a key no earlier one (nor the
    table) holds, and each calibration model not yet recorded."""
    seen = set(table.entries)
    out = []
    for s in sources:
        keys = [r.key for r in plan_refs(s.plan)]
        if any(k not in seen for k in keys) or (s.calibrate and s.model_name not in table.models):
            out.append(s)
            seen.update(keys)
    return out


def _build_in_context(path: str | Path, backend: Backend, sources: Sequence[BuildSource], *,
                      protocol: TimingProtocol | None, model_protocol: TimingProtocol | None, form: str,
                      on_progress: Progress | None, started: float) -> BuildReport:
    table = LatencyTable.open(path, backend, protocol=protocol or IN_CONTEXT_PROTOCOL,
                              model_protocol=model_protocol or MODEL_PROTOCOL, form=form, timing="in_context")
    keys = list(dict.fromkeys(r.key for s in sources for r in plan_refs(s.plan)))
    had = set(table.entries)
    todo = in_context_plan(table, sources)
    calibrating = {s.model_name for s in sources if s.calibrate}
    if on_progress is not None:
        on_progress(0, len(todo), f"{len(had & set(keys))} of {len(keys)} rows already measured")
    models_measured = 0
    for i, s in enumerate(todo):
        model = _whole(s, form)
        shape = (1, s.plan.config.ch, s.plan.imgsz, s.plan.imgsz)
        if i == 0:
            warm_up(backend, (model, random_inputs(shape)))
        refs = plan_refs(s.plan)
        if s.model_name not in table.samples_by_model:
            measure_plan_in_context(table, s.plan, refs, name=s.model_name, model=model)
        if s.calibrate and s.model_name not in table.models:
            table.measure_model(s.model_name, model, shape, [r.key for r in refs])
            models_measured += 1
        if on_progress is not None:
            on_progress(i + 1, len(todo), f"model {s.name}")
    if todo:
        table.refit()  # every model's level against all the others' rows, not only the earlier ones'
    if table.models and not table.fit_is_current:
        table.save_fit()
    measured = [k for k in keys if k not in had and k in table.entries]
    seconds = time.perf_counter() - started
    if todo:
        table.add_build(seconds, len(measured), models_measured, [s.name for s in sources])
    return BuildReport(str(path), len(sources), len(keys), len(measured), len(calibrating), models_measured,
                       seconds, table.calibration, table)


def interleave(refs: Sequence[RowRef], models: Sequence[tuple[str, BuildSource]]
               ) -> list[tuple[list[RowRef], tuple[str, BuildSource] | None]]:
    """The build's order: the rows still to measure split into one stretch per calibration model, each
    model measured after its stretch (which holds the model's own rows), the rest of the rows last.

    The fit then sees the machine at every stage of a build (this VM drifts by several percent over
    minutes) rather than only at its end: with the models last, a 640 px ORT table's ratio came out
    about 5% above what other candidates measured later."""
    own = {name: plan_refs(s.plan) for name, s in models}
    theirs = {r.key for rs in own.values() for r in rs}
    rest = list({r.key: r for r in refs if r.key not in theirs}.values())  # each key once: stretches of one length
    cut = [len(rest) * j // (len(models) + 1) for j in range(len(models) + 2)]
    out: list[tuple[list[RowRef], tuple[str, BuildSource] | None]] = [
        (own[name] + rest[cut[j]:cut[j + 1]], (name, s)) for j, (name, s) in enumerate(models)]
    out.append((rest[cut[-2]:], None))
    return out


def _whole(s: BuildSource, form: str) -> nn.Module:
    """The source's whole model, as a calibration measures it (folded for the deploy form)."""
    from zoo.builder import build_from_plan

    model = build_from_plan(s.plan)
    if form == "deploy":
        from zoo.deploy import deploy
        deploy(model)
    return model


def warm_up(backend: Backend, row: tuple, seconds: float | None = None) -> None:
    """Run one row for `seconds` (default BUILD_WARMUP_S; untimed): the process's slow first seconds
    are not any row's."""
    seconds = BUILD_WARMUP_S if seconds is None else seconds
    module, inputs = row
    for _ in time_each(backend, [(module, inputs)], TimingProtocol(runs=1, warmup_runs=1, warmup_s=seconds,
                                                                 max_warmup_s=seconds)):
        pass


__all__ = ["BUILD_WARMUP_S", "BuildReport", "BuildSource", "IN_CONTEXT_PROTOCOL", "MODEL_PROTOCOL", "ROW_PROTOCOL",
           "build_table", "default_timing", "in_context_plan"]
