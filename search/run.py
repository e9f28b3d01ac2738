"""`run_search`: create or resume a study, run its missing trials (here or in N processes), export.

A new study records what it searches (the base config, its scale, the settings, budgets, measurement,
objectives and sampler) and enqueues the base and the uniform scalings that meet the cheap budgets;
the record that says "initialised" is written last, so an interrupted start is completed on resume.
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
from zoo.config import Config, config_to_mapping, load_config

from .evaluate import Budget, CandidateError, Scoring, evaluate, make_scoring
from .export import SearchResult, export_best
from .objectives import get_objective
from .recovery import counted, recover
from .samplers import directions
from .space import SearchSpace, build_space
from .storage import open_storage, resolve_storage
from .worker import SearchOptions, StudyHandle, TrialEvent, cache_file, run_worker, spawned_worker

INITIALISED = "zoo:initialised"


def default_study_name(cfg: Config, imgsz: int, budget: Budget) -> str:
    """`<config>-<imgsz>-<budget>ms` (other budgets when there is no latency budget)."""
    if budget.latency_ms is not None:
        tag = f"{budget.latency_ms:g}ms"
    elif budget.gflops is not None:
        tag = f"{budget.gflops:g}gflops"
    elif budget.params_m is not None:
        tag = f"{budget.params_m:g}mparams"
    else:
        tag = f"{budget.max_layers}layers"
    return f"{Path(cfg.name).stem}-{imgsz}-{tag}"


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


def study_record(cfg: Config, options: SearchOptions) -> dict[str, Any]:
    """What a study says it is (its user attrs): enough to rebuild its space and export any trial."""
    return {"zoo:config": config_to_mapping(cfg), "zoo:scale": cfg.scale.name, "zoo:name": cfg.name,
            "zoo:settings": options.settings.as_dict(), "zoo:budget": options.budget.as_dict(),
            "zoo:measure": options.measure.as_dict(), "zoo:objectives": list(options.objectives),
            "zoo:sampler": options.sampler}


def initialise(study: optuna.Study, space: SearchSpace, cfg: Config, options: SearchOptions,
               cache: CostCache, scoring: Scoring) -> None:
    """Record the study and enqueue the base, then the uniform scalings that meet the cheap budgets
    (best score first, at most `max_uniform`); done once, completed if a start was interrupted."""
    if study.user_attrs.get(INITIALISED):
        return
    for key, value in {**study_record(cfg, options), "zoo:scoring": scoring.as_dict()}.items():
        study.set_user_attr(key, value)
    present = [t.params for t in study.get_trials(deepcopy=False)]
    queue = [(space.uniform_params(1.0), "base")]
    limit = options.max_uniform if options.max_uniform is not None else max(0, options.trials // 4)
    cheap = replace(options.budget, latency_ms=None)
    scored = []
    for d, w, p in space.uniform_grid() if limit > 0 else []:
        if p == queue[0][0]:
            continue
        try:
            ev = evaluate(space, p, budget=cheap, measure=options.measure, cache=cache, scoring=scoring,
                          prober=cache)
        except CandidateError:
            continue
        if ev.feasible:
            scored.append((ev.score, f"uniform d{d:g} w{w:g}", p))
    sign = -1 if scoring.objective.direction == "maximize" else 1
    queue += [(p, kind) for _, kind, p in sorted(scored, key=lambda x: sign * x[0])[:limit]]
    for params, kind in queue:
        if params not in present:
            study.enqueue_trial(params, user_attrs={"kind": kind})
    study.set_user_attr(INITIALISED, True)


def run_study(cfg: Config, options: SearchOptions, *, on_trial: Callable[[TrialEvent], None] | None = None,
              on_poll: Callable[[optuna.Study], None] | None = None, optuna_verbosity: int | None = None) -> RunInfo:
    """Create or resume the study and run the missing trials (in this process or N spawned ones)."""
    name = options.study_name or default_study_name(cfg, options.measure.imgsz, options.budget)
    storage_path = resolve_storage(options.storage, name, folder=options.out)
    storage = open_storage(storage_path)
    direction = get_objective(options.settings.objective).direction
    study = optuna.create_study(storage=storage, study_name=name, directions=directions(options.objectives, direction),
                                load_if_exists=True)
    cache = CostCache(cache_file(storage_path, name), form=options.measure.form)
    space = build_space(cfg, options.settings, prober=cache)
    scoring = make_scoring(space, options.budget, options.measure, cache)
    resumed = bool(study.user_attrs.get(INITIALISED))
    handle = StudyHandle(storage_path, name, cfg, replace(options, study_name=name),
                         cache_file(storage_path, name), optuna_verbosity)
    initialise(study, space, cfg, options, cache, scoring)
    requeued = recover(storage, study)
    missing = options.trials - len(counted(study.get_trials(deepcopy=False)))
    interrupted, ran = False, 0
    if missing > 0:
        try:
            if options.workers <= 1:
                ran = run_worker(handle, 0, on_trial)
            else:
                ran = _run_processes(handle, storage, study, min(options.workers, missing), on_poll)
        except KeyboardInterrupt:
            interrupted = True
        requeued += recover(storage, study)  # the interrupted trial(s) of this run go back in the queue
    return RunInfo(study, space, handle, interrupted, ran, tuple(requeued), resumed, scoring)


def _run_processes(handle: StudyHandle, storage: Any, study: optuna.Study, workers: int,
                   poll: Callable[[optuna.Study], None] | None) -> int:
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
    try:
        last_recover = time.time()
        while any(p.is_alive() for p in procs):
            if poll is not None:
                poll(study)
            for p in procs:
                p.join(timeout=1.0 / len(procs))
            if time.time() - last_recover > 5.0 or any(p.exitcode not in (None, 0) for p in procs):
                recover(storage, study)
                last_recover = time.time()
        if poll is not None:
            poll(study)
        recover(storage, study)
        left = handle.options.trials - len(counted(study.get_trials(deepcopy=False)))
        if left > 0:  # a worker died (killed) before its quota: its trial was failed above; finish here
            run_worker(handle, 0, quota=left)
    except KeyboardInterrupt:
        deadline = time.time() + 3.0  # a terminal's Ctrl-C reached them too: let them record their trials
        while time.time() < deadline and any(p.is_alive() for p in procs):
            time.sleep(0.1)
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGINT)
        for p in procs:
            p.join(timeout=15)
            if p.is_alive():
                p.terminate()
                p.join()
        raise
    return len(counted(study.get_trials(deepcopy=False))) - before


def run_search(config: Any, options: SearchOptions, *, on_trial: Callable[[TrialEvent], None] | None = None,
               on_poll: Callable[[optuna.Study], None] | None = None) -> SearchResult:
    """Create or resume a study, run its missing trials, re-measure the top ones and export.

    `config` is a built-in name, a path, a mapping or a Config. Ctrl-C stops the trials and still
    exports the best so far (`result.interrupted`); `result.best` is None when nothing meets the budgets.
    """
    cfg = load_config(config)
    if not options.budget.any():
        raise ValueError("give at least one budget (latency_ms, gflops, params_m or max_layers)")
    info = run_study(cfg, options, on_trial=on_trial, on_poll=on_poll)
    out = Path(options.out) if options.out else (Path(info.handle.storage).parent if "://" not in info.handle.storage
                                                 else Path("runs/search") / info.handle.study_name)
    top_k = min(options.top_k, 2) if info.interrupted else options.top_k
    return export_best(info.study, space=info.space, budget=options.budget, measure=options.measure,
                       scoring=info.scoring, out=out, top_k=top_k, factor=options.remeasure_factor,
                       storage=info.handle.storage, interrupted=info.interrupted)


__all__ = ["INITIALISED", "RunInfo", "default_study_name", "initialise", "run_search", "run_study", "study_record"]
