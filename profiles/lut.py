"""A per-device latency table: one measured entry per row key, whole models for calibration, and the fit
total = a * (sum of a model's row entries) + b that turns a sum of standalone rows into a prediction.

The file is JSON lines, appended and flushed as each entry is measured, so an interrupted build keeps
what it measured and a rerun skips the keys already there:

    {"format": "zoo-lut", "version": 1, "fingerprint": {...}, "protocol": {...}, "created": "..."}
    {"kind": "row", "key": "...", "label": "...", "median_ms": ..., "p90_ms": ..., "mean_ms": ..., "cv": ...,
     "runs": ..., "warmup_runs": ...}
    {"kind": "model", "name": "...", "keys": [...], "row_sum_ms": ..., "median_ms": ..., "p90_ms": ..., "cv": ...}
    {"kind": "fit", "method": "least squares", "a": ..., "b": ..., "models": [...], "row_sums_ms": [...],
     "measured_ms": [...], "residuals_ms": [...]}

Summed standalone rows miss the whole model (per-row ORT sessions by +13% here: session overhead and
layout reorders at every boundary), so predictions use the latest stored fit. A table is read only under
the fingerprint it was built with (`force=True` to read it anyway; it is never added to then). A key
the table lacks is an error naming the row, or is measured and appended when a measuring callable is
given. A bad file is a LutError that leaves the file as it is; the one exception is a torn last line
(an interrupted write), which a build sets aside into a copy before it appends.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from torch import nn

from zoo.errors import ConfigError

from .backends.base import Backend, Inputs, Shape
from .fingerprint import DeviceFingerprint, describe_diff, device_fingerprint, fingerprint_diff
from .latency import LatencyStats, TimingProtocol

FORMAT = "zoo-lut"
VERSION = 1
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

    method: str  # "least squares" (two or more distinct sums), "ratio" (b = 0), "none" (a = 1, b = 0)
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
class Prediction:
    total_ms: float  # calibration.predict(row_sum_ms)
    row_sum_ms: float
    rows: tuple[tuple[RowRef, float], ...]  # each row's entry (median ms), in the order asked
    calibration: Calibration


def fit_calibration(row_sums_ms: Sequence[float], measured_ms: Sequence[float],
                    models: Sequence[str] = ()) -> Calibration:
    """Least squares of measured = a * row_sum + b over the calibration models.

    One distinct row sum cannot fix a slope and an intercept: then a is the ratio of the means, b = 0.
    No model: the identity, marked "none".
    """
    x = np.asarray(row_sums_ms, dtype=float)
    y = np.asarray(measured_ms, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("row_sums_ms and measured_ms must be flat sequences of one length")
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)) or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("calibration sums and measurements must be finite and > 0")
    names = tuple(models) or tuple(f"model {i}" for i in range(len(x)))
    if len(x) == 0:
        return UNCALIBRATED
    if len(np.unique(x)) >= 2:
        (a, b), *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], axis=1), y, rcond=None)
        method = "least squares"
    else:
        a, b, method = float(y.mean() / x.mean()), 0.0, "ratio"
    residuals = y - (a * x + b)
    return Calibration(method, float(a), float(b), names, tuple(map(float, x)), tuple(map(float, y)),
                       tuple(map(float, residuals)))


class LatencyTable:
    """A table file and what it holds. `load` reads; `open` reads or creates it for measuring."""

    def __init__(self, path: Path, fingerprint: DeviceFingerprint, protocol: TimingProtocol,
                 created: str | None) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.protocol = protocol
        self.created = created
        self.entries: dict[str, LutEntry] = {}
        self.models: dict[str, ModelRecord] = {}
        self.calibration: Calibration | None = None  # the latest stored fit
        self.backend: Backend | None = None  # set by `open`: the device this table can be measured on
        self.set_aside: Path | None = None  # where a torn last line was copied to, if one was
        self._needs_newline = False

    # ---- reading -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a table; a torn last line is ignored with a LutWarning (the file is not touched)."""
        table, torn_at = cls._read(Path(path))
        if torn_at is not None:
            warnings.warn(LutWarning(f"{path}: the last line is torn (an interrupted build?) and was ignored; "
                                     "resuming the build sets it aside"), stacklevel=2)
        return table

    @classmethod
    def open(cls, path: str | Path, backend: Backend, *, protocol: TimingProtocol | None = None,
             force: bool = False) -> LatencyTable:
        """The table at `path` ready to measure on `backend`, created with `protocol` when absent.

        An existing table must have this device's fingerprint (force=True reads it anyway but refuses
        to add to it) and, when `protocol` is given, the protocol it was built with.
        """
        path = Path(path)
        here = device_fingerprint(backend)
        if not path.exists():
            table = cls(path, here, protocol or TimingProtocol(), _now())
            table._write_header()
            table.backend = backend
            return table
        table, torn_at = cls._read(path)
        table.check(here, force=force)
        if protocol is not None and protocol != table.protocol:
            diffs = [f"{k} {v} (table) vs {protocol.as_dict()[k]} (asked)"
                     for k, v in table.protocol.as_dict().items() if protocol.as_dict()[k] != v]
            raise LutError(str(path), "the table was built with another timing protocol: " + "; ".join(diffs))
        if not fingerprint_diff(table.fingerprint, here):
            table.backend = backend
            if torn_at is not None:
                table._set_aside_torn(torn_at)
        elif torn_at is not None:
            warnings.warn(LutWarning(f"{path}: the last line is torn and was ignored"), stacklevel=2)
        return table

    def check(self, here: DeviceFingerprint, *, force: bool = False) -> None:
        """Refuse a table of another fingerprint, naming the fields that differ, unless `force`."""
        diffs = fingerprint_diff(self.fingerprint, here)
        if diffs and not force:
            raise LutError(str(self.path), f"built on another device or backend setting: {describe_diff(diffs)} "
                                           "(rebuild it here, or force to use it anyway)")

    # ---- pricing -------------------------------------------------------------------------------------
    def entry(self, ref: str | RowRef, *, measure: MakeRow | None = None) -> LutEntry:
        """The entry of a row; a missing one is measured and appended when `measure` is given, else an error."""
        ref = ref if isinstance(ref, RowRef) else RowRef(ref)
        found = self.entries.get(ref.key)
        if found is not None:
            return found
        if measure is None:
            raise LutError(ref.file or str(self.path), f"no latency entry for this row in {self.path} "
                                                       f"(key {ref.key}); rebuild the table with this config "
                                                       "or measure missing rows on the device",
                           row=ref.row, module=ref.module)
        return self.measure(ref, measure)

    def predict(self, refs: Iterable[str | RowRef], *, measure: MakeRow | None = None) -> Prediction:
        """The calibrated sum of the rows' entries (every row counted, repeats included)."""
        rows = [(r if isinstance(r, RowRef) else RowRef(r)) for r in refs]
        priced = tuple((r, self.entry(r, measure=measure).median_ms) for r in rows)
        row_sum = math.fsum(ms for _, ms in priced)
        cal = self.calibration or UNCALIBRATED
        return Prediction(total_ms=cal.predict(row_sum), row_sum_ms=row_sum, rows=priced, calibration=cal)

    def row_sum(self, keys: Iterable[str]) -> float:
        return math.fsum(self.entry(k).median_ms for k in keys)

    # ---- building ------------------------------------------------------------------------------------
    def measure(self, ref: str | RowRef, make: MakeRow) -> LutEntry:
        """Measure one row key on this table's backend and append it (kept as is when already present)."""
        ref = ref if isinstance(ref, RowRef) else RowRef(ref)
        if ref.key in self.entries:
            return self.entries[ref.key]
        backend = self._measuring_backend()
        module, inputs = make(ref.key)
        stats = backend.time_row(module, inputs, self.protocol)
        entry = LutEntry(key=ref.key, median_ms=stats.median_ms, p90_ms=stats.p90_ms, mean_ms=stats.mean_ms,
                         cv=stats.cv, runs=stats.runs, warmup_runs=stats.warmup_runs, label=ref.label)
        self._append({"kind": "row", **_entry_dict(entry)})
        self.entries[entry.key] = entry
        return entry

    def measure_missing(self, refs: Iterable[str | RowRef], make: MakeRow,
                        on_measured: Callable[[LutEntry, int, int], None] | None = None) -> tuple[str, ...]:
        """Measure every key not yet in the table (each once), appending as it goes; returns those measured.

        `on_measured(entry, done, todo)` after each, for a progress bar."""
        refs_ = [(r if isinstance(r, RowRef) else RowRef(r)) for r in refs]
        todo: dict[str, RowRef] = {}
        for r in refs_:
            if r.key not in self.entries and r.key not in todo:
                todo[r.key] = r
        for i, r in enumerate(todo.values(), 1):
            entry = self.measure(r, make)
            if on_measured is not None:
                on_measured(entry, i, len(todo))
        return tuple(todo)

    def add_model(self, name: str, keys: Sequence[str], stats: LatencyStats) -> ModelRecord:
        """Record a whole model measured on this device beside the sum of its rows' entries."""
        self._measuring_backend()
        if name in self.models:
            raise LutError(str(self.path), f"calibration model {name!r} is already in the table")
        record = ModelRecord(name=name, keys=tuple(keys), row_sum_ms=self.row_sum(keys), median_ms=stats.median_ms,
                             p90_ms=stats.p90_ms, cv=stats.cv)
        self._append({"kind": "model", "name": name, "keys": list(record.keys), "row_sum_ms": record.row_sum_ms,
                      "median_ms": record.median_ms, "p90_ms": record.p90_ms, "cv": record.cv})
        self.models[name] = record
        return record

    def measure_model(self, name: str, model: nn.Module, shape: Shape, keys: Sequence[str]) -> ModelRecord:
        """Time a whole model (input `shape`) and record it; a model already recorded is kept as is."""
        if name in self.models:
            return self.models[name]
        missing = [k for k in keys if k not in self.entries]
        if missing:
            raise LutError(str(self.path), f"calibration model {name!r}: measure its rows first "
                                           f"({len(missing)} missing, e.g. {missing[0]})")
        stats = self._measuring_backend().time_model(model, shape, self.protocol)
        return self.add_model(name, keys, stats)

    def fit(self) -> Calibration:
        """The calibration the table's model records give now (not stored; see save_fit)."""
        ms = list(self.models.values())
        return fit_calibration([m.row_sum_ms for m in ms], [m.median_ms for m in ms], [m.name for m in ms])

    def save_fit(self) -> Calibration:
        """Fit on every model record and append the fit (with its residuals); predictions use it."""
        self._measuring_backend()
        cal = self.fit()
        self._append({"kind": "fit", "method": cal.method, "a": cal.a, "b": cal.b, "models": list(cal.models),
                      "row_sums_ms": list(cal.row_sums_ms), "measured_ms": list(cal.measured_ms),
                      "residuals_ms": list(cal.residuals_ms)})
        self.calibration = cal
        return cal

    @property
    def fit_is_current(self) -> bool:
        """Whether the stored fit was made on all the model records the table has now."""
        return self.calibration is not None and set(self.calibration.models) == set(self.models)

    # ---- the file ------------------------------------------------------------------------------------
    def _measuring_backend(self) -> Backend:
        if self.backend is None:
            raise LutError(str(self.path), "this table is open for reading only: measuring needs it opened on "
                                           "the device it was built for (same fingerprint)")
        return self.backend

    def _write_header(self) -> None:
        header = {"format": FORMAT, "version": VERSION, "fingerprint": self.fingerprint.as_dict(),
                  "protocol": self.protocol.as_dict(), "created": self.created}
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
    def _read(cls, path: Path) -> tuple[LatencyTable, int | None]:
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
            raise bad(f"version {header.get('version')!r}; this zoo reads version {VERSION}")
        try:
            fp = DeviceFingerprint.from_dict(header["fingerprint"])
            protocol = TimingProtocol(**header["protocol"])
        except KeyError as e:
            raise bad(f"the header lacks {e}") from None
        except (TypeError, ValueError) as e:
            raise bad(f"bad header: {e}") from None
        return cls(path, fp, protocol, header.get("created"))

    def _take(self, record: dict[str, Any], n: int) -> None:
        kind = record.get("kind")
        try:
            if kind == "row":
                entry = LutEntry(key=_str(record, "key"), median_ms=_ms(record, "median_ms"),
                                 p90_ms=_ms(record, "p90_ms"), mean_ms=_ms(record, "mean_ms"),
                                 cv=_num(record, "cv"), runs=_int(record, "runs"),
                                 warmup_runs=_int(record, "warmup_runs"), label=record.get("label"))
                self.entries.setdefault(entry.key, entry)  # the first measurement of a key stands
            elif kind == "model":
                keys = record.get("keys")
                if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                    raise ValueError("keys must be a list of strings")
                rec = ModelRecord(name=_str(record, "name"), keys=tuple(keys), row_sum_ms=_ms(record, "row_sum_ms"),
                                  median_ms=_ms(record, "median_ms"), p90_ms=_ms(record, "p90_ms"),
                                  cv=_num(record, "cv"))
                self.models.setdefault(rec.name, rec)
            elif kind == "fit":
                lists = {k: record.get(k) for k in ("models", "row_sums_ms", "measured_ms", "residuals_ms")}
                if not all(isinstance(v, list) for v in lists.values()) or len({len(v) for v in lists.values()}) != 1:
                    raise ValueError("models, row_sums_ms, measured_ms and residuals_ms must be lists of one length")
                self.calibration = Calibration(
                    method=_str(record, "method"), a=_num(record, "a"), b=_num(record, "b"),
                    models=tuple(map(str, lists["models"])), row_sums_ms=tuple(map(float, lists["row_sums_ms"])),
                    measured_ms=tuple(map(float, lists["measured_ms"])),
                    residuals_ms=tuple(map(float, lists["residuals_ms"])))
            else:
                raise ValueError(f"unknown kind {kind!r} (row, model or fit)")
        except (ValueError, TypeError) as e:
            raise LutError(str(self.path), f"line {n}: {e}; the file was left as it is") from None


def _entry_dict(e: LutEntry) -> dict[str, Any]:
    return {"key": e.key, "label": e.label, "median_ms": e.median_ms, "p90_ms": e.p90_ms, "mean_ms": e.mean_ms,
            "cv": e.cv, "runs": e.runs, "warmup_runs": e.warmup_runs}


def _str(r: Mapping[str, Any], k: str) -> str:
    v = r.get(k)
    if not isinstance(v, str) or not v:
        raise ValueError(f"{k} must be a non-empty string, got {v!r}")
    return v


def _num(r: Mapping[str, Any], k: str) -> float:
    v = r.get(k)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{k} must be a finite number, got {v!r}")
    return float(v)


def _ms(r: Mapping[str, Any], k: str) -> float:
    v = _num(r, k)
    if v < 0:
        raise ValueError(f"{k} must be >= 0, got {v!r}")
    return v


def _int(r: Mapping[str, Any], k: str) -> int:
    v = r.get(k)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{k} must be an integer >= 0, got {v!r}")
    return v


def _free_name(path: Path) -> Path:
    if not path.exists():
        return path
    i = 1
    while path.with_name(f"{path.name}.{i}").exists():
        i += 1
    return path.with_name(f"{path.name}.{i}")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
