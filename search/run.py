"""`run_search`: create or resume a study, run its missing trials (here or in N processes), export.

A new study records what it searches (search.record) and enqueues the base and the uniform scalings
that meet the cheap budgets; the record that says "initialised" is written last, so an interrupted
start is completed on resume. A resumed study must have been made with the same settings. The options,
the storage and the output folder are checked before any work; a worker that dies has its trial
retried in the same run; the caller hears what happens through events (search.events).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import optuna

from profiles.rowcosts import CostCache
from zoo.config import Config, load_config
from zoo.errors import ConfigError

from .evaluate import CandidateError, Measure, Scoring, evaluate, make_scoring
from .events import Finishing, ScoringChosen, StudyOpened, TableAnchored, TableAnchoring, WorkerLost
from .latency import pricers, reset_pricers, search_table
from .export import SearchResult, export_best
from .objectives import get_objective
from .record import check_record, default_study_name, study_record
from .recovery import STALE, Retried, counted, finished, recover
from .samplers import directions
from .space import SearchSpace, build_space
from .storage import (RUNS_DIR, check_storage, check_writable, is_url, open_storage, resolve_storage,
                      storage_errors, storage_failure)
from .worker import SearchOptions, StudyHandle, TrialEvent, cache_file, run_worker, spawned_worker, table_file

Event = Any  # search.events: StudyOpened | ScoringChosen | TableAnchoring | TableAnchored | WorkerLost | Finishing

INITIALISED = "zoo:initialised"
MAX_ROUNDS = 100  # rounds of trials in one run: a round after the first only retries a dead worker's trials


@dataclass(frozen=True)
class RunInfo:
    study: optuna.Study
    space: SearchSpace
    handle: StudyHandle
    interrupted: bool
    ran: int  # trials run by this call
    requeued: tuple[int, ...]
    resumed: bool
    scoring: Scoring


def output_folder(options: SearchOptions, storage: str, study_name: str) -> Path:
    """Where the export goes: `out`, else the journal's folder, else runs/search/<study> (RDB studies)."""
    if options.out:
        return Path(options.out)
    return RUNS_DIR / study_name if is_url(storage) else Path(storage).parent


def check_measure(cfg: Config, measure: Measure, sizes: tuple[int, ...] = ()) -> None:
    """The run options as `zoo profile` checks them (device present, imgsz and every searched size a
    multiple of the max stride), before any work."""
    from profiles.options import check_run_options
    from profiles.profile import check_stride_multiple
    from zoo.builder import build_model

    check_run_options(cfg.path, imgsz=measure.imgsz, batch=1, device=measure.device, threads=measure.threads,
                      runs=measure.runs)
    model = build_model(cfg, device="meta")
    for size in dict.fromkeys((measure.imgsz, *sizes)):
        check_stride_multiple(model, cfg.path, size)


def initialise(study: optuna.Study, space: SearchSpace, cfg: Config, options: SearchOptions,
               cache: CostCache, scoring: Scoring) -> None:
    """Record the study and enqueue the base, then the uniform scalings that meet the cheap budgets
    (best score first, at most `max_uniform`); done once, completed if a start was interrupted."""
    if study.user_attrs.get(INITIALISED):
        return
    for key, value in {**study_record(cfg, options), "zoo:scoring": scoring.as_dict()}.items():
        study.set_user_attr(key, value)
    present = [t.params or t.system_attrs.get("fixed_params") for t in study.get_trials(deepcopy=False)]
    # (an enqueued trial that still waits holds its parameters as `fixed_params`)
    queue = [(space.uniform_params(1.0), "base")]
    limit = options.max_uniform if options.max_uniform is not None else max(0, options.trials // 4)
    cheap = replace(options.budget, latency_ms=None)
    scored = []
    for u in space.uniform_grid() if limit > 0 else []:
        p = dict(u.params)
        if p == queue[0][0]:
            continue
        try:
            ev = evaluate(space, p, budget=cheap, measure=options.measure, cache=cache, scoring=scoring,
                          prober=cache)
        except CandidateError:
            continue
        except Exception as e:  # noqa: BLE001  as in a trial: only this candidate's failure
            if storage_failure(e):
                raise
            continue
        if ev.feasible:
            scored.append((ev.score, u.label, p))
    sign = -1 if scoring.objective.direction == "maximize" else 1
    queue += [(p, kind) for _, kind, p in sorted(scored, key=lambda x: sign * x[0])[:limit]]
    for params, kind in queue:
        if params not in present:
            study.enqueue_trial(params, user_attrs={"kind": kind})
    study.set_user_attr(INITIALISED, True)


def anchor_resumed_table(cfg: Config, measure: Measure,
                         on_start: Callable[[TableAnchoring], None] | None = None) -> TableAnchored:
    """Anchor a resumed study's own table (--latency auto) on the base config, timed now: rows timed from
    here on are stored at the table's level (profiles.lut), and every candidate is priced at today's speed,
    whichever run timed its rows. Trials of earlier runs keep the prices of their day. `on_start` hears
    what is about to be timed, once measure_anchor's checks have passed."""
    from profiles.lutanchor import ANCHOR_ROUNDS, measure_anchor

    from .lutplans import anchor_sources

    table = search_table(measure)
    if table is None or not table.entries:
        return TableAnchored(str(measure.lut), None, skipped="the table holds no row yet")
    try:
        sources = anchor_sources(table, [cfg], imgsz=measure.imgsz, samples=0)

        def started(done: int, _total: int, _text: str) -> None:
            if done == 0 and on_start is not None:
                on_start(TableAnchoring(str(measure.lut), len(sources), ANCHOR_ROUNDS))

        anchor = measure_anchor(table, sources, rounds=ANCHOR_ROUNDS, on_progress=started)
    except ConfigError as e:
        return TableAnchored(str(measure.lut), None, skipped=e.text)
    return TableAnchored(str(measure.lut), anchor.factor, anchor.note)


def run_study(cfg: Config, options: SearchOptions, *, on_trial: Callable[[TrialEvent], None] | None = None,
              on_poll: Callable[[optuna.Study], None] | None = None, on_event: Callable[[Event], None] | None = None,
              optuna_verbosity: int | None = None) -> RunInfo:
    """Create or resume the study and run the missing trials (in this process or N spawned ones).

    Before any work: the run options are checked as `zoo profile` checks them, the storage and the
    output folder must be writable, and a resumed study must have been made with the same settings.
    A trial whose worker died is failed and run again in the same run (`on_event` hears WorkerLost).
    A failing storage is one StorageError; the study keeps every trial recorded before it. Spawned
    workers log as Optuna logs here (`optuna_verbosity` overrides).
    """
    name = options.study_name or default_study_name(
        cfg, options.settings.value("imgsz") or options.measure.imgsz, options.budget, objective=options.settings.objective, sampler=options.sampler,
        objectives=tuple(options.objectives), deploy=options.measure.deploy)
    emit = on_event or (lambda _e: None)
    reset_pricers()
    check_measure(cfg, options.measure)
    storage_path = resolve_storage(options.storage, name, folder=options.out)
    if options.measure.latency == "auto" and not options.measure.lut:  # the study's own table, resumed with it
        options = replace(options, measure=replace(options.measure, lut=table_file(storage_path, name)))
    check_writable(output_folder(options, storage_path, name), param="out", folder=True)
    check_storage(storage_path)
    if options.measure.latency == "auto" and options.budget.latency_ms is not None:
        Path(options.measure.lut).parent.mkdir(parents=True, exist_ok=True)
        kept = Path(options.measure.lut).exists()  # an earlier run's rows, timed at that run's speed
        pricers(options.measure)  # created here, once, before any worker process opens it
    else:
        kept = False
    with storage_errors(storage_path):
        storage = open_storage(storage_path)
        direction = get_objective(options.settings.objective).direction
        study = optuna.create_study(storage=storage, study_name=name,
                                    directions=directions(options.objectives, direction), load_if_exists=True)
        check_record(study, cfg, options, storage_path)
        resumed = bool(study.user_attrs.get(INITIALISED))
        emit(StudyOpened(name, storage_path, resumed, len(finished(study.get_trials(deepcopy=False))),
                         options.trials))
        if kept and options.anchor_resumed:  # before any worker opens the table
            emit(anchor_resumed_table(cfg, options.measure, emit))
        cache = CostCache(cache_file(storage_path, name), form=options.measure.form)
        space = build_space(cfg, options.settings, prober=cache)
        check_measure(cfg, options.measure, space.sizes)
        try:
            scoring = make_scoring(space, options.budget, options.measure, cache)
        except CandidateError as e:
            raise ConfigError(cfg.path, f"the base config at imgsz {options.measure.imgsz}: {e}") from None
        emit(ScoringChosen(scoring.objective.name, scoring.objective.direction,
                           scoring.depth.reason if scoring.depth is not None else None))
        handle = StudyHandle(storage_path, name, cfg, replace(options, study_name=name),
                             cache_file(storage_path, name),
                             optuna.logging.get_verbosity() if optuna_verbosity is None else optuna_verbosity)
        initialise(study, space, cfg, options, cache, scoring)
        if on_poll is not None:  # the counts a resumed study starts from
            on_poll(study)
        lost = LostWorkers(emit)
        requeued = lost.report(recover(storage, study))
        interrupted, ran, started = False, 0, time.time()
        try:
            for _ in range(MAX_ROUNDS):
                missing = options.trials - len(counted(study.get_trials(deepcopy=False)))
                if missing <= 0 or (options.timeout_s is not None and time.time() - started > options.timeout_s):
                    break
                if options.workers <= 1:
                    ran += run_worker(handle, 0, on_trial, started=started)
                else:
                    ran += _run_processes(handle, storage, study, min(options.workers, missing), on_poll, lost,
                                          started)
                again = lost.report(recover(storage, study))  # a concurrent command's dead worker
                requeued += again
                if not again:
                    break
        except KeyboardInterrupt:
            interrupted = True
        requeued += lost.report(recover(storage, study))  # the interrupted trial(s) of this run go back in the queue
    return RunInfo(study, space, handle, interrupted, ran, tuple(requeued), resumed, scoring)


class LostWorkers:
    """Reports each trial of a dead worker once (WorkerLost, grouped by worker)."""

    def __init__(self, emit: Callable[[Event], None]) -> None:
        self.emit = emit
        self.reported: set[int] = set()

    def report(self, retried: list[Retried]) -> list[int]:
        by_worker: dict[tuple[str | None, int | None, str], list[int]] = {}
        for r in retried:
            if r.reason is not None and r.number not in self.reported:
                by_worker.setdefault((r.host, r.pid, r.reason), []).append(r.number)
                self.reported.add(r.number)
        for (host, pid, reason), numbers in by_worker.items():
            self.emit(WorkerLost(pid, host, tuple(numbers), reason))
        return [r.number for r in retried]

    def dead_process(self, study: optuna.Study, pid: int) -> None:
        """A worker process of this run ended badly: report its failed trials (whoever recovered them)."""
        numbers = tuple(t.number for t in study.get_trials(deepcopy=False)
                        if t.system_attrs.get("zoo:pid") == pid and STALE in t.system_attrs
                        and t.number not in self.reported)
        if numbers:
            self.reported.update(numbers)
            self.emit(WorkerLost(pid, None, numbers, None))


def _run_processes(handle: StudyHandle, storage: Any, study: optuna.Study, workers: int,
                   poll: Callable[[optuna.Study], None] | None, lost: LostWorkers, started: float) -> int:
    """N worker processes on one study; a worker that dies has its trial failed and retried by the
    others (or by this process when none is left), so the study still ends with `trials` trials."""
    ctx = mp.get_context("spawn")
    before = len(counted(study.get_trials(deepcopy=False)))
    missing = handle.options.trials - before
    quotas = [missing // workers + (1 if i < missing % workers else 0) for i in range(workers)]
    procs = [ctx.Process(target=spawned_worker, args=(handle, i, q), daemon=False)
             for i, q in enumerate(quotas) if q > 0]
    for p in procs:
        p.start()
    dead: set[int] = set()
    try:
        last_recover = time.time()
        while any(p.is_alive() for p in procs):
            if poll is not None:
                poll(study)
            for p in procs:
                p.join(timeout=1.0 / len(procs))
            ended = [p for p in procs if p.exitcode not in (None, 0) and p.pid not in dead]
            if time.time() - last_recover > 5.0 or ended:
                lost.report(recover(storage, study))
                last_recover = time.time()
            for p in ended:
                dead.add(p.pid)
                lost.dead_process(study, p.pid)
        if poll is not None:
            poll(study)
        lost.report(recover(storage, study))
        for p in procs:
            if p.exitcode not in (None, 0) and p.pid not in dead:
                lost.dead_process(study, p.pid)
        left = handle.options.trials - len(counted(study.get_trials(deepcopy=False)))
        if left > 0:  # a worker died (killed) before its quota: its trial was failed above; finish here
            run_worker(handle, 0, quota=left, started=started)
    except KeyboardInterrupt:
        deadline = time.time() + 3.0  # a terminal's Ctrl-C reached them too: let them record their trials
        while time.time() < deadline and any(p.is_alive() for p in procs):
            time.sleep(0.1)
        _stop(procs, signal.SIGINT)
        raise
    except BaseException:
        _stop(procs, signal.SIGTERM)
        raise
    return len(counted(study.get_trials(deepcopy=False))) - before


def _stop(procs: list[Any], sig: int) -> None:
    for p in procs:
        if p.is_alive() and p.pid is not None:
            os.kill(p.pid, sig)
    for p in procs:
        p.join(timeout=15)
        if p.is_alive():
            p.terminate()
            p.join()


def run_search(config: Any, options: SearchOptions, *, on_trial: Callable[[TrialEvent], None] | None = None,
               on_poll: Callable[[optuna.Study], None] | None = None,
               on_event: Callable[[Event], None] | None = None) -> SearchResult:
    """Create or resume a study, run its missing trials, re-measure the top ones and export.

    `config` is a built-in name, a path, a mapping or a Config. Ctrl-C stops the trials and still
    exports the best so far (`result.interrupted`; `on_event` hears Finishing first, and a latency
    budget re-measures only the top 2); `result.best` is None when nothing meets the budgets. The load
    average at the start and the end is recorded in report.json.
    """
    from profiles.latency import loadavg

    cfg = load_config(config)
    if not options.budget.any():
        raise ValueError("give at least one budget (latency_ms, gflops, params_m or max_layers)")
    load_start = loadavg()
    info = run_study(cfg, options, on_trial=on_trial, on_poll=on_poll, on_event=on_event)
    out = output_folder(options, info.handle.storage, info.handle.study_name)
    top_k = min(options.top_k, 2) if info.interrupted else options.top_k
    if info.interrupted and on_event is not None:
        on_event(Finishing(top_k if options.budget.latency_ms is not None else 0))
    with storage_errors(str(out), what="the output folder"):
        return export_best(info.study, space=info.space, budget=options.budget, measure=info.handle.options.measure,
                           scoring=info.scoring, out=out, top_k=top_k, factor=options.remeasure_factor,
                           rounds=1 if info.interrupted else options.remeasure_rounds,
                           storage=info.handle.storage, interrupted=info.interrupted,
                           load=run_load(load_start, loadavg()))


def run_load(start: tuple[float, ...] | None, end: tuple[float, ...] | None) -> dict[str, Any]:
    """The load averages around a run and the cores this process may use (report.json's `load`)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return {"loadavg_start": list(start) if start else None, "loadavg_end": list(end) if end else None,
            "cores": cores}


__all__ = ["INITIALISED", "RunInfo", "check_measure", "default_study_name", "initialise", "output_folder",
           "run_search", "run_study", "study_record"]
