"""How a search prices a candidate's latency, behind one small interface (`price(plan, budget_ms, ...)`):

  measure  build the candidate and time it on the device with the search's backend (torch eager or
           onnxruntime): a 3-run screen first, the full measurement only for one within reach;
  lut      predict it from a latency table: the calibrated sum of its rows' entries, one dict lookup
           per row (by RowSignature), times the table's anchor (`zoo search` anchors this device's table
           before it starts, `--no-anchor` not); any machine prices from any device's table (`zoo lut import`);
           a row the table lacks is measured and appended when the table is this device's, otherwise
           the LutError names the row and how to export it, and the search stops;
  hybrid   the table while searching, the device for the final check (search.export re-measures the
           top candidates and exports the best that truly meets the budget): the table must be this
           device's (refused naming the fields that differ, unless forced).
  auto     hybrid on a table the search builds for its own space as it goes (the command line's default):
           `latency.lut` beside the study (search.worker.table_file), so a resumed study reuses it. A
           candidate with a row the table lacks is built and its rows timed inside its forward passes
           (eager torch; profiles.incontext), every row recorded, so the table fills with the rows the
           sampler visits and later candidates cost dict lookups. ORT times rows alone there instead.

`pricers(measure)` gives (the search's pricer, the final check's pricer), made once per process and
Measure (a table is opened once, a backend made once); spawned workers make their own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from profiles.backends import backend_of, get_backend
from profiles.backends.base import model_timer
from profiles.latency import LatencyStats, TimingProtocol
from profiles.lut import LatencyTable, predict_plan
from zoo.errors import ConfigError
from zoo.plan import ModelPlan, RowSignature

SCREEN_FACTOR = 1.3  # a 3-run median this far over the budget is infeasible without a full measurement
MODES = ("auto", "measure", "lut", "hybrid")


class PricingError(Exception):
    """A candidate that cannot be built or timed (the search fails its trial with this reason)."""


@dataclass(frozen=True)
class PredictedLatency:
    """A latency from a table: what a trial records in place of measured statistics."""

    median_ms: float
    row_sum_ms: float
    table: str

    @property
    def p90_ms(self) -> float:
        return self.median_ms

    @property
    def cv(self) -> float:
        return 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"median": round(self.median_ms, 4), "p90": round(self.median_ms, 4), "cv": 0.0,
                "source": "lut"}


class LatencyPricer(Protocol):
    mode: str  # "measured" or "predicted"

    def price(self, plan: ModelPlan, budget_ms: float | None, *, full: bool = False,
              runs_factor: int = 1) -> tuple[Any, bool]:
        """(latency with `median_ms` and `as_dict()`, screened): `full` skips the screen; `runs_factor`
        multiplies runs and warm-up (the final check's longer measurement)."""
        ...


class MeasuredLatency:
    """Build the candidate with weights and time it on `backend` (the profiles protocol)."""

    mode = "measured"

    def __init__(self, backend: Any, *, runs: int, warmup_runs: int, warmup_s: float, deploy: bool) -> None:
        self.backend = backend
        self.runs, self.warmup_runs, self.warmup_s, self.deploy = runs, warmup_runs, warmup_s, deploy

    def price(self, plan: ModelPlan, budget_ms: float | None, *, full: bool = False,
              runs_factor: int = 1) -> tuple[LatencyStats, bool]:
        from zoo.builder import build_from_plan
        from zoo.deploy import deploy

        try:
            model = build_from_plan(plan)
            if self.deploy:
                deploy(model)
            timer = model_timer(self.backend, model, (1, plan.config.ch, plan.imgsz, plan.imgsz))
            if budget_ms is not None and not full:
                quick = timer(TimingProtocol(runs=3, warmup_runs=2, warmup_s=min(self.warmup_s, 0.2)))
                if quick.median_ms > SCREEN_FACTOR * budget_ms:
                    return quick, True
            return timer(TimingProtocol(runs=self.runs * runs_factor, warmup_runs=self.warmup_runs,
                                        warmup_s=self.warmup_s * runs_factor)), False
        except ConfigError as e:
            raise PricingError(e.text if e.row is None else f"row {e.row}: {e.text}") from None
        except OSError:
            raise  # the disk or the storage failed, not the candidate
        except Exception as e:  # noqa: BLE001  build, fold or timing: whatever a module raises is the candidate's
            raise PricingError(f"cannot time the candidate: {type(e).__name__}: {e}") from None


class TableLatency:
    """Predict from a latency table: the calibrated sum of the rows' entries, by signature."""

    mode = "predicted"

    def __init__(self, table: LatencyTable) -> None:
        self.table = table
        self._ms: dict[RowSignature, float] = {}  # the entries by signature: one dict lookup per row
        self._revision = table.revision

    def price(self, plan: ModelPlan, budget_ms: float | None = None, *, full: bool = False,
              runs_factor: int = 1) -> tuple[PredictedLatency, bool]:
        if self._revision != self.table.revision:  # in-context rows timed since moved shared entries
            self._ms.clear()
            self._revision = self.table.revision
        ms = self._ms
        total = 0.0
        for rp in plan.rows:
            hit = ms.get(rp.signature)
            if hit is None:
                return self._slow(plan), False
            total += hit
        return PredictedLatency(self.table.total_ms(total), total, str(self.table.path)), False

    def _slow(self, plan: ModelPlan) -> PredictedLatency:
        """Rows not yet looked up: through the table (measuring what it lacks when it is this device's)."""
        pred = predict_plan(self.table, plan, measure=self.table.writable)
        for rp, (_, entry_ms) in zip(plan.rows, pred.rows):
            self._ms[rp.signature] = entry_ms
        return PredictedLatency(pred.total_ms, pred.row_sum_ms, str(self.table.path))


def open_auto_table(path: str | None, backend: Any, form: str) -> LatencyTable:
    """The search's own table (created on first use, resumed after): rows timed in context where the
    backend can (IN_CONTEXT_PROTOCOL), else alone (ROW_PROTOCOL)."""
    from profiles.lutbuild import IN_CONTEXT_PROTOCOL, MODEL_PROTOCOL, ROW_PROTOCOL, default_timing

    if not path:
        raise ConfigError("<search>", "--latency auto needs the study's table path (set by the search run)")
    timing = default_timing(backend)
    return LatencyTable.open(path, backend, protocol=IN_CONTEXT_PROTOCOL if timing == "in_context" else ROW_PROTOCOL,
                             model_protocol=MODEL_PROTOCOL, form=form, timing=timing)


_PRICERS: dict[Any, tuple[LatencyPricer, LatencyPricer]] = {}


def pricers(measure: Any) -> tuple[LatencyPricer, LatencyPricer]:
    """(search pricer, final check pricer) for a search.evaluate.Measure, made once per process."""
    hit = _PRICERS.get(measure)
    if hit is None:
        hit = _PRICERS[measure] = _make(measure)
    return hit


def reset_pricers() -> None:
    """Forget the pricers made so far: a new search run opens its table afresh (another run in this process
    may have appended rows, or `zoo lut anchor` a new anchor, since the last one)."""
    _PRICERS.clear()


def search_table(measure: Any) -> LatencyTable | None:
    """The table the search prices from (this process's pricer), or None when it measures each candidate."""
    if measure.latency == "measure":
        return None
    search = pricers(measure)[0]
    return search.table if isinstance(search, TableLatency) else None


def _make(m: Any) -> tuple[LatencyPricer, LatencyPricer]:
    source = m.lut or "<search>"
    if m.latency == "measure":
        measured = MeasuredLatency(_backend(m, source), runs=m.runs, warmup_runs=m.warmup_runs,
                                   warmup_s=m.warmup_s, deploy=m.deploy)
        return measured, measured
    if m.latency == "auto":
        backend = _backend(m, source)
        measured = MeasuredLatency(backend, runs=m.runs, warmup_runs=m.warmup_runs, warmup_s=m.warmup_s,
                                   deploy=m.deploy)
        return TableLatency(open_auto_table(m.lut, backend, m.form)), measured
    fp = LatencyTable.load(m.lut).fingerprint
    if m.latency == "lut":  # pricing needs no local device; on the table's own one, missing rows are measured
        try:
            backend = backend_of(fp, backend=m.backend, threads=m.threads, device=m.device)
        except (ValueError, ConfigError):
            backend = None  # this machine cannot run the table's backend: price read only
        table = LatencyTable.open_to_price(m.lut, backend)
        table.check_form(m.form)
        predicted = TableLatency(table)
        return predicted, predicted
    try:  # hybrid re-measures here: the table must be this device's (or forced)
        backend = backend_of(fp, backend=m.backend, threads=m.threads, device=m.device)
    except ValueError as e:
        raise ConfigError(source, str(e)) from None
    table = LatencyTable.open(m.lut, backend, force=m.force)
    table.check_form(m.form)
    measured = MeasuredLatency(backend, runs=m.runs, warmup_runs=m.warmup_runs, warmup_s=m.warmup_s, deploy=m.deploy)
    return TableLatency(table), measured


def _backend(m: Any, source: str) -> Any:
    try:
        return get_backend(m.backend, threads=m.threads, device=m.device)
    except ValueError as e:
        raise ConfigError(source, str(e)) from None


__all__ = ["LatencyPricer", "MODES", "MeasuredLatency", "PredictedLatency", "PricingError", "SCREEN_FACTOR",
           "TableLatency", "pricers", "reset_pricers", "search_table"]
