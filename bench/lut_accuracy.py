"""How well does a latency table predict measured latency? Predicted against measured, per backend and size.

For each config (yolov5s, yolov8s), size (320, 640) and backend (torch eager, onnxruntime; 1 thread):
  1. build the table as `zoo lut build CFG --imgsz N --samples S --backend B` does (profiles.lutbuild,
     search.lutplans; the space's candidates drawn with seed 0): build time, rows, file size, the fit;
  2. draw `--candidates` other candidates of the space (seed 1); price each from the table
     (profiles.lut.predict_plan; the rows the table lacks are measured and appended first, and counted),
     through the search's own pricer (search.latency.TableLatency);
  3. measure each whole on the backend, built afresh: by default in `--rounds` interleaved rounds (every
     candidate built once and kept; each round times all of them in turn, in a shuffled order, 10 runs
     after a warm-up of 2 calls and 0.1 s), so a slow stretch of the machine falls on many candidates a
     little rather than on one wholly; a candidate's measured figure, the one predictions are judged
     against, is the median of all its rounds' medians; the even rounds against the odd ones are two
     measurements of it (the floor: each half holds half the runs, so it understates the whole's
     steadiness), and the prediction against the even rounds alone is printed too (the reference of the
     records before lut_accuracy_torch320_allrounds).
     `--reference sequential` measures as `zoo profile` does instead (30 runs after a warm-up of 5 calls
     and 1 s, the median), one candidate after another, and again after the whole first pass;
  4. report the share of candidates predicted within +-5% and +-10% of the measured median, Kendall tau
     of predicted vs measured (scipy.stats), the mean and worst error, the time to predict one candidate
     from its plan (a table that holds its rows: the dict lookups and the sum; planning is the search's
     either way) against the time to measure one (build, export for ORT, warm-up and runs).
Targets (issue 9): >= 95% within 10%, >= 80% within 5%, tau >= 0.9, predicting >= 1000x faster than
measuring, the yolov5s table at 320 px built in <= 15 min on the 2-core machine.

Writes bench/results/lut_accuracy.{json,md} (run it alone on a quiet machine: it takes hours).
`--quick` is a smoke run (yolov5s at 320 px, a handful of candidates, short protocols) that writes to
`--results` (default: a temporary folder), never the record.
`--remeasure` (on by default) reports how often two measurements of one model agree within 5% and 10%,
and their Kendall tau: the floor this machine puts under any prediction judged against one measurement
(interleaved: the even rounds against the odd ones; sequential: a second pass after the first).
Each table's median |error| on its own calibration models (`zoo lut show`'s check) is recorded beside it.
`--anchor K` (default 5; 0: none): after the table's own figures, the table is anchored as `zoo lut anchor
CONFIG --samples K` does (K candidates of seed 2 that the table prices whole, timed now, before the
candidates; records before lut_accuracy_torch320_level_20 anchored on the config and its first K-1
candidates of seed 0, the table's own models) and its anchored predictions are judged on the same
measurements, beside the unanchored ones (the anchor record is appended to the table; a rerun judges the
table without it first); the same anchor is measured again after the candidates (recorded, not applied): how
far the device's speed moved while they were measured. With interleaved rounds the same K models are also
timed in every round beside the candidates, and the table scaled by their measured / predicted of those
minutes is judged too: not a prediction anyone gets before measuring, but the table's error with the
device's level taken out (what is left when the level is right).
The rounds are also split in time (`in_time`): the first half against the second, each a measurement of
its own stretch of the run (the even and odd rounds share every stretch, so they miss how the ranking moves
while the machine's speed does), and the prediction against each. `--previous RECORD` judges this run's
measurements against an earlier record's of the same candidates (checked by their rows' digests where it
has them; each session's median level divided out): the floor under a table built in one session and
judged in another (bench/results/lut_accuracy_torch320_yolov8s_sessions.md).
`--imported FILE` judges a table made by `zoo lut export` -> the runner -> `zoo lut import` in place of a
build (one config and size: `--configs`, `--sizes`): the candidates are measured here on onnxruntime with
the table's own settings (threads, provider, exporter), so run it on the machine the runner ran on;
candidates with a row the table lacks are left out and counted (an imported table is never measured into).
`--timings in_context,isolated` (torch; ORT times rows alone only) builds one table per way of timing
rows, so the two are compared on the same candidates; the floor (`--remeasure`) is on by default
(`--no-remeasure` to skip it). `--foreign yolov5s-ghost,...` judges each table (built for one family's
space) on other configs too: the rows the table lacks are listed per config, then measured and
appended (the flow a search on the device follows), and each config is measured whole, twice.
Usage: python bench/lut_accuracy.py [--quick] [--configs yolov5s,yolov8s] [--sizes 320,640]
       [--backends torch,onnxruntime] [--candidates 200] [--samples 2000] [--tables DIR] [--device cpu]
       [--exporter dynamo|torchscript] [--remeasure] [--imported FILE] [--rounds 10]
       [--reference interleaved|sequential] [--previous RECORD]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from scipy import stats  # noqa: E402

from _search_common import RESULTS, machine, md_table  # noqa: E402
from profiles.backends import get_backend  # noqa: E402
from profiles.backends.base import model_timer  # noqa: E402
from profiles.fingerprint import device_fingerprint  # noqa: E402
from profiles.latency import TimingProtocol  # noqa: E402
from profiles.lut import LatencyTable, LutError, plan_digest, plan_refs, predict_plan, summarize_table  # noqa: E402
from profiles.lutanchor import ANCHOR_ROUNDS, measure_anchor  # noqa: E402
from profiles.lutbuild import IN_CONTEXT_PROTOCOL, MODEL_PROTOCOL, ROW_PROTOCOL, build_table  # noqa: E402
from search.latency import TableLatency  # noqa: E402
from search.lutplans import DEFAULT_CALIBRATE, anchor_sources, lut_sources  # noqa: E402
from search.settings import load_settings  # noqa: E402
from search.space import build_space  # noqa: E402
from zoo.builder import build_from_plan  # noqa: E402
from zoo.config import load_config  # noqa: E402

QUICK = {"configs": "yolov5s", "sizes": "320", "candidates": 6, "samples": 6, "calibrate": 3, "runs": 10, "rounds": 4,
         "backends": "torch", "foreign": "yolo11n", "anchor": 2, "anchor_rounds": 1}


MEASURED: dict[tuple[Any, ...], tuple[list[float], list[float], list[float] | None, list[float],
                                     list[list[float]] | None]] = {}  # one
# measurement of the same candidates serves every way of timing rows (the tables differ, the models do not)
FOREIGN: dict[tuple[Any, ...], tuple[float, ...]] = {}  # another family's config measured twice, once per run


def run_case(config: str, imgsz: int, backend_name: str, a: argparse.Namespace, tables: Path,
             timing: str = "isolated") -> dict[str, Any]:
    own = {"exporter": a.exporter} if backend_name == "onnxruntime" else {}
    backend = get_backend(backend_name, threads=1, device=a.device, **own)
    path = tables / f"{config}-{imgsz}-{backend_name}{'-' + a.exporter if own else ''}-{a.device}-{timing}.lut"
    default_p = IN_CONTEXT_PROTOCOL if timing == "in_context" else ROW_PROTOCOL
    row_p = TimingProtocol(runs=5, warmup_runs=2, warmup_s=0.02) if a.quick else default_p
    model_p = TimingProtocol(runs=a.runs, warmup_runs=3, warmup_s=0.3) if a.quick else MODEL_PROTOCOL
    t0 = time.perf_counter()
    sources = lut_sources([config], imgsz=imgsz, samples=a.samples, seed=0, calibrate=a.calibrate)
    plan_s = time.perf_counter() - t0
    report = build_table(path, backend, sources, protocol=row_p, model_protocol=model_p, timing=timing,
                         on_progress=lambda d, n, _t: print(f"\r  {config} {imgsz} {backend_name}: {d}/{n}", end="",
                                                            file=sys.stderr, flush=True))
    print(file=sys.stderr)
    table = report.table
    built = LatencyTable.load(path)
    cfg = load_config(config)
    space = build_space(cfg, load_settings(cfg))
    plans = [space.plan(p, imgsz=imgsz) for p in space.sample(a.candidates, seed=1)]
    before = len(table.entries)
    t0 = time.perf_counter()
    for plan in plans:  # rows the table lacks: measured and appended, as a search with the device at hand does
        predict_plan(table, plan, measure=True)
    extend_s = time.perf_counter() - t0
    added = len(table.entries) - before

    table.anchor = None  # judged first at its build's speed (a kept table holds the last run's anchor)
    pricer = TableLatency(table)  # the search's path: one dict lookup per row, then the calibrated sum
    for plan in plans:
        pricer.price(plan)
    t0 = time.perf_counter()
    predicted = [pricer.price(plan)[0].median_ms for plan in plans]
    predict_s = (time.perf_counter() - t0) / len(plans)
    anchor, anchored = None, None
    # `zoo lut anchor CONFIG --samples K`: K candidates the table prices whole (seed 2: not the judged ones)
    anchor_models = []
    if a.anchor > 0:
        try:
            anchor_models = anchor_sources(table, [config], imgsz=imgsz, samples=a.anchor)
        except LutError as e:  # a table of a few candidates (--quick) prices none whole: the config itself
            print(f"  {e.text}; anchoring on the config", file=sys.stderr)
            anchor_models = anchor_sources(table, [config], imgsz=imgsz, samples=0)
    if anchor_models:  # timed now, before the candidates
        t0 = time.perf_counter()
        anchor = measure_anchor(table, anchor_models, rounds=a.anchor_rounds)
        anchor_s = time.perf_counter() - t0
        anchored = [pricer.price(plan)[0].median_ms for plan in plans]
    # the anchor's models also join the candidates' rounds: their level of the same minutes (a.rounds > 1)
    level_plans = [s.plan for s in anchor_models] if a.rounds > 1 else []
    memo = (config, imgsz, backend_name, a.device, a.exporter if own else None, a.candidates, model_p, a.remeasure,
            a.rounds, len(level_plans))
    measured, first, again, measure_s, per_round = measured_twice(memo, plans + level_plans, backend, cfg.ch, imgsz,
                                                                  model_p, a.remeasure, a.rounds)
    n = len(plans)
    level_ms, measured, first, measure_s = measured[n:], measured[:n], first[:n], measure_s[:n]
    per_round = None if per_round is None else per_round[:n]
    again = None if again is None else again[:n]
    concurrent = None
    if level_plans:
        level_pred = [(pred := predict_plan(table, p, measure=True)).total_ms / pred.anchor for p in level_plans]
        factor = statistics.median(m / p for m, p in zip(level_ms, level_pred))
        concurrent = {"factor": factor, "ratios": [m / p for m, p in zip(level_ms, level_pred)],
                      **judged([p * factor for p in predicted], measured)}
    after = None
    if anchor is not None:  # the same models again once the candidates are measured: how far the device moved
        after = measure_anchor(table, anchor_models, rounds=a.anchor_rounds)
    other_levels = levels_compared(path, plans, measured, anchor_models, anchor) if timing == "in_context" else None
    errors = [(p - m) / m for p, m in zip(predicted, measured)]
    cal = table.calibration
    digests = [plan_digest(plan_refs(plan)) for plan in plans]  # names the candidates in the record
    # one measurement against another: what any prediction is judged by
    floor = floor_of(predicted, first, again)
    foreign = [judge_foreign(name, table, backend, imgsz, model_p) for name in a.foreign.split(",") if name]
    return {
        "config": config, "imgsz": imgsz, "backend": backend_name, "timing": timing, "foreign": foreign, "device": a.device, "candidates": len(plans),
        **agreement(predicted, measured), "mean_error": statistics.fmean(errors), "mean_abs_error": statistics.fmean(map(abs, errors)),
        "worst_error": max(errors, key=abs),
        "fit": None if cal is None else {"method": cal.method, "a": cal.a, "b": cal.b, "models": len(cal.models),
                                         "residuals": list(cal.relative_residuals)},
        "table": {"path": str(path), "levels": table.levels, "rows": len(built.entries), "bytes": path.stat().st_size,
                  "build_s": report.seconds, "planning_s": plan_s, "rows_measured_now": report.rows_measured,
                  "check_error": summarize_table(built).check_error,  # off its own models, as `zoo lut show` says
                  "rows_added_for_candidates": added, "extend_s": extend_s},
        "predict_s": predict_s, "measure_s": statistics.fmean(measure_s),
        "speedup": statistics.fmean(measure_s) / predict_s if predict_s > 0 else math.inf,
        "points": points_of(digests, predicted, measured, per_round),
        "remeasure": floor,
        "in_time": in_time(anchored or predicted, per_round),
        "previous": previous_session(a.previous, a.previous_cases.get((config, imgsz, backend_name, timing)), digests,
                                     measured, anchored or predicted),
        "anchor": None if anchor is None else {
            "factor": anchor.factor, "rounds": anchor.rounds, "seconds": anchor_s, "at": anchor.at,
            "factor_after": after.factor if after is not None else None,
            "models": [{"name": m.name, "predicted_ms": m.predicted_ms, "measured_ms": m.measured_ms}
                       for m in anchor.models],
            **judged(anchored, measured), "predicted_vs_first": agreement(anchored, first),
            "points": [{"predicted_ms": p, "measured_ms": m} for p, m in zip(anchored, measured)]},
        "anchor_in_rounds": concurrent,
        "other_levels": other_levels,
        "protocols": {"rows": row_p.as_dict(), "models": model_p.as_dict(),
                      "reference": {"rounds": a.rounds, "round": ROUND_PROTOCOL.as_dict()} if a.rounds > 1 else
                      "sequential"},
        "fingerprint": device_fingerprint(backend).as_dict(),
    }


def levels_compared(path: Path, plans: list, measured: list[float], anchor_models: list, anchor: Any
                    ) -> dict[str, Any]:
    """The same table's records read with the other `levels` setting (profiles.lutlevels), judged on the same
    measurements: unanchored, and anchored on the same anchor measurement (its models' measured times over
    this reading's predictions of them)."""
    built = LatencyTable.load(path)
    other = LatencyTable.load(path, levels="none" if built.levels == "per_model" else "per_model")
    other.anchor = None
    predicted = [predict_plan(other, plan).total_ms for plan in plans]
    out: dict[str, Any] = {"levels": other.levels, **judged(predicted, measured)}
    if anchor is not None:
        ratios = [m.measured_ms / predict_plan(other, s.plan).total_ms for s, m in zip(anchor_models, anchor.models)]
        factor = statistics.median(ratios)
        out["anchored"] = {"factor": factor, **judged([p * factor for p in predicted], measured)}
    return out


def run_imported_case(config: str, imgsz: int, a: argparse.Namespace) -> dict[str, Any]:
    """run_case for an imported table: no build; the table's settings for the measurements here."""
    from profiles.backends import backend_of

    path = Path(a.imported)
    table = LatencyTable.load(path)
    fp = table.fingerprint
    backend = backend_of(fp)
    model_p = TimingProtocol(runs=a.runs, warmup_runs=3, warmup_s=0.3) if a.quick else MODEL_PROTOCOL
    cfg = load_config(config)
    space = build_space(cfg, load_settings(cfg))
    drawn = [space.plan(p, imgsz=imgsz) for p in space.sample(a.candidates, seed=1)]
    pricer = TableLatency(table)
    plans, predicted, lacking = [], [], 0
    for plan in drawn:
        try:
            predicted.append(pricer.price(plan)[0].median_ms)
            plans.append(plan)
        except LutError:
            lacking += 1
    if not plans:
        raise SystemExit(f"{path}: no candidate of {config} at {imgsz} px has all its rows in the table")
    t0 = time.perf_counter()
    for plan in plans:
        pricer.price(plan)
    predict_s = (time.perf_counter() - t0) / len(plans)
    memo = (config, imgsz, fp.backend, fp.device, None, a.candidates, model_p, a.remeasure, a.rounds)
    measured, first, again, measure_s, per_round = measured_twice(memo, plans, backend, cfg.ch, imgsz, model_p,
                                                                  a.remeasure, a.rounds)
    errors = [(p - m) / m for p, m in zip(predicted, measured)]
    cal = table.calibration
    return {
        "config": config, "imgsz": imgsz, "backend": f"{fp.backend} (imported)", "device": fp.device,
        "timing": "isolated (imported)", "foreign": [],
        "candidates": len(plans), "candidates_lacking_rows": lacking,
        **agreement(predicted, measured), "mean_error": statistics.fmean(errors),
        "mean_abs_error": statistics.fmean(map(abs, errors)), "worst_error": max(errors, key=abs),
        "fit": None if cal is None else {"method": cal.method, "a": cal.a, "b": cal.b, "models": len(cal.models),
                                         "residuals": list(cal.relative_residuals)},
        "table": {"path": str(path), "rows": len(table.entries), "bytes": path.stat().st_size,
                  "build_s": sum(b.seconds for b in table.builds), "imported": True,
                  "check_error": summarize_table(table).check_error},
        "predict_s": predict_s, "measure_s": statistics.fmean(measure_s),
        "speedup": statistics.fmean(measure_s) / predict_s if predict_s > 0 else math.inf,
        "points": points_of([plan_digest(plan_refs(plan)) for plan in plans], predicted, measured, per_round),
        "remeasure": floor_of(predicted, first, again),
        "in_time": in_time(predicted, per_round),
        "protocols": {"rows": table.protocol.as_dict(), "models": model_p.as_dict()},
        "fingerprint": fp.as_dict(), "measured_on": device_fingerprint(backend).as_dict(),
    }


def judge_foreign(name: str, table: LatencyTable, backend: Any, imgsz: int, protocol: TimingProtocol) -> dict[str, Any]:
    """Another family's config priced from this table: the rows it lacks (named), then predicted after
    the flow appended them, against its measured median (twice: the floor beside it)."""
    from zoo.plan import plan_config

    try:
        cfg = load_config(name)
        plan = plan_config(cfg, imgsz=imgsz)
    except Exception as e:  # noqa: BLE001  (YOLOv5 hub files such as yolov5s-ghost.yaml: give their path)
        return {"config": name, "missing_rows": [], "error": f"{type(e).__name__}: {e}"}
    missing = sorted({r.label or r.key for r in plan_refs(plan) if r.key not in table.entries})
    try:
        predicted = predict_plan(table, plan, measure=True).total_ms
        memo = (name, imgsz, backend.name, protocol)
        if memo not in FOREIGN:
            FOREIGN[memo] = tuple(measure_all([plan, plan], backend, cfg.ch, imgsz, protocol, []))
        measured, again = FOREIGN[memo]
    except Exception as e:  # noqa: BLE001  a config this backend cannot run is a row of the report, not a stop
        return {"config": name, "missing_rows": missing, "error": f"{type(e).__name__}: {e}"}
    return {"config": name, "missing_rows": missing, "predicted_ms": predicted, "measured_ms": measured,
            "remeasured_ms": again, "error_pct": predicted / measured - 1, "floor_pct": again / measured - 1}


def measured_twice(memo: tuple[Any, ...], plans: list, backend: Any, ch: int, imgsz: int, protocol: TimingProtocol,
                   remeasure: bool, rounds: int = 0
                   ) -> tuple[list[float], list[float], list[float] | None, list[float], list[list[float]] | None]:
    """The candidates measured (the figures judged), as two measurements (the first, and with `remeasure`
    the second), and the seconds each took; once per memo: every way of timing rows is judged on the same
    measurements. `rounds` > 1: interleaved (measure_rounds: judged on all rounds; the even rounds and the
    odd ones are the two); else one after another, judged on the first pass, the second after the whole
    first. The last: each candidate's rounds' medians in the order they were timed (None: sequential)."""
    if memo not in MEASURED:
        seconds: list[float] = []
        if rounds > 1:
            got = measure_rounds(plans, backend, ch, imgsz, rounds, seconds)
            judged, even, odd = split_rounds(got)
            MEASURED[memo] = (judged, even, odd if remeasure else None, seconds, got)
        else:
            first = measure_all(plans, backend, ch, imgsz, protocol, seconds)
            again = measure_all(plans, backend, ch, imgsz, protocol, []) if remeasure else None
            MEASURED[memo] = (first, first, again, seconds, None)
    return MEASURED[memo]


def split_rounds(got: list[list[float]]) -> tuple[list[float], list[float], list[float]]:
    """Each model's median over all its rounds (the figure judged), over the even rounds and over the odd
    ones (the two measurements whose agreement is the floor)."""
    return tuple([statistics.median(g[k]) for g in got]  # type: ignore[return-value]
                 for k in (slice(None), slice(0, None, 2), slice(1, None, 2)))


ROUND_PROTOCOL = TimingProtocol(runs=10, warmup_runs=2, warmup_s=0.1)  # one candidate's turn in a round


def measure_rounds(plans: list, backend: Any, ch: int, imgsz: int, rounds: int,
                   seconds: list[float]) -> list[list[float]]:
    """Every plan built once and kept; `rounds` rounds, each timing all of them in turn (ROUND_PROTOCOL) in an
    order shuffled per round (seeded): each candidate's rounds' medians, in the order of the rounds. The
    median of all of them is the figure judged, those of the even and of the odd rounds the two
    measurements (measured_twice). Each is spread over the whole run, so the machine's slow and
    fast stretches (bench/results/machine_drift.md) fall on every candidate alike instead of on whichever
    was timed then; the halves are two measurements of equal weight. `seconds` gets each candidate's build
    plus its turns."""
    spent = [0.0] * len(plans)
    timers = []
    for i, plan in enumerate(plans):
        t0 = time.perf_counter()
        timers.append(model_timer(backend, build_from_plan(plan), (1, ch, imgsz, imgsz)))
        spent[i] += time.perf_counter() - t0
    got: list[list[float]] = [[] for _ in plans]
    order = list(range(len(plans)))
    rng = random.Random(0)
    for r in range(rounds):
        rng.shuffle(order)
        for k, i in enumerate(order):
            t0 = time.perf_counter()
            got[i].append(timers[i](ROUND_PROTOCOL).median_ms)
            spent[i] += time.perf_counter() - t0
            print(f"\r  round {r + 1}/{rounds}: {k + 1}/{len(plans)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    seconds.extend(spent)
    return got


def floor_of(predicted: list[float], first: list[float], again: list[float] | None) -> dict[str, Any] | None:
    """Two measurements of each candidate against each other (the floor under any prediction judged against
    one), the prediction against the first alone, and against their mean (minutes apart: on a machine whose
    speed switches between regimes, a steadier reference)."""
    if again is None:
        return None
    return {**agreement(again, first), "first_ms": first, "remeasured_ms": again,
            "predicted_vs_first": agreement(predicted, first),
            "predicted_vs_mean": agreement(predicted, [(m + g) / 2 for m, g in zip(first, again)])}


def points_of(digests: list[str], predicted: list[float], measured: list[float],
              per_round: list[list[float]] | None) -> list[dict[str, Any]]:
    """Each candidate's figures, named by its rows' digest (a later run checks it judges the same models)."""
    return [{"rows": d, "predicted_ms": p, "measured_ms": m, **({"rounds_ms": per_round[i]} if per_round else {})}
            for i, (d, p, m) in enumerate(zip(digests, predicted, measured))]


def in_time(predicted: list[float], per_round: list[list[float]] | None) -> dict[str, Any] | None:
    """The first half of the rounds against the second (each a measurement of its own stretch of the run,
    not spread over it as the even and odd rounds are): how far the ranking moves while the machine does,
    and the prediction (anchored where it was) against each half. The shares within 5%/10% are of the raw
    halves, so a level that moved between them (`level`) lowers them; tau is untouched by it."""
    if not per_round or len(per_round[0]) < 2:
        return None
    h = len(per_round[0]) // 2
    early = [statistics.median(g[:h]) for g in per_round]
    late = [statistics.median(g[h:]) for g in per_round]
    return {**agreement(late, early), "level": statistics.median(b / a for a, b in zip(early, late)),
            "predicted_vs_early": agreement(predicted, early), "predicted_vs_late": agreement(predicted, late)}


def previous_cases(path: str, keys: list[tuple[str, int, str, str]], candidates: int
                   ) -> dict[tuple[str, int, str, str], dict[str, Any]]:
    """`--previous`: the earlier record's case for each (config, size, backend, way of timing rows) this run
    judges, with the record's load averages; read and checked before anything is timed (a wrong record
    would otherwise end the run after hours of measuring)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"--previous {path}: {e}") from None
    out = {}
    for key in keys:
        config, imgsz, backend, timing = key
        case = next((c for c in record.get("cases", []) if (c.get("config"), c.get("imgsz"), c.get("backend")) ==
                     (config, imgsz, backend) and c.get("timing") in (None, timing) and c.get("points")), None)
        if case is None:
            raise SystemExit(f"--previous {path}: no case {config} {imgsz} {backend} {timing} with points in it")
        if len(case["points"]) != candidates:
            raise SystemExit(f"--previous {path}: it judged {len(case['points'])} candidates of {config}, this run "
                             f"{candidates}: give the same --candidates")
        out[key] = {**case, "loadavg": [record.get("loadavg_before"), record.get("loadavg_after")]}
    return out


def previous_session(path: str | None, case: dict[str, Any] | None, digests: list[str], measured: list[float],
                     predicted: list[float]) -> dict[str, Any] | None:
    """This run's measurements of the candidates against an earlier run's of the same ones (`--previous`, a
    record of this bench): two sessions apart, the floor a table built in one session and judged in another
    stands on. Judged on ranks and on shares within 5%/10% after the two sessions' median level is divided
    out (the machine's speed between them is not the table's to know)."""
    if case is None:
        return None
    pts = case["points"]
    if any(p.get("rows") not in (None, d) for p, d in zip(pts, digests)):
        raise SystemExit(f"--previous {path}: its candidates are not this run's (their rows differ)")
    before = [p["measured_ms"] for p in pts]
    between = level_free(measured, before)
    level = between["level"]
    return {"path": path, "checked_by_rows": all("rows" in p for p in pts), "loadavg": case["loadavg"], **between,
            "predicted_vs_previous": agreement([p / level for p in predicted], before),
            "predicted_vs_both": agreement(predicted, [math.sqrt(m * b * level) for m, b in zip(measured, before)])}


def level_free(values: list[float], reference: list[float]) -> dict[str, float]:
    """`values` against `reference` with the median level between them (values / reference) divided out:
    agreement(), the level, and the sd of the log ratios in % (the per-candidate disagreement). Two
    sessions' measurements, or a table against a session, where the device's speed is not what is judged."""
    logs = [math.log(v / r) for v, r in zip(values, reference)]
    level = math.exp(statistics.median(logs))
    return {"level": level, **agreement([v / level for v in values], reference),
            "sd_pct": 100 * statistics.pstdev(logs)}


def judged(predicted: list[float], measured: list[float]) -> dict[str, float]:
    """agreement() and the errors' mean, mean magnitude and worst."""
    errors = [(p - m) / m for p, m in zip(predicted, measured)]
    return {**agreement(predicted, measured), "mean_error": statistics.fmean(errors),
            "mean_abs_error": statistics.fmean(map(abs, errors)), "worst_error": max(errors, key=abs)}


def agreement(values: list[float], measured: list[float]) -> dict[str, float]:
    """Shares of `values` within 5% and 10% of `measured`, and the Kendall tau of the two."""
    errors = [v / m - 1 for v, m in zip(values, measured)]
    return {"within_5": sum(abs(e) <= 0.05 for e in errors) / len(errors),
            "within_10": sum(abs(e) <= 0.10 for e in errors) / len(errors),
            "kendall_tau": stats.kendalltau(values, measured).statistic if len(values) > 1 else math.nan}


def tau_text(values: list[float], measured: list[float]) -> str:
    tau = agreement(values, measured)["kendall_tau"]
    return "-" if math.isnan(tau) else f"{tau:.3f}"


def three(r: dict[str, Any] | None) -> str:
    return "-" if r is None else f"{r['within_5']:.1%} / {r['within_10']:.1%} / {r['kendall_tau']:.3f}"


def twice(case: dict[str, Any]) -> str:
    return three(case.get("remeasure"))


def against(case: dict[str, Any], key: str) -> str:
    return three((case.get("remeasure") or {}).get(key))


def measure_all(plans: list, backend: Any, ch: int, imgsz: int, protocol: TimingProtocol,
                seconds: list[float]) -> list[float]:
    """Each plan built afresh and measured whole as `zoo profile` does: the medians (and, in `seconds`,
    the time each measurement took: build, export for ORT, warm-up and runs)."""
    out = []
    for i, plan in enumerate(plans):
        t0 = time.perf_counter()
        model = build_from_plan(plan)
        out.append(model_timer(backend, model, (1, ch, imgsz, imgsz))(protocol).median_ms)
        seconds.append(time.perf_counter() - t0)
        print(f"\r  measured {i + 1}/{len(plans)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def build_cases(a: argparse.Namespace) -> list[tuple[str, int, str, str]]:
    """The (config, size, backend, way of timing rows) this run builds and judges a table for, in order
    (ORT times rows alone, and only on a CPU)."""
    return [(config, imgsz, backend, timing)
            for backend in (b for b in a.backends.split(",") if b)
            for config in a.configs.split(",")
            for imgsz in (int(s) for s in a.sizes.split(","))
            if not (backend == "onnxruntime" and a.device != "cpu")
            for timing in (a.timings.split(",") if backend == "torch" else ["isolated"])]


def case_of(c: dict[str, Any]) -> list[Any]:
    """The first columns of every report row: which table judged."""
    return [c["config"], c["imgsz"], c["backend"], c["timing"]]


def section(intro: str, head: list[str], rows: list[list[Any]]) -> str:
    """A report section: its paragraph and table, or nothing when no case has its figures."""
    return f"\n\n{intro}:\n\n{md_table(head, rows)}" if rows else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run (not the record)")
    ap.add_argument("--tag", help="write lut_accuracy_TAG.{json,md} (one record per case run)")
    ap.add_argument("--configs", default="yolov5s,yolov8s")
    ap.add_argument("--sizes", default="320,640")
    ap.add_argument("--backends", default="torch,onnxruntime")
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--samples", type=int, default=2000, help="candidates the table is built for (seed 0)")
    ap.add_argument("--calibrate", type=int, default=DEFAULT_CALIBRATE,
                    help="sampled candidates measured whole for the fit (`zoo lut build`'s default)")
    ap.add_argument("--runs", type=int, default=30, help="timed runs of each measured candidate")
    ap.add_argument("--rounds", type=int, default=10,
                    help="interleaved rounds the candidates are measured in (judged against all of them; the even "
                         "rounds against the odd ones: the floor); at least 2")
    ap.add_argument("--anchor", type=int, default=5, metavar="K",
                    help="after the table's own figures, anchor it (`zoo lut anchor --samples K`: K candidates "
                         "of seed 2 that the table prices whole, timed now) and judge the anchored predictions on "
                         "the same measurements; 0: no anchor")
    ap.add_argument("--anchor-rounds", type=int, default=ANCHOR_ROUNDS, help="the anchor's interleaved rounds")
    ap.add_argument("--reference", choices=("interleaved", "sequential"), default="interleaved",
                    help="how candidates are measured: interleaved rounds (default), or one after another as "
                         "`zoo profile` does (`--runs` runs each), then all again")
    ap.add_argument("--timings", default="in_context,isolated",
                    help="how torch tables time rows (ORT: isolated only); each builds its own table")
    ap.add_argument("--foreign", default="yolov5s-gfpn,yolov5s-effnetv2,yolo11n,rtdetr-l",
                    help="other families' configs (names or paths, e.g. YOLOv5 hub's yolov5s-ghost.yaml and "
                         "yolov5-p2.yaml) each table is judged on (empty: none)")
    ap.add_argument("--no-remeasure", dest="remeasure", action="store_false",
                    help="skip the second measurement of every candidate (the floor)")
    ap.add_argument("--remeasure", action="store_true", default=True,
                    help="measure every candidate a second time, after the first pass: the agreement of two "
                         "measurements is the floor under any prediction's (reported beside it)")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for the torch rows on a GPU")
    ap.add_argument("--exporter", choices=("dynamo", "torchscript"), default="dynamo",
                    help="the onnxruntime rows' exporter (`zoo lut build --exporter`)")
    ap.add_argument("--imported", metavar="FILE",
                    help="judge this imported table (`zoo lut import`) instead of building one: one config, one size")
    ap.add_argument("--previous", metavar="RECORD",
                    help="an earlier record of this bench (its .json) on the same candidates: this run's measurements "
                         "are judged against that session's too (the floor across sessions)")
    ap.add_argument("--tables", help="folder of the tables (kept: a rerun resumes them); default a temporary one")
    ap.add_argument("--results", help="where to write lut_accuracy.{json,md} (default bench/results; "
                                      "--quick: a temporary folder)")
    a = ap.parse_args()
    if a.quick:
        for k, v in QUICK.items():
            if getattr(a, k) == ap.get_default(k):
                setattr(a, k, v)
    if a.reference == "sequential":
        a.rounds = 0
    elif a.rounds < 2:
        raise SystemExit("--rounds: interleaved measurement needs at least 2 rounds (even and odd)")
    if a.previous and a.imported:
        raise SystemExit("--previous judges a build's candidates against an earlier session; not with --imported")
    a.previous_cases = previous_cases(a.previous, build_cases(a), a.candidates) if a.previous else {}
    warnings.simplefilter("ignore")
    tables = Path(a.tables) if a.tables else Path(tempfile.mkdtemp(prefix="zoo-lut-"))
    tables.mkdir(parents=True, exist_ok=True)
    results = Path(a.results) if a.results else (Path(tempfile.mkdtemp(prefix="zoo-bench-")) if a.quick else RESULTS)
    cases = []
    load0 = os.getloadavg()
    if a.imported:
        configs, sizes = a.configs.split(","), [int(s) for s in a.sizes.split(",")]
        if len(configs) != 1 or len(sizes) != 1:
            raise SystemExit("--imported judges one table: give one config (--configs) and one size (--sizes)")
        cases.append(run_imported_case(configs[0], sizes[0], a))
        a.backends = ""
    for config, imgsz, backend_name, timing in build_cases(a):
        cases.append(run_case(config, imgsz, backend_name, a, tables, timing))
        c = cases[-1]
        print(f"{config} {imgsz} {backend_name} {timing}: within 5% {c['within_5']:.0%}, 10% "
              f"{c['within_10']:.0%}, tau {c['kendall_tau']:.3f}, table {c['table']['rows']} rows in "
              f"{c['table']['build_s']:.0f} s"
              + (f"; anchored x{c['anchor']['factor']:.3f}: within 10% {c['anchor']['within_10']:.0%}, tau "
                 f"{c['anchor']['kendall_tau']:.3f}" if c.get("anchor") else ""), file=sys.stderr)
    head = ["config", "px", "backend", "rows timed", "candidates", "within 5%", "within 10%", "Kendall tau", "mean |err|",
            "worst err", "fit", "table off its models (median)", "table rows", "build min", "table KB", "predict ms", "measure s", "speedup",
            "measured twice: within 5% / 10% / tau", "predicted vs the first measurement alone: within 5% / 10% / tau",
            "predicted vs the mean of both: within 5% / 10% / tau"]
    rows = [[*case_of(c), c["candidates"], f"{c['within_5']:.1%}", f"{c['within_10']:.1%}",
             f"{c['kendall_tau']:.3f}", f"{c['mean_abs_error']:.1%}", f"{c['worst_error']:+.1%}",
             "-" if c["fit"] is None else f"{c['fit']['a']:.3f} x {c['fit']['b']:+.2f} ({c['fit']['method']})",
             "-" if c["table"].get("check_error") is None else f"{c['table']['check_error']:.1%}",
             c["table"]["rows"], f"{c['table']['build_s'] / 60:.1f}", f"{c['table']['bytes'] / 1024:.0f}",
             f"{c['predict_s'] * 1e3:.3f}", f"{c['measure_s']:.2f}", f"{c['speedup']:,.0f}x", twice(c), against(c, "predicted_vs_first"),
             against(c, "predicted_vs_mean")]
            for c in cases]
    load1 = os.getloadavg()
    title = ("LUT accuracy" + (" (QUICK SMOKE RUN: not the record)" if a.quick else "")
             + f": predicted vs measured median, 1 thread, {a.device}; tables built for {a.samples} candidates "
               f"(seed 0), judged on others (seed 1); load average {load0[0]:.2f} before, {load1[0]:.2f} after")
    title += ("\n\nMeasured: " + (f"{a.rounds} interleaved rounds of {ROUND_PROTOCOL.runs} runs per candidate, the "
                                   f"median of all its rounds' medians (measured twice: the even rounds against "
                                   f"the odd ones; the first measurement: the even rounds)" if a.rounds > 1 else
                                   f"one candidate after another, {a.runs} runs each (measured twice: a second "
                                   f"pass after the first)"))
    text = title + "\n\n" + md_table(head, rows)
    anchored = [[*case_of(c), len(c["anchor"]["models"]), c["anchor"]["rounds"],
                 f"{c['anchor']['seconds']:.0f}", f"x{c['anchor']['factor']:.3f}",
                 f"x{c['anchor']['factor_after']:.3f}" if c["anchor"].get("factor_after") else "-",
                 " / ".join(f"{m['measured_ms'] / m['predicted_ms']:.3f}" for m in c["anchor"]["models"]),
                 f"{c['anchor']['within_5']:.1%}", f"{c['anchor']['within_10']:.1%}", f"{c['anchor']['kendall_tau']:.3f}",
                 f"{c['anchor']['mean_error']:+.1%}", f"{c['anchor']['mean_abs_error']:.1%}",
                 f"{c['anchor']['worst_error']:+.1%}", three(c["anchor"]["predicted_vs_first"]), twice(c)]
                for c in cases if c.get("anchor")]
    if anchored:
        text += ("\n\nThe same tables anchored before the candidates were measured (`zoo lut anchor`: whole models, "
                 "candidates the table prices whole, timed now; every prediction scaled by their median "
                 "measured / predicted), judged on the same measurements:\n\n"
                 + md_table(["config", "px", "backend", "rows timed", "anchor models", "rounds", "anchor s", "factor",
                             "the same anchor after the candidates (not applied)",
                             "each model's measured / predicted", "within 5%", "within 10%", "Kendall tau",
                             "mean err", "mean |err|", "worst err",
                             "vs the first measurement alone: within 5% / 10% / tau",
                             "measured twice: within 5% / 10% / tau"], anchored))
    level = [[*case_of(c), len(c["anchor_in_rounds"]["ratios"]),
              f"x{c['anchor_in_rounds']['factor']:.3f}",
              " / ".join(f"{r:.3f}" for r in c["anchor_in_rounds"]["ratios"]),
              f"{c['anchor_in_rounds']['within_5']:.1%}", f"{c['anchor_in_rounds']['within_10']:.1%}",
              f"{c['anchor_in_rounds']['kendall_tau']:.3f}", f"{c['anchor_in_rounds']['mean_error']:+.1%}",
              f"{c['anchor_in_rounds']['mean_abs_error']:.1%}", f"{c['anchor_in_rounds']['worst_error']:+.1%}", twice(c)]
             for c in cases if c.get("anchor_in_rounds")]
    text += section("The same tables scaled by the anchor's models timed inside the candidates' own rounds (the "
                    "device's level of the same minutes: not a prediction a user gets, which is anchored before; "
                    "what is left is the table's own error)",
                    ["config", "px", "backend", "rows timed", "models", "factor", "each model's measured / predicted",
                     "within 5%", "within 10%", "Kendall tau", "mean err", "mean |err|", "worst err",
                     "measured twice: within 5% / 10% / tau"], level)
    others = [[*case_of(c), c["table"].get("levels", "none"), three(c),
               three(c["anchor"]) if c.get("anchor") else "-", c["other_levels"]["levels"], three(c["other_levels"]),
               f"x{c['other_levels']['anchored']['factor']:.3f}: " + three(c["other_levels"]["anchored"])
               if c["other_levels"].get("anchored") else "-", twice(c)]
              for c in cases if c.get("other_levels")]
    text += section("The same table's records read with the other `levels` setting (per_model: each model's level "
                    "fitted and divided out, profiles.lutlevels; none: plain estimates over a key's records), judged "
                    "on the same measurements",
                    ["config", "px", "backend", "rows timed", "levels (the table's)", "within 5% / 10% / tau",
                     "anchored: within 5% / 10% / tau", "levels (read instead)", "within 5% / 10% / tau",
                     "anchored (its own factor)", "even vs odd rounds"], others)
    spans = [[*case_of(c), "yes" if c.get("anchor") else "no",
              f"x{c['in_time']['level']:.3f}", three(c["in_time"]),
              three(c["in_time"]["predicted_vs_early"]), three(c["in_time"]["predicted_vs_late"]), twice(c)]
             for c in cases if c.get("in_time")]
    text += section("The rounds split in time (the first half against the second: two measurements of their own "
                    "stretches of the run, where the even and odd rounds share every stretch); the prediction "
                    "(anchored where the case was) against each",
                    ["config", "px", "backend", "rows timed", "anchored", "second half / first (median)",
                     "first half vs second (raw: the level between them left in): within 5% / 10% / tau",
                     "predicted vs the first half", "predicted vs the second half", "even vs odd rounds"], spans)
    earlier = [[*case_of(c), c["previous"]["path"], "yes" if c.get("anchor") else "no",
                f"x{c['previous']['level']:.3f}",
                three(c["previous"]), three(c["previous"]["predicted_vs_previous"]),
                three(c["previous"]["predicted_vs_both"]), three(c), twice(c)]
               for c in cases if c.get("previous")]
    text += section("The same candidates measured in an earlier session (`--previous`; each session's median level "
                    "divided out): the floor under a table built in one session and judged in another; the "
                    "prediction (anchored where the case was) against that session, and against both (their "
                    "geometric mean)",
                    ["config", "px", "backend", "rows timed", "earlier record", "anchored", "this session / that one",
                     "this session vs that one: within 5% / 10% / tau", "predicted vs that session",
                     "predicted vs both", "predicted vs this session (unanchored)", "even vs odd rounds"], earlier)
    foreign = [[*case_of(c), f["config"], len(f["missing_rows"]),
                "; ".join(f["missing_rows"][:3]) + (" ..." if len(f["missing_rows"]) > 3 else ""),
                f"{f['predicted_ms']:.2f}" if "predicted_ms" in f else "-",
                f"{f['measured_ms']:.2f}" if "measured_ms" in f else "-",
                f"{f['error_pct']:+.1%}" if "error_pct" in f else f.get("error", "-"),
                f"{f['floor_pct']:+.1%}" if "floor_pct" in f else "-"] for c in cases for f in c["foreign"]]
    if foreign:
        text += ("\n\nOther families priced from each table (missing rows measured and appended first):\n\n"
                 + md_table(["table of", "px", "backend", "rows timed", "config", "rows missing", "e.g.",
                             "predicted ms", "measured ms", "error", "measured again"], foreign))
        shares = []
        for c in cases:
            judged = [f for f in c["foreign"] if "error_pct" in f]
            if judged:
                shares.append(f"{c['config']} {c['timing']}: {sum(abs(f['error_pct']) <= 0.10 for f in judged)}/"
                              f"{len(judged)} within 10% (measured again within 10%: "
                              f"{sum(abs(f['floor_pct']) <= 0.10 for f in judged)}/{len(judged)}), Kendall tau "
                              f"{tau_text([f['predicted_ms'] for f in judged], [f['measured_ms'] for f in judged])} "
                              f"(measured again: {tau_text([f['remeasured_ms'] for f in judged], [f['measured_ms'] for f in judged])})")
        text += "\n\n" + "; ".join(shares)
    results.mkdir(parents=True, exist_ok=True)
    name = "lut_accuracy" + (f"_{a.tag}" if a.tag else "")
    (results / f"{name}.json").write_text(json.dumps({"quick": a.quick, "machine": machine(), "argv": sys.argv[1:],
                                                      "loadavg_before": load0, "loadavg_after": load1,
                                                      "cases": cases}, indent=2, default=str) + "\n")
    (results / f"{name}.md").write_text(text + "\n")
    print(text)
    print(f"wrote {results / name}.json and .md")


if __name__ == "__main__":
    main()
