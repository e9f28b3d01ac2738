"""A per-device latency table: one measured entry per row key (RowSignature.key()), whole models for
calibration, and the fit total = a * (sum of a model's row entries) + b that turns a sum of standalone
rows into a prediction.

The file is JSON lines, appended and flushed as each entry is measured, so an interrupted build keeps
what it measured and a rerun skips the keys already there:

    {"format": "zoo-lut", "version": 2, "fingerprint": {...}, "protocol": {...}, "model_protocol": {...},
     "form": "train", "timing": "in_context", "estimator": "median", "levels": "per_model", "created": "..."}
    {"kind": "row", "key": "...", "label": "...", "median_ms": ..., "p90_ms": ..., "mean_ms": ..., "cv": ...,
     "runs": ..., "warmup_runs": ..., "model": "...", "anchor": ...}
    {"kind": "model", "name": "...", "keys": [...], "row_sum_ms": ..., "median_ms": ..., "p90_ms": ..., "cv": ...,
     "anchor": ...}
    {"kind": "fit", "method": "least squares", "a": ..., "b": ..., "models": [...], "row_sums_ms": [...],
     "measured_ms": [...], "residuals_ms": [...]}
    {"kind": "build", "finished": "...", "seconds": ..., "rows": ..., "models": ..., "sources": [...]}
    {"kind": "anchor", "at": "...", "factor": ..., "rounds": ..., "models": [...], "predicted_ms": [...],
     "measured_ms": [...]}

`protocol` times rows, `model_protocol` the calibration models (a whole model wants a longer warm-up
than a row timed in a process that is already warm); `form` says whether rows were timed as built
("train", BatchNorm separate) or folded for inference ("deploy", `zoo.deploy`): the keys are the same,
the milliseconds are not, so a table answers only for its form. A `build` record notes each build
session (its time and what it added), for `zoo lut show`. An `anchor` record (profiles.lutanchor, `zoo lut
anchor`) scales every prediction after it by how fast the device ran whole models then against the
table's predictions of them: the latest one stands. A row or calibration model timed here while an anchor
stands was timed at that level, not the build's: its record keeps what was measured and the factor in force
(`anchor`, absent: 1), and the table holds the time divided by the factor, at its own level like every
other, so the anchor's scaling does not count the device's change twice (nor a fit fold it in).

`timing` says how rows were timed (a header written before it existed reads as "isolated"):
- "isolated": each row alone at its real inputs (profiles.rowtiming); a key's first entry stands.
- "in_context": each row inside whole models' forward passes (profiles.incontext), so a model's rows add
  up to its total. A row record then carries the model it was timed in, a key seen in several models has
  one record per model, and its entry is `estimator` (profiles.incontext.ESTIMATORS) over them: a row's
  neighbours change its time a little, and the table keeps what is typical of it. With `levels` "per_model"
  (the header's; the default for a new table, absent: "none") each model's records are first divided by that
  model's level, fitted with the entries from all records (profiles.lutlevels): the device's speed moves
  over a build, and a row timed in a slow minute would otherwise be priced slow. Such a table cannot
  time a row alone: a missing row is priced by timing the whole candidate in context (predict_plan).

Summed standalone rows miss the whole model (per-row ORT sessions by +13% here: session overhead and
layout reorders at every boundary), so predictions use the latest stored fit. Any device's table prices
anywhere, read only (`load`, `open_to_price`); measuring into it needs the fingerprint it was built with
(`open`; `force=True` reads another's, never adding to it), and a device zoo does not run on fills it
through `open_import` (profiles.lutimport). A key the table lacks is an error naming the row (and, for
another device's table, the export that covers it), or is measured and appended when a measuring
callable is given. A bad file is a LutError that leaves the file as it is; the one exception is a torn last line
(an interrupted write), which a build sets aside into a copy before it appends.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence, get_args

import numpy as np
from torch import nn

from zoo.errors import ConfigError
from zoo.plan import ModelPlan, RowProbeError, RowSignature, instantiate_row, short_args

from .backends.base import Backend, BackendError, Inputs, Shape, model_timer, random_inputs, time_each
from . import fields
from .incontext import DEFAULT_ESTIMATOR, ESTIMATORS, estimate
from .lutlevels import Record, fit_levels, level_of
from .fingerprint import DeviceFingerprint, describe_diff, device_fingerprint, fingerprint_diff
from .latency import LatencyStats, TimingProtocol

FORMAT = "zoo-lut"
VERSION = 2
FORMS = ("train", "deploy")
TIMINGS = ("in_context", "isolated")
OLD_TABLES_ESTIMATOR = "median"  # a header without "estimator" predates the setting: its entries were medians
LEVELS = ("per_model", "none")
DEFAULT_LEVELS = "per_model"  # bench/results/lut_levels.md: ranks better in 14 of 15 table-session pairs, never worse
OLD_TABLES_LEVELS = "none"  # a header without "levels" predates the setting: read as it was built
GAUGE_SLACK = 0.002  # how far the models' median level may stray from 1 before a growing table is rescaled
MakeRow = Callable[[str], "tuple[nn.Module, Inputs]"]  # key -> the row's module and its example inputs


class LutError(ConfigError):
    """A latency table that cannot be used: corrupt, another device's, or missing a row."""


class LutWarning(UserWarning):
    """Something about a table the user should hear of (a torn last line set aside)."""


@dataclass(frozen=True)
class RowRef:
    """A row to price: its table key and, for messages, where it comes from."""

    key: str
    row: int | None = None
    module: str | None = None
    file: str | None = None  # the config the row belongs to
    label: str | None = None  # a short description stored beside a newly measured entry
    imgsz: int | None = None  # the plan's image size, for the export command a missing row's error names


@dataclass(frozen=True)
class LutEntry:
    key: str
    median_ms: float
    p90_ms: float
    mean_ms: float
    cv: float
    runs: int
    warmup_runs: int
    label: str | None = None


@dataclass(frozen=True)
class ModelRecord:
    """A whole model measured during the build, beside the sum of its rows' entries."""

    name: str
    keys: tuple[str, ...]
    row_sum_ms: float
    median_ms: float
    p90_ms: float
    cv: float


@dataclass(frozen=True)
class Calibration:
    """total = a * row_sum + b; residuals are measured - predicted, one per calibration model."""

    method: str  # "least squares" (two or more distinct sums), "ratio" (b = 0), "identity" (a = 1, b = 0, models
    #              a check: in-context rows), "none" (a = 1, b = 0, no model)
    a: float
    b: float
    models: tuple[str, ...]
    row_sums_ms: tuple[float, ...]
    measured_ms: tuple[float, ...]
    residuals_ms: tuple[float, ...]

    def predict(self, row_sum_ms: float) -> float:
        return self.a * row_sum_ms + self.b

    @property
    def relative_residuals(self) -> tuple[float, ...]:
        return tuple(r / m for r, m in zip(self.residuals_ms, self.measured_ms))


UNCALIBRATED = Calibration("none", 1.0, 0.0, (), (), (), ())


@dataclass(frozen=True)
class AnchorModel:
    """A whole model timed for an anchor: the table's prediction of it (before any anchor) and its time now."""

    name: str
    predicted_ms: float
    measured_ms: float

    @property
    def ratio(self) -> float:
        return self.measured_ms / self.predicted_ms


ANCHOR_NOTE = 0.05  # an anchor this far from 1 is worth a note: the device runs off the build's speed


@dataclass(frozen=True)
class Anchor:
    """The device's speed now against the table's: predictions are scaled by `factor`, the median of the
    models' measured / predicted (profiles.lutanchor)."""

    at: str
    factor: float
    rounds: int
    models: tuple[AnchorModel, ...]

    @property
    def note(self) -> str | None:
        """How far the device runs off the build's speed, when more than ANCHOR_NOTE; else None."""
        off = self.factor - 1
        if abs(off) <= ANCHOR_NOTE:
            return None
        return f"the device runs {abs(off):.1%} {'slower' if off > 0 else 'faster'} than when the table was built"

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "factor": self.factor, "rounds": self.rounds, "models": [m.name for m in self.models],
                "predicted_ms": [m.predicted_ms for m in self.models],
                "measured_ms": [m.measured_ms for m in self.models]}


@dataclass(frozen=True)
class Prediction:
    total_ms: float  # LatencyTable.total_ms(row_sum_ms): calibrated, then anchored
    row_sum_ms: float
    rows: tuple[tuple[RowRef, float], ...]  # each row's entry (median ms), in the order asked
    calibration: Calibration
    anchor: float = 1.0  # the anchor's factor in total_ms (1: none)


FitMode = Literal["line", "identity"]


def fit_calibration(row_sums_ms: Sequence[float], measured_ms: Sequence[float],
                    models: Sequence[str] = (), *, mode: FitMode = "line") -> Calibration:
    """Least squares of measured = a * row_sum + b over the calibration models, in relative terms
    (each residual divided by its measurement: a budget is a share of milliseconds, and a big model
    must not outweigh a small one).

    The line is kept only where it predicts better than a plain ratio (a = relative-least-squares
    ratio, b = 0) for models it was not fitted on (leave-one-out, three or more models) and its slope
    is positive: a few models whose row sums barely differ fix a slope poorly, and a noisy one can tip
    it. One distinct row sum cannot fix a slope at all: the ratio. No model: the identity, "none".
    `mode="identity"` applies none (a = 1, b = 0) and keeps the models' residuals as a check: in-context
    rows add up to a model's total by construction, so a fit on whole models measured at other moments
    learns only how fast the machine ran then (a 2-core VM drifts by 15% over minutes: one yolov5s
    in-context table fitted 0.849 and missed every candidate measured later, which its plain row sums met
    99/100; bench/results/lut_accuracy_torch320_yolov5s_rerun).
    """
    if mode not in get_args(FitMode):
        raise ValueError(f"mode={mode!r}: must be line or identity")
    x = np.asarray(row_sums_ms, dtype=float)
    y = np.asarray(measured_ms, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("row_sums_ms and measured_ms must be flat sequences of one length")
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)) or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("calibration sums and measurements must be finite and > 0")
    names = tuple(models) or tuple(f"model {i}" for i in range(len(x)))
    if len(x) == 0:
        return UNCALIBRATED
    if mode == "identity":
        a, b, method = 1.0, 0.0, "identity"
    else:
        a, b, method = _ratio(x, y), 0.0, "ratio"
    if mode == "line" and len(np.unique(x)) >= 2:
        la, lb = _line(x, y)
        if la > 0 and (len(x) < 3 or _loo_error(x, y, _line) < _loo_error(x, y, lambda xs, ys: (_ratio(xs, ys), 0.0))):
            a, b, method = la, lb, "least squares"
    residuals = y - (a * x + b)
    return Calibration(method, float(a), float(b), names, tuple(map(float, x)), tuple(map(float, y)),
                       tuple(map(float, residuals)))


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """a, b minimising the sum of ((y - a x - b) / y)^2."""
    w = 1.0 / y
    (a, b), *_ = np.linalg.lstsq(np.stack([x * w, w], axis=1), y * w, rcond=None)
    return float(a), float(b)


def _ratio(x: np.ndarray, y: np.ndarray) -> float:
    """a minimising the sum of ((y - a x) / y)^2."""
    r = x / y
    return float(np.sum(r) / np.sum(r * r))


def _loo_error(x: np.ndarray, y: np.ndarray, fit: Callable[[np.ndarray, np.ndarray], tuple[float, float]]) -> float:
    """Mean squared relative error of each model predicted by a fit on the others."""
    errs = []
    for i in range(len(x)):
        keep = np.arange(len(x)) != i
        if len(np.unique(x[keep])) < 2 and fit is _line:
            return math.inf
        a, b = fit(x[keep], y[keep])
        errs.append(((a * x[i] + b) - y[i]) / y[i])
    return float(np.mean(np.square(errs)))


@dataclass(frozen=True)
class BuildRecord:
    """One build session: when it finished, how long it took, what it added, from which sources."""

    finished: str
    seconds: float
    rows: int
    models: int
    sources: tuple[str, ...]


class LatencyTable:
    """A table file and what it holds. `load` reads; `open` reads or creates it for measuring."""

    def __init__(self, path: Path, fingerprint: DeviceFingerprint, protocol: TimingProtocol,
                 created: str | None, *, model_protocol: TimingProtocol | None = None, form: str = "train",
                 timing: str = "isolated", estimator: str = DEFAULT_ESTIMATOR, levels: str = DEFAULT_LEVELS) -> None:
        if form not in FORMS:
            raise ValueError(f"form= must be one of {', '.join(FORMS)}, got {form!r}")
        if timing not in TIMINGS:
            raise ValueError(f"timing= must be one of {', '.join(TIMINGS)}, got {timing!r}")
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator= must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
        if levels not in LEVELS:
            raise ValueError(f"levels= must be one of {', '.join(LEVELS)}, got {levels!r}")
        self.timing = timing
        self.estimator = estimator
        self.levels = levels  # in_context: "per_model" fits each model's level (profiles.lutlevels)
        self.model_levels: dict[str, float] = {}  # levels per_model: each model's fitted level
        self._records: list[Record] = []  # levels per_model: every in-context row record as timed
        self._first: dict[str, LutEntry] = {}  # levels per_model: each key's first record (label, runs)
        self._expected: dict[str, float] = {}  # levels per_model: the anchor each model was timed under
        self.samples: dict[str, list[LutEntry]] = {}  # in_context: every model's record of a key
        self.samples_by_model: set[str] = set()  # in_context: the models whose rows are recorded
        self.path = path
        self.fingerprint = fingerprint
        self.protocol = protocol  # rows
        self.model_protocol = model_protocol or protocol  # calibration models
        self.form = form
        self.created = created
        self.entries: dict[str, LutEntry] = {}
        self.revision = 0  # counts re-estimated entries (in-context samples): a cache of entries is stale after
        self.models: dict[str, ModelRecord] = {}
        self.builds: list[BuildRecord] = []
        self.calibration: Calibration | None = None  # the latest stored fit
        self.anchor: Anchor | None = None  # the latest stored anchor (scales every prediction)
        self.backend: Backend | None = None  # set by `open`: the device this table can be measured on
        self.set_aside: Path | None = None  # where a torn last line was copied to, if one was
        self.importing = False  # set by `open_import`: records come from a device's measurements file
        self._needs_newline = False

    # ---- reading -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, *, levels: str | None = None) -> LatencyTable:
        """Read a table; a torn last line is ignored with a LutWarning (the file is not touched).
        `levels` reads its in-context records with that setting instead of the header's (a bench judging
        one table both ways); such a table is read only."""
        table, torn_at = cls._read(Path(path), levels=levels)
        if torn_at is not None:
            warnings.warn(LutWarning(f"{path}: the last line is torn (an interrupted build?) and was ignored; "
                                     "resuming the build sets it aside"), stacklevel=2)
        return table

    @classmethod
    def open(cls, path: str | Path, backend: Backend, *, protocol: TimingProtocol | None = None,
             model_protocol: TimingProtocol | None = None, form: str | None = None,
             timing: str | None = None, force: bool = False, levels: str | None = None) -> LatencyTable:
        """The table at `path` ready to measure on `backend`, created with `protocol` (rows),
        `model_protocol` (calibration models), `form`, `timing` and `levels` when absent.

        An existing table must have this device's fingerprint (force=True reads it anyway but refuses
        to add to it) and, for what is given, the protocols and form it was built with.
        """
        path = Path(path)
        here = device_fingerprint(backend)
        if not path.exists():
            table = cls(path, here, protocol or TimingProtocol(), _now(), model_protocol=model_protocol,
                        form=form or "train", timing=timing or "isolated", levels=levels or DEFAULT_LEVELS)
            table._write_header()
            table.backend = backend
            return table
        table, torn_at = cls._read(path)
        table.check(here, force=force)
        for what, asked, stored in (("timing protocol", protocol, table.protocol),
                                    ("model timing protocol", model_protocol, table.model_protocol)):
            if asked is not None and asked != stored:
                diffs = [f"{k} {v} (table) vs {asked.as_dict()[k]} (asked)"
                         for k, v in stored.as_dict().items() if asked.as_dict()[k] != v]
                raise LutError(str(path), f"the table was built with another {what}: " + "; ".join(diffs))
        table.check_form(form)
        if timing is not None and timing != table.timing:
            raise LutError(str(path), f"the table times rows {table.timing.replace('_', ' ')}, not {timing.replace('_', ' ')}"
                                      " (build another table for the other timing)")
        if levels is not None and levels != table.levels:
            raise LutError(str(path), f"the table's levels are {table.levels}, not {levels} (build another table)")
        if not fingerprint_diff(table.fingerprint, here):
            table.backend = backend
            if torn_at is not None:
                table._set_aside_torn(torn_at)
        elif torn_at is not None:
            warnings.warn(LutWarning(f"{path}: the last line is torn and was ignored"), stacklevel=2)
        return table

    @classmethod
    def open_to_price(cls, path: str | Path, backend: Backend | None) -> LatencyTable:
        """A table to price from: on its own device (`backend`'s fingerprint) open to measure and append
        the rows it lacks; on any other, or with no backend, read only. Pricing needs no local device."""
        table = cls.load(path)
        if backend is None or fingerprint_diff(table.fingerprint, device_fingerprint(backend)):
            return table
        return cls.open(path, backend)

    @classmethod
    def open_import(cls, path: str | Path, fingerprint: DeviceFingerprint, *, protocol: TimingProtocol,
                    model_protocol: TimingProtocol, form: str) -> LatencyTable:
        """The table at `path` ready to take a device's measurements (`zoo lut import`): created when
        absent; an existing one must have been measured under the same fingerprint, protocols and form."""
        path = Path(path)
        if not path.exists():
            table = cls(path, fingerprint, protocol, _now(), model_protocol=model_protocol, form=form)
            table._write_header()
        else:
            table, torn_at = cls._read(path)
            diffs = fingerprint_diff(table.fingerprint, fingerprint)
            if diffs:
                diff = describe_diff(diffs).replace(" (here)", " (measurements)")
                raise LutError(str(path), f"measured on another device or setting: {diff} "
                                          "(import into a new table: -o OTHER.lut)")
            if (table.protocol, table.model_protocol) != (protocol, model_protocol):
                raise LutError(str(path), "the table was measured with other timing protocols (import into a new table)")
            table.check_form(form)
            if torn_at is not None:
                table._set_aside_torn(torn_at)
        table.importing = True
        return table

    def check(self, here: DeviceFingerprint, *, force: bool = False) -> None:
        """Refuse a table of another fingerprint, naming the fields that differ, unless `force`."""
        diffs = fingerprint_diff(self.fingerprint, here)
        if diffs and not force:
            raise LutError(str(self.path), f"measuring here needs the table's own device, and it was built on another "
                                           f"device or backend setting: {describe_diff(diffs)} "
                                           "(rebuild it here, or force it: --force, force=True)")

    def check_form(self, form: str | None) -> None:
        """Refuse to price one form (train, deploy) from a table timed in the other."""
        if form is not None and form != self.form:
            raise LutError(str(self.path), f"the table times the {self.form} form, not the {form} form "
                                           f"(build one with{'' if form == 'deploy' else 'out'} --deploy)")

    @property
    def writable(self) -> bool:
        """Whether missing rows can be measured and appended (opened on its own device)."""
        return self.backend is not None

    # ---- pricing -------------------------------------------------------------------------------------
    def entry(self, ref: str | RowRef, *, measure: MakeRow | None = None) -> LutEntry:
        """The entry of a row; a missing one is measured and appended when `measure` is given, else an error."""
        ref = ref if isinstance(ref, RowRef) else RowRef(ref)
        found = self.entries.get(ref.key)
        if found is not None:
            return found
        if measure is None:
            raise self.missing_error(ref)
        return self.measure(ref, measure)

    def missing_error(self, ref: RowRef) -> LutError:
        if self.writable:
            hint = "rebuild the table with this config or measure missing rows on the device"
        else:  # another device's table: its rows come from that device
            export = (f"zoo lut export {ref.file or 'CFG'} --imgsz {ref.imgsz or 'N'}"
                      f"{' --deploy' if self.form == 'deploy' else ''} -o DIR")
            hint = (f"the table is another device's: export the row with `{export}` (a search's candidates: add "
                    f"--space/--samples), run DIR/run_lut.py on the device, then "
                    f"`zoo lut import DIR/measurements.jsonl -o {self.path}`")
        return LutError(ref.file or str(self.path), f"no latency entry for this row in {self.path} "
                                                    f"(key {ref.key}); {hint}",
                        row=ref.row, module=ref.module)

    def predict(self, refs: Iterable[str | RowRef], *, measure: MakeRow | None = None) -> Prediction:
        """The calibrated sum of the rows' entries (every row counted, repeats included); with
        `measure`, the missing rows are measured first, together (one export for ORT)."""
        rows = [(r if isinstance(r, RowRef) else RowRef(r)) for r in refs]
        if measure is not None:
            self.measure_missing(rows, measure)
        priced = tuple((r, self.entry(r).median_ms) for r in rows)
        row_sum = math.fsum(ms for _, ms in priced)
        return Prediction(total_ms=self.total_ms(row_sum), row_sum_ms=row_sum, rows=priced,
                          calibration=self.calibration or UNCALIBRATED, anchor=self.anchor_factor)

    def total_ms(self, row_sum_ms: float) -> float:
        """A model's predicted total from its row sum: the stored fit, then the anchor (the one place both apply)."""
        return (self.calibration or UNCALIBRATED).predict(row_sum_ms) * self.anchor_factor

    @property
    def anchor_factor(self) -> float:
        return self.anchor.factor if self.anchor is not None else 1.0

    def missing(self, refs: Iterable[RowRef]) -> list[RowRef]:
        """The rows, in order, whose key the table lacks: none means it prices them whole."""
        return [r for r in refs if r.key not in self.entries]

    def row_sum(self, keys: Iterable[str]) -> float:
        return math.fsum(self.entry(k).median_ms for k in keys)

    # ---- building ------------------------------------------------------------------------------------
    def measure(self, ref: str | RowRef, make: MakeRow) -> LutEntry:
        """Measure one row key on this table's backend and append it (kept as is when already present)."""
        ref = ref if isinstance(ref, RowRef) else RowRef(ref)
        if ref.key in self.entries:
            return self.entries[ref.key]
        backend = self._measuring_backend()
        self._isolated_only(ref)
        try:
            module, inputs = make(ref.key)
            stats = backend.time_row(module, inputs, self.protocol)
        except ConfigError as e:
            raise self._row_error(ref, e.text) from None
        except RowProbeError as e:
            raise self._row_error(ref, str(e)) from None
        return self._add_entry(ref, stats)

    def measure_missing(self, refs: Iterable[str | RowRef], make: MakeRow,
                        on_measured: Callable[[LutEntry, int, int], None] | None = None) -> tuple[str, ...]:
        """Measure every key not yet in the table (each once), appending as it goes; returns those measured.

        The rows go to the backend together (ORT exports them a chunk at a time); should that fail, they
        are measured one by one, so an error names its row. `on_measured(entry, done, todo)` after each,
        for a progress bar."""
        refs_ = [(r if isinstance(r, RowRef) else RowRef(r)) for r in refs]
        todo: dict[str, RowRef] = {}
        for r in refs_:
            if r.key not in self.entries and r.key not in todo:
                todo[r.key] = r
        if not todo:
            return ()
        backend = self._measuring_backend()
        self._isolated_only(next(iter(todo.values())))
        pending = list(todo.values())
        done = 0
        try:
            items = (make(r.key) for r in pending)
            for r, stats in zip(pending, time_each(backend, items, self.protocol)):
                entry = self._add_entry(r, stats)
                done += 1
                if on_measured is not None:
                    on_measured(entry, done, len(pending))
        except (ConfigError, RowProbeError):
            for r in pending[done:]:  # one by one from the first row not measured: the error names it
                entry = self.measure(r, make)
                done += 1
                if on_measured is not None:
                    on_measured(entry, done, len(pending))
        return tuple(todo)

    def add_entry(self, ref: RowRef, stats: LatencyStats) -> LutEntry:
        """Record a row measured elsewhere (`zoo lut import`); kept as is when the key is there already."""
        self._check_writable()
        if ref.key in self.entries:
            return self.entries[ref.key]
        return self._add_entry(ref, stats)

    def _isolated_only(self, ref: RowRef) -> None:
        if self.timing == "in_context":
            raise LutError(ref.file or str(self.path), f"{self.path} times rows in context: a row is measured "
                                                       "inside a whole model (predict_plan with measure=True)",
                           row=ref.row, module=ref.module)

    def add_in_context(self, model_name: str, refs: Sequence[RowRef], rows_ms: Sequence[float],
                       stats: LatencyStats | None = None) -> None:
        """Append one model's rows as timed in its forward passes (profiles.incontext), one record per row
        (a key repeated in the model, once per row), and update their entries; `stats` (the model's
        own passes) is kept beside only when given."""
        self._measuring_backend()
        if self.timing != "in_context":
            raise LutError(str(self.path), "this table times rows alone; in-context rows need a table built "
                                           "with timing in_context")
        if len(refs) != len(rows_ms):
            raise ValueError(f"{len(refs)} rows but {len(rows_ms)} times")
        lines = []
        expected, level = self._level()
        factor = expected
        if self._fits_levels:  # this model's level against the rows the table holds already
            factor = level_of([(float(ms), self.entries[r.key].median_ms if r.key in self.entries else None)
                               for r, ms in zip(refs, rows_ms)], expected=expected)
            self.model_levels[model_name] = factor
        for ref, ms in zip(refs, rows_ms):
            e = LutEntry(key=ref.key, median_ms=float(ms), p90_ms=float(ms), mean_ms=float(ms), cv=0.0,
                         runs=stats.runs if stats is not None else 0,
                         warmup_runs=stats.warmup_runs if stats is not None else 0, label=ref.label)
            lines.append(json.dumps({"kind": "row", **_entry_dict(e), "model": model_name, **level}))
            if self._fits_levels:
                self._records.append(Record(model_name, ref.key, float(ms), expected))
                self._first.setdefault(ref.key, e)
            self._take_sample(_at_table_level(e, factor))
        if self._fits_levels:
            self._expected[model_name] = expected
            self._keep_gauge()
        self.samples_by_model.add(model_name)
        self._write("a", ("\n" if self._needs_newline else "") + "\n".join(lines) + "\n")
        self._needs_newline = False

    @property
    def _fits_levels(self) -> bool:
        return self.timing == "in_context" and self.levels == "per_model"

    def refit(self) -> None:
        """Every in-context key's entry and every model's level from all the records (profiles.lutlevels), as
        a reload gives them: a model appended since was leveled against the entries of its moment only."""
        if not self._fits_levels:
            return
        fit = fit_levels(self._records, self.estimator)
        self.model_levels = dict(fit.levels)
        self._expected = {r.model: r.expected for r in self._records}
        self.samples = {}
        for r in self._records:
            first = self._first[r.key]
            ms = r.ms / fit.levels[r.model]
            self.samples.setdefault(r.key, []).append(replace(first, median_ms=ms, p90_ms=ms, mean_ms=ms))
        for key, ms in fit.entries.items():
            first = self._first[key]
            self.entries[key] = LutEntry(key, ms, ms, ms, 0.0, first.runs, first.warmup_runs, first.label)
        self.revision += 1

    def _keep_gauge(self) -> None:
        """Levels per_model: the models' median level (against the anchor each was timed under) kept at 1 as
        models are appended, as a reload's fit keeps it. Without this a growing table (a search's own, built
        as it goes) stays at the level of its first few models: a search whose first models ran 10% fast
        priced every later candidate 10% low, and none it chose met the budget when re-measured."""
        g = float(np.median([v / self._expected.get(m, 1.0) for m, v in self.model_levels.items()]))
        if abs(g - 1.0) <= GAUGE_SLACK:
            return
        self.model_levels = {m: v / g for m, v in self.model_levels.items()}
        self.samples = {k: [replace(x, median_ms=x.median_ms * g, p90_ms=x.p90_ms * g, mean_ms=x.mean_ms * g)
                            for x in same] for k, same in self.samples.items()}
        for k in self.samples:
            e = self.entries[k]
            self.entries[k] = replace(e, median_ms=e.median_ms * g, p90_ms=e.p90_ms * g, mean_ms=e.mean_ms * g)
        self.revision += 1

    def _take_sample(self, e: LutEntry) -> None:
        """An in-context record: kept among its key's, the entry re-estimated over them."""
        same = self.samples.setdefault(e.key, [])
        same.append(e)
        self.revision += 1
        ms = estimate([x.median_ms for x in same], self.estimator) if len(same) > 1 else e.median_ms
        self.entries[e.key] = LutEntry(e.key, ms, ms, ms, 0.0, e.runs, e.warmup_runs, same[0].label)

    def _add_entry(self, ref: RowRef, stats: LatencyStats) -> LutEntry:
        entry = LutEntry(key=ref.key, median_ms=stats.median_ms, p90_ms=stats.p90_ms, mean_ms=stats.mean_ms,
                         cv=stats.cv, runs=stats.runs, warmup_runs=stats.warmup_runs, label=ref.label)
        factor, level = self._level()
        self._append({"kind": "row", **_entry_dict(entry), **level})
        self.entries.setdefault(entry.key, _at_table_level(entry, factor))
        return self.entries[entry.key]

    def _level(self) -> tuple[float, dict[str, float]]:
        """The factor in force while a row or model is timed here, and its record's `anchor` field: none
        while no anchor stands, and none for imported records (the device timed those at a moment of its
        own); a record without the field reads as 1."""
        if self.anchor is None or self.importing:
            return 1.0, {}
        return self.anchor.factor, {"anchor": self.anchor.factor}

    def _row_error(self, ref: RowRef, text: str) -> LutError:
        return LutError(ref.file or str(self.path), f"cannot measure this row for {self.path}: {text}",
                        row=ref.row, module=ref.module)

    def add_model(self, name: str, keys: Sequence[str], stats: LatencyStats) -> ModelRecord:
        """Record a whole model measured on this device (or imported) beside the sum of its rows' entries."""
        self._check_writable()
        if name in self.models:
            raise LutError(str(self.path), f"calibration model {name!r} is already in the table")
        (factor, level), row_sum = self._level(), self.row_sum(keys)
        self._append({"kind": "model", "name": name, "keys": list(keys), "row_sum_ms": row_sum,
                      "median_ms": stats.median_ms, "p90_ms": stats.p90_ms, "cv": stats.cv, **level})
        # stored at the table's level, as its rows' entries are (the sum it is fitted against)
        record = ModelRecord(name=name, keys=tuple(keys), row_sum_ms=row_sum,
                             median_ms=stats.median_ms / factor, p90_ms=stats.p90_ms / factor, cv=stats.cv)
        self.models[name] = record
        return record

    def measure_model(self, name: str, model: nn.Module, shape: Shape, keys: Sequence[str]) -> ModelRecord:
        """Time a whole model (input `shape`, the model protocol) and record it; a model already
        recorded is kept as is."""
        if name in self.models:
            return self.models[name]
        missing = [k for k in keys if k not in self.entries]
        if missing:
            raise LutError(str(self.path), f"calibration model {name!r}: measure its rows first "
                                           f"({len(missing)} missing, e.g. {missing[0]})")
        try:
            stats = model_timer(self._measuring_backend(), model, shape)(self.model_protocol)
        except BackendError as e:
            raise LutError(str(self.path), f"calibration model {name!r}: {e.text}") from None
        return self.add_model(name, keys, stats)

    def fit(self) -> Calibration:
        """The calibration the table's model records give now (not stored; see save_fit). An in-context
        table's entries move as models are added, so its models' row sums are taken from the entries now;
        its rows already add up to a model's total, so its models are a check, not a fit (see
        fit_calibration's identity)."""
        ms = list(self.models.values())
        sums = [self.model_row_sum(m) for m in ms]
        return fit_calibration(sums, [m.median_ms for m in ms], [m.name for m in ms],
                               mode="identity" if self.timing == "in_context" else "line")

    def model_row_sum(self, m: ModelRecord) -> float:
        """A calibration model's row sum as a prediction takes it now: an in-context table's entries move as
        models are added (the sum the record kept is of its moment, before the rows timed after it), an
        isolated table's do not (the sum recorded beside the measurement)."""
        return self.row_sum(m.keys) if self.timing == "in_context" else m.row_sum_ms

    def save_fit(self) -> Calibration:
        """Fit on every model record and append the fit (with its residuals); predictions use it."""
        self._check_writable()
        cal = self.fit()
        self._append({"kind": "fit", "method": cal.method, "a": cal.a, "b": cal.b, "models": list(cal.models),
                      "row_sums_ms": list(cal.row_sums_ms), "measured_ms": list(cal.measured_ms),
                      "residuals_ms": list(cal.residuals_ms)})
        self.calibration = cal
        return cal

    def add_anchor(self, anchor: Anchor) -> Anchor:
        """Append an anchor measured on this table's device (profiles.lutanchor); predictions use it from now."""
        self._measuring_backend()
        self._append({"kind": "anchor", **anchor.as_dict()})
        self.anchor = anchor
        return anchor

    def add_build(self, seconds: float, rows: int, models: int, sources: Sequence[str]) -> BuildRecord:
        """Note one build session (what `zoo lut show` reports of how the table was made)."""
        self._check_writable()
        rec = BuildRecord(_now(), float(seconds), int(rows), int(models), tuple(sources))
        self._append({"kind": "build", "finished": rec.finished, "seconds": rec.seconds, "rows": rec.rows,
                      "models": rec.models, "sources": list(rec.sources)})
        self.builds.append(rec)
        return rec

    @property
    def fit_is_current(self) -> bool:
        """Whether the stored fit was made on all the model records the table has now."""
        return self.calibration is not None and set(self.calibration.models) == set(self.models)

    # ---- the file ------------------------------------------------------------------------------------
    def _check_writable(self) -> None:
        if not self.importing:
            self._measuring_backend()

    def _measuring_backend(self) -> Backend:
        if self.backend is None:
            raise LutError(str(self.path), "this table is open for reading only: measuring needs it opened on "
                                           "the device it was built for (same fingerprint)")
        return self.backend

    def _write_header(self) -> None:
        header = {"format": FORMAT, "version": VERSION, "fingerprint": self.fingerprint.as_dict(),
                  "protocol": self.protocol.as_dict(), "model_protocol": self.model_protocol.as_dict(),
                  "form": self.form, "timing": self.timing, "estimator": self.estimator, "levels": self.levels,
                  "created": self.created}
        self._write("x", json.dumps(header) + "\n")

    def _append(self, record: Mapping[str, Any]) -> None:
        self._write("a", ("\n" if self._needs_newline else "") + json.dumps(record) + "\n")
        self._needs_newline = False

    def _write(self, mode: str, text: str) -> None:
        """One write per record, flushed to disk: a crash loses at most the record being written."""
        try:
            with open(self.path, mode, encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise LutError(str(self.path), f"cannot write the latency table: {e.strerror or e}") from None

    def _set_aside_torn(self, offset: int) -> None:
        """Copy the whole file aside, then cut the torn tail so that appends start on a fresh line."""
        copy = _free_name(self.path.with_name(self.path.name + ".torn"))
        shutil.copy2(self.path, copy)
        with open(self.path, "r+b") as f:
            f.truncate(offset)
        self.set_aside = copy
        warnings.warn(LutWarning(f"{self.path}: the last line was torn (an interrupted build); the file as it "
                                 f"was is kept in {copy} and the torn line dropped"), stacklevel=3)

    @classmethod
    def _read(cls, path: Path, levels: str | None = None) -> tuple[LatencyTable, int | None]:
        """Parse the file; returns the table and the byte offset of a torn last line (None if none)."""
        try:
            data = path.read_bytes()
        except OSError as e:
            raise LutError(str(path), f"cannot read the latency table: {e.strerror or e}") from None
        if not data.strip():
            raise LutError(str(path), "empty file: not a zoo latency table")
        lines = data.split(b"\n")
        complete_end = len(data) if data.endswith(b"\n") else data.rfind(b"\n") + 1
        tail = data[complete_end:]  # bytes after the last newline: a final line without its newline
        table = cls._from_header(path, lines[0], whole=complete_end > 0)
        if levels is not None:
            if levels not in LEVELS:
                raise ValueError(f"levels= must be one of {', '.join(LEVELS)}, got {levels!r}")
            table.levels = levels
        table._needs_newline = complete_end == 0  # a header alone, without its newline
        torn_at: int | None = None
        for n, raw in enumerate(lines[1:], 2):
            is_tail = bool(tail) and n == len(lines)
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                if is_tail:
                    torn_at = complete_end
                    break
                raise LutError(str(path), f"line {n} is not valid JSON ({e}); the file was left as it is") from None
            table._take(record, n)
            if is_tail:
                table._needs_newline = True
        if table._fits_levels:
            table.refit()
        return table, torn_at

    @classmethod
    def _from_header(cls, path: Path, raw: bytes, *, whole: bool) -> LatencyTable:
        def bad(why: str) -> LutError:
            return LutError(str(path), f"not a zoo latency table: {why}")

        try:
            header = json.loads(raw)
        except ValueError:
            raise bad("the first line is not JSON" + ("" if whole else " (torn: delete the file and rebuild)")) \
                from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise bad(f'the first line lacks "format": "{FORMAT}"')
        if header.get("version") != VERSION:
            raise bad(f"version {header.get('version')!r}; this zoo reads version {VERSION} (rebuild the table)")
        try:
            fp = DeviceFingerprint.from_dict(header["fingerprint"])
            protocol = TimingProtocol(**header["protocol"])
            model_protocol = TimingProtocol(**header["model_protocol"])
            return cls(path, fp, protocol, header.get("created"), model_protocol=model_protocol,
                       form=header["form"], timing=header.get("timing", "isolated"),
                       estimator=header.get("estimator", OLD_TABLES_ESTIMATOR),
                       levels=header.get("levels", OLD_TABLES_LEVELS))
        except KeyError as e:
            raise bad(f"the header lacks {e}") from None
        except (TypeError, ValueError) as e:
            raise bad(f"bad header: {e}") from None

    def _take(self, record: dict[str, Any], n: int) -> None:
        kind = record.get("kind")
        try:
            if kind == "row":
                entry = LutEntry(key=fields.text(record, "key"), median_ms=fields.number(record, "median_ms", at_least=0),
                                 p90_ms=fields.number(record, "p90_ms", at_least=0), mean_ms=fields.number(record, "mean_ms", at_least=0),
                                 cv=fields.number(record, "cv"), runs=fields.count(record, "runs"),
                                 warmup_runs=fields.count(record, "warmup_runs"), label=record.get("label"))
                if self._fits_levels:  # fitted once every record is read (_refit)
                    self._records.append(Record(str(record.get("model", f"line {n}")), entry.key, entry.median_ms,
                                                _timed_at(record)))
                    self._first.setdefault(entry.key, entry)
                    if isinstance(record.get("model"), str):
                        self.samples_by_model.add(record["model"])
                    return
                entry = _at_table_level(entry, _timed_at(record))
                if self.timing == "in_context":
                    self._take_sample(entry)
                    if isinstance(record.get("model"), str):
                        self.samples_by_model.add(record["model"])
                else:
                    self.entries.setdefault(entry.key, entry)  # the first measurement of a key stands
            elif kind == "model":
                keys = record.get("keys")
                if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                    raise ValueError("keys must be a list of strings")
                factor = _timed_at(record)
                rec = ModelRecord(name=fields.text(record, "name"), keys=tuple(keys), row_sum_ms=fields.number(record, "row_sum_ms", at_least=0),
                                  median_ms=fields.number(record, "median_ms", at_least=0) / factor,
                                  p90_ms=fields.number(record, "p90_ms", at_least=0) / factor, cv=fields.number(record, "cv"))
                self.models.setdefault(rec.name, rec)
            elif kind == "fit":
                lists = {k: record.get(k) for k in ("models", "row_sums_ms", "measured_ms", "residuals_ms")}
                if not all(isinstance(v, list) for v in lists.values()) or len({len(v) for v in lists.values()}) != 1:
                    raise ValueError("models, row_sums_ms, measured_ms and residuals_ms must be lists of one length")
                self.calibration = Calibration(
                    method=fields.text(record, "method"), a=fields.number(record, "a"), b=fields.number(record, "b"),
                    models=tuple(map(str, lists["models"])), row_sums_ms=tuple(map(float, lists["row_sums_ms"])),
                    measured_ms=tuple(map(float, lists["measured_ms"])),
                    residuals_ms=tuple(map(float, lists["residuals_ms"])))
            elif kind == "build":
                sources = record.get("sources")
                if not isinstance(sources, list) or not all(isinstance(x, str) for x in sources):
                    raise ValueError("sources must be a list of strings")
                self.builds.append(BuildRecord(fields.text(record, "finished"), fields.number(record, "seconds", at_least=0),
                                               fields.count(record, "rows"), fields.count(record, "models"), tuple(sources)))
            elif kind == "anchor":
                lists = {k: record.get(k) for k in ("models", "predicted_ms", "measured_ms")}
                if not all(isinstance(v, list) for v in lists.values()) or len({len(v) for v in lists.values()}) != 1 \
                        or not lists["models"]:
                    raise ValueError("models, predicted_ms and measured_ms must be non-empty lists of one length")
                models = tuple(AnchorModel(str(n), float(p), float(m))
                               for n, p, m in zip(lists["models"], lists["predicted_ms"], lists["measured_ms"]))
                if not all(m.predicted_ms > 0 and m.measured_ms > 0 for m in models):
                    raise ValueError("an anchor's predicted_ms and measured_ms must be > 0")
                self.anchor = Anchor(fields.text(record, "at"), fields.number(record, "factor", positive=True),
                                     fields.count(record, "rounds"), models)
            else:
                raise ValueError(f"unknown kind {kind!r} (row, model, fit, build or anchor)")
        except (ValueError, TypeError) as e:
            raise LutError(str(self.path), f"line {n}: {e}; the file was left as it is") from None


# ---- rows of a plan ------------------------------------------------------------------------------------
def row_label(sig: RowSignature) -> str:
    """`C3[64, 64, 1] in 64x80x80`: what a key is, for a reader of the table."""
    shapes = ", ".join("x".join(str(d) for d in shape) for shape in sig.inputs)
    copies = f" x{sig.copies}" if sig.copies > 1 else ""
    return f"{sig.module}{short_args(sig.call_args)}{copies} in {shapes}"


def plan_refs(plan: ModelPlan) -> list[RowRef]:
    """One RowRef per row of the plan, in row order (repeated signatures appear once per row)."""
    return [RowRef(rp.signature.key(), row=rp.index, module=rp.row.module, file=plan.config.path,
                   label=row_label(rp.signature), imgsz=plan.imgsz) for rp in plan.rows]


class RowMaker:
    """A MakeRow over known signatures: key -> the row's module (eval mode, random weights; folded for
    the deploy form) and random inputs of its real shapes, seeded by the key."""

    def __init__(self, form: str = "train") -> None:
        if form not in FORMS:
            raise ValueError(f"form= must be one of {', '.join(FORMS)}, got {form!r}")
        self.form = form
        self.signatures: dict[str, RowSignature] = {}

    def add(self, plan: ModelPlan) -> list[RowRef]:
        """Learn the plan's signatures; returns its rows' refs."""
        refs = plan_refs(plan)
        for ref, rp in zip(refs, plan.rows):
            self.signatures.setdefault(ref.key, rp.signature)
        return refs

    def __call__(self, key: str) -> tuple[nn.Module, Inputs]:
        sig = self.signatures[key]
        module, zeros = instantiate_row(sig)
        if self.form == "deploy":
            from zoo.deploy import deploy
            deploy(module)
        shapes = [tuple(t.shape) for t in (zeros if isinstance(zeros, list) else [zeros])]
        seed = int(sig.digest()[:8], 16)
        inputs = random_inputs(shapes if isinstance(zeros, list) else shapes[0], seed=seed)
        return module.eval(), inputs


def predict_plan(table: LatencyTable, plan: ModelPlan, measure: MakeRow | bool | None = None) -> Prediction:
    """Price every row of a plan (one entry per row, repeats counted) with the table's calibrated sum.

    A row the table lacks is measured and appended when `measure` is given (a MakeRow, or True for one
    made from this plan in the table's form) and the table is open on its device; otherwise it is a
    LutError naming the row (file, YAML row, module, key), never a silent zero.
    """
    maker = RowMaker(table.form)
    refs = maker.add(plan)
    if table.timing == "in_context":
        if measure and table.missing(refs):
            measure_plan_in_context(table, plan, refs)
        return table.predict(refs)
    make: MakeRow | None = maker if measure is True else (measure or None)
    return table.predict(refs, measure=make)


def measure_plan_in_context(table: LatencyTable, plan: ModelPlan, refs: Sequence[RowRef] | None = None,
                            *, name: str | None = None, protocol: TimingProtocol | None = None,
                            model: nn.Module | None = None) -> Any:
    """Build the plan's model (in the table's form; `model` when built already), time its rows in context
    on the table's backend and append them; returns the profiles.incontext.InContextTiming."""
    from zoo.builder import build_from_plan

    backend = table._measuring_backend()
    timer = getattr(backend, "time_in_context", None)
    if timer is None:
        raise LutError(str(table.path), f"the {backend.name} backend cannot time rows in context")
    refs = list(refs) if refs is not None else plan_refs(plan)
    try:
        if model is None:
            model = build_from_plan(plan)
            if table.form == "deploy":
                from zoo.deploy import deploy
                deploy(model)
        timing = timer(model, (1, plan.config.ch, plan.imgsz, plan.imgsz), protocol or table.protocol,
                       estimator=table.estimator)
    except (ConfigError, RowProbeError) as e:
        raise LutError(plan.config.path or str(table.path), f"cannot time this candidate in context: {e}") from None
    table.add_in_context(name or plan_digest(refs), refs, timing.rows_ms, timing.total)
    return timing


def plan_digest(refs: Sequence[RowRef]) -> str:
    """A model's name in a table: a digest of its row keys (the same rows, the same name)."""
    import hashlib
    return "rows #" + hashlib.sha1("\n".join(r.key for r in refs).encode()).hexdigest()[:12]


def _timed_at(record: Mapping[str, Any]) -> float:
    """The anchor factor a row or model record was timed under (its `anchor` field; absent: 1), the
    inverse of LatencyTable._level."""
    return fields.number(record, "anchor", positive=True) if "anchor" in record else 1.0


def _at_table_level(e: LutEntry, factor: float) -> LutEntry:
    """A row timed while an anchor of `factor` stood, brought to the table's own level (module docstring)."""
    if factor == 1.0:
        return e
    return replace(e, median_ms=e.median_ms / factor, p90_ms=e.p90_ms / factor, mean_ms=e.mean_ms / factor)


def _entry_dict(e: LutEntry) -> dict[str, Any]:
    return {"key": e.key, "label": e.label, "median_ms": e.median_ms, "p90_ms": e.p90_ms, "mean_ms": e.mean_ms,
            "cv": e.cv, "runs": e.runs, "warmup_runs": e.warmup_runs}


def _free_name(path: Path) -> Path:
    if not path.exists():
        return path
    i = 1
    while path.with_name(f"{path.name}.{i}").exists():
        i += 1
    return path.with_name(f"{path.name}.{i}")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
# ---- what a table holds, for `zoo lut show` ------------------------------------------------------------
@dataclass(frozen=True)
class ModelCheck:
    """A calibration model against the stored fit."""

    name: str
    rows: int
    row_sum_ms: float
    measured_ms: float
    predicted_ms: float
    cv: float
    in_fit: bool
    level: float = 1.0  # the device's level while its rows were timed (levels per_model; else 1): the check
    # takes the model at its own moment, so it says whether rows add up, not how far the device moved

    @property
    def error(self) -> float:
        """(predicted - measured) / measured."""
        return (self.predicted_ms - self.measured_ms) / self.measured_ms


CHECK_WARN = 0.05  # an in-context table that predicts its own calibration models worse than this (median)
# is flagged: the device ran at another speed while parts of it were timed (a 2-core VM's regimes differ by
# ~10%: bench/results/lut_accuracy_torch320_allrounds, where a table 9.6% off its models predicted every
# candidate 6-18% high)


@dataclass(frozen=True)
class TableSummary:
    path: str
    bytes: int
    fingerprint: DeviceFingerprint
    protocol: TimingProtocol
    model_protocol: TimingProtocol
    form: str
    created: str | None
    rows: int
    rows_by_module: tuple[tuple[str, int], ...]  # most frequent first
    row_ms: tuple[float, float, float] | None  # smallest, median, largest entry
    models: tuple[ModelCheck, ...]
    calibration: Calibration | None
    fit_is_current: bool
    builds: tuple[BuildRecord, ...]
    timing: str = "isolated"
    anchor: Anchor | None = None  # the latest; the models' check above is before it (their build-time speed)
    check_error: float | None = None  # the median |error| of `models` (None without any): an isolated table's
    # fit residuals; an in-context table's check (no fit: rows add up)
    levels: str = "none"
    level_range: tuple[float, float] | None = None  # levels per_model: the models' 5th and 95th percentile

    @property
    def build_seconds(self) -> float:
        return math.fsum(b.seconds for b in self.builds)

    @property
    def warnings(self) -> tuple[str, ...]:
        """What to know before trusting the predictions: an in-context table more than CHECK_WARN off its
        own calibration models (timed whole beside their rows, so they agree unless the device's speed
        moved between them and the rows timed later)."""
        err = self.check_error
        if self.timing != "in_context" or err is None or err <= CHECK_WARN:
            return ()
        return (f"{self.path}: the table predicts its own calibration models {err:.1%} off (median, more than "
                f"{CHECK_WARN:.0%}): most likely the device ran at another speed while parts of it were timed "
                "(a busy, throttling or shared machine); its predictions carry that error, so rebuild it on a "
                "quiet device",)

    def as_dict(self) -> dict[str, Any]:
        cal = self.calibration
        return {
            "path": self.path, "bytes": self.bytes, "format": FORMAT, "version": VERSION,
            "fingerprint": self.fingerprint.as_dict(), "protocol": self.protocol.as_dict(),
            "model_protocol": self.model_protocol.as_dict(), "form": self.form, "timing": self.timing,
            "created": self.created, "rows": self.rows, "rows_by_module": dict(self.rows_by_module),
            "row_ms": None if self.row_ms is None else dict(zip(("min", "median", "max"), self.row_ms)),
            "calibration": None if cal is None else {"method": cal.method, "a": cal.a, "b": cal.b,
                                                     "models": list(cal.models), "current": self.fit_is_current},
            "models": [{"name": m.name, "rows": m.rows, "row_sum_ms": m.row_sum_ms, "measured_ms": m.measured_ms,
                        "predicted_ms": m.predicted_ms, "error": m.error, "cv": m.cv, "in_fit": m.in_fit,
                        "level": m.level}
                       for m in self.models],
            "builds": [{"finished": b.finished, "seconds": b.seconds, "rows": b.rows, "models": b.models,
                        "sources": len(b.sources)} for b in self.builds],
            "build_seconds": self.build_seconds, "check_error": self.check_error, "warnings": list(self.warnings),
            "levels": self.levels, "level_range": None if self.level_range is None else list(self.level_range),
            "anchor": None if self.anchor is None else self.anchor.as_dict(),
        }


def summarize_table(table: LatencyTable) -> TableSummary:
    """Fingerprint, protocols, coverage (rows by module, models), the fit and each model's error under it."""
    by_module: dict[str, int] = {}
    for key in table.entries:
        by_module[_key_module(key)] = by_module.get(_key_module(key), 0) + 1
    ms = sorted(e.median_ms for e in table.entries.values())
    cal = table.calibration or UNCALIBRATED
    fitted = set(table.calibration.models) if table.calibration is not None else set()
    checks = []
    for m in table.models.values():
        row_sum = table.model_row_sum(m)
        level = table.model_levels.get(m.name, 1.0)
        checks.append(ModelCheck(m.name, len(m.keys), row_sum, m.median_ms, cal.predict(row_sum) * level, m.cv,
                                 m.name in fitted, level))
    levels = list(table.model_levels.values())
    models = tuple(checks)
    try:
        size = table.path.stat().st_size
    except OSError:
        size = 0
    return TableSummary(str(table.path), size, table.fingerprint, table.protocol, table.model_protocol, table.form,
                        table.created, len(table.entries),
                        tuple(sorted(by_module.items(), key=lambda kv: (-kv[1], kv[0]))),
                        (ms[0], ms[len(ms) // 2], ms[-1]) if ms else None, models, table.calibration,
                        table.fit_is_current, tuple(table.builds), table.timing, table.anchor,
                        float(np.median([abs(m.error) for m in models])) if models else None, table.levels,
                        (float(np.percentile(levels, 5)), float(np.percentile(levels, 95))) if levels else None)


def _key_module(key: str) -> str:
    """The module name of a RowSignature key (its second field); the whole key when it is not one."""
    try:
        data = json.loads(key)
        return str(data[1]) if isinstance(data, list) and len(data) > 1 else key
    except ValueError:
        return key
