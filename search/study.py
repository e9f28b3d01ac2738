"""The Optuna study: storage, samplers, workers, resume, stale and interrupted trials.

Storage: an embedded JournalStorage file `runs/search/<study>/journal.log` by default, or any Optuna
RDB URL (sqlite, postgresql; heartbeats there fail a dead worker's trial and Optuna's retry callback
re-enqueues it). The journal has no heartbeat, so each worker stamps its running trial (host, pid,
time every 10 s); on start a run fails the trials whose worker is gone (same host, dead pid) or silent
for 60 s, and re-enqueues their parameters. `trials` is the study's total: failed candidates count,
retried (stale or interrupted) ones do not.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from zoo.config import Config

from .objective import Budget, CandidateError, Measure, evaluate
from .space import SearchSettings, SearchSpace, build_space

SAMPLERS = ("tpe", "nsga2", "random")
STAMP_EVERY_S = 10.0
STALE_AFTER_S = 60.0
RUNS_DIR = Path("runs/search")
# a waiting copy's user attr naming the failed trial it retries (Optuna's callback uses system attr
# "failed_trial" for the same on RDB storages)
RETRY_OF = "retry_of"


@dataclass(frozen=True)
class SearchOptions:
    budget: Budget
    measure: Measure = field(default_factory=Measure)
    settings: SearchSettings = field(default_factory=SearchSettings)
    trials: int = 100
    timeout_s: float | None = None
    sampler: str = "tpe"
    objectives: tuple[str, ...] = ("score",)
    seed: int = 0
    workers: int = 1
    storage: str | None = None  # an RDB URL or a journal file; None: runs/search/<study>/journal.log
    study_name: str | None = None
    out: str | None = None  # export folder; None: the study folder
    top_k: int = 5  # candidates re-measured at the end
    remeasure_factor: int = 3  # runs (and warm-up) multiplier of the re-measurement
    plugins: tuple[str, ...] = ()
    max_uniform: int | None = None  # uniform scalings enqueued (None: up to trials // 4)


@dataclass(frozen=True)
class StudyHandle:
    """Everything a worker needs to reopen the study (picklable for spawned processes)."""

    storage: str
    study_name: str
    config: Config  # the base config as loaded (the space derives from it)
    base: dict[str, Any]  # the base resolved to explicit channels and repeats (the study's record)
    options: SearchOptions


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


def is_url(storage: str) -> bool:
    return "://" in storage


def resolve_storage(storage: str | None, study_name: str) -> str:
    """An RDB URL as given; else a journal file path (a folder means its journal.log)."""
    if storage is None:
        return str(RUNS_DIR / study_name / "journal.log")
    if is_url(storage):
        return storage
    p = Path(storage)
    return str(p / "journal.log") if p.is_dir() or not p.suffix else str(p)


def open_storage(storage: str) -> BaseStorage:
    if is_url(storage):
        with warnings.catch_warnings():  # heartbeats and the retry callback are flagged experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                storage, heartbeat_interval=int(STAMP_EVERY_S), grace_period=int(STALE_AFTER_S),
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))
    from optuna.storages.journal import JournalFileBackend

    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(storage))


def make_sampler(name: str, seed: int, *, n_objectives: int, trials: int, workers: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=workers > 1,
                                          n_startup_trials=min(10, max(3, trials // 6)))
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, trials // 5)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")


def directions(objectives: Sequence[str]) -> list[str]:
    return ["maximize" if o == "score" else "minimize" for o in objectives]


def counted(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Trials that count toward `--trials`: done, running, or failed candidates (not retried ones)."""
    retried = retried_numbers(trials)
    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and t.number not in retried and "zoo:interrupted" not in t.system_attrs)]


def retried_numbers(trials: Sequence[FrozenTrial]) -> set[int]:
    nums = {t.user_attrs.get(RETRY_OF) for t in trials} | {t.system_attrs.get("failed_trial") for t in trials}
    return {n for n in nums if isinstance(n, int)}


def recover(study: optuna.Study, *, now: float | None = None) -> list[int]:
    """Fail the running trials of dead or silent workers and re-enqueue every unretried stale or
    interrupted trial's parameters; returns the numbers re-enqueued."""
    now = time.time() if now is None else now
    host = socket.gethostname()
    storage = study._storage
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.state != TrialState.RUNNING:
            continue
        reason = stale_reason(t, host=host, now=now)
        if reason is None:
            continue
        try:
            storage.set_trial_system_attr(t._trial_id, "zoo:stale", reason)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except Exception:  # finished meanwhile by its worker or by Optuna's heartbeat: leave it
            continue
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    again = []
    for t in trials:
        if t.state == TrialState.FAIL and t.number not in retried and (
                "zoo:stale" in t.system_attrs or "zoo:interrupted" in t.system_attrs):
            study.enqueue_trial(dict(t.params), user_attrs={"kind": t.user_attrs.get("kind", "sampled"),
                                                            RETRY_OF: t.number})
            again.append(t.number)
    return again


def stale_reason(t: FrozenTrial, *, host: str, now: float) -> str | None:
    """Why a running trial's worker is gone, or None while it may still be alive."""
    stamp_host = t.system_attrs.get("zoo:host")
    pid = t.system_attrs.get("zoo:pid")
    stamp = t.system_attrs.get("zoo:stamp")
    if stamp_host == host and isinstance(pid, int) and not pid_alive(pid):
        return f"worker {host}:{pid} is gone"
    if stamp is None:
        start = t.datetime_start.timestamp() if t.datetime_start else now
        return f"no worker stamp for {now - start:.0f} s" if now - start > STALE_AFTER_S else None
    if now - float(stamp) > STALE_AFTER_S:
        return f"worker {stamp_host}:{pid} silent for {now - float(stamp):.0f} s"
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is dead too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class _Stamper:
    """Stamps the running trial with host, pid and time every STAMP_EVERY_S (a daemon thread)."""

    def __init__(self, storage: BaseStorage, trial_id: int) -> None:
        self.storage, self.trial_id = storage, trial_id
        self.done = threading.Event()
        self.storage.set_trial_system_attr(trial_id, "zoo:host", socket.gethostname())
        self.storage.set_trial_system_attr(trial_id, "zoo:pid", os.getpid())
        self.storage.set_trial_system_attr(trial_id, "zoo:stamp", time.time())
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(STAMP_EVERY_S):
            try:
                self.storage.set_trial_system_attr(self.trial_id, "zoo:stamp", time.time())
            except Exception:
                return

    def stop(self) -> None:
        self.done.set()


class _Interrupts:
    """Ctrl-C interrupts a candidate's evaluation at once, but never an Optuna storage write (a
    journal half-written by a signal breaks the study): there it only asks the loop to stop."""

    def __init__(self) -> None:
        self.requested = False
        self.in_eval = False
        self.previous: Any = None

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if self.in_eval:
            raise KeyboardInterrupt

    def stop_if_requested(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.requested:
            study.stop()


def make_objective(space: SearchSpace, options: SearchOptions,
                   interrupts: _Interrupts | None = None) -> Callable[[optuna.Trial], Any]:
    dims = space.dimensions()
    guard = interrupts or _Interrupts()

    def objective(trial: optuna.Trial) -> Any:
        stamper = _Stamper(trial.storage, trial._trial_id)
        try:
            params = {name: trial.suggest_int(name, 0, n - 1) for name, n in dims.items()}
            trial.set_user_attr("choices", space.values(params))
            try:
                if guard.requested:
                    raise KeyboardInterrupt
                guard.in_eval = True
                try:
                    ev = evaluate(space.resolve(params), budget=options.budget, measure=options.measure,
                                  settings=space.settings)
                finally:
                    guard.in_eval = False
            except CandidateError as e:
                trial.set_user_attr("fail_reason", str(e))
                raise
        except KeyboardInterrupt:
            trial.storage.set_trial_system_attr(trial._trial_id, "zoo:interrupted", True)
            raise
        finally:
            stamper.stop()
        for key, value in ev.user_attrs().items():
            trial.set_user_attr(key, value)
        for name, v in ev.violations.items():
            trial.set_constraint(name, v)
        if tuple(options.objectives) == ("score",):
            return ev.score.score
        lat = ev.latency.median_ms if ev.latency is not None else float("inf")
        return ev.score.score, lat

    return objective


def create_or_load(handle: StudyHandle, *, rank: int = 0) -> optuna.Study:
    o = handle.options
    sampler = make_sampler(o.sampler, o.seed + rank, n_objectives=len(o.objectives), trials=o.trials,
                           workers=o.workers)
    return optuna.create_study(storage=open_storage(handle.storage), study_name=handle.study_name,
                               sampler=sampler, directions=directions(o.objectives), load_if_exists=True)


def initialise(study: optuna.Study, space: SearchSpace, handle: StudyHandle) -> None:
    """A new study records what it searches and enqueues the base, then the uniform scalings of the
    space that meet the budgets (checked here, best score first, at most `max_uniform`)."""
    if "zoo:base" in study.user_attrs:
        return
    o = handle.options
    study.set_user_attr("zoo:base", handle.base)
    study.set_user_attr("zoo:space", space.describe())
    study.set_user_attr("zoo:budget", o.budget.as_dict())
    study.set_user_attr("zoo:measure", o.measure.as_dict())
    study.set_user_attr("zoo:objectives", list(o.objectives))
    base = space.uniform_params(1.0)
    study.enqueue_trial(base, user_attrs={"kind": "base"})
    limit = o.max_uniform if o.max_uniform is not None else max(0, o.trials // 4)
    feasible = []
    for d, w, p in space.uniform_grid() if limit > 0 else []:
        if p == base:
            continue
        try:
            ev = evaluate(space.resolve(p), budget=o.budget, measure=o.measure, settings=space.settings)
        except CandidateError:
            continue
        if ev.feasible:
            feasible.append((ev.score.score, d, w, p))
    for _, d, w, p in sorted(feasible, key=lambda x: -x[0])[:limit]:
        study.enqueue_trial(p, user_attrs={"kind": f"uniform d{d:g} w{w:g}"})


def _worker(handle: StudyHandle, quota: int, rank: int, progress: Callable[..., None] | None = None) -> None:
    """One process's share: `quota` trials (a failed candidate is a trial; Ctrl-C propagates)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from zoo.registry import ensure_builtin_modules, load_plugin

    ensure_builtin_modules()
    for p in handle.options.plugins:
        load_plugin(p)
    study = create_or_load(handle, rank=rank)
    space = build_space(handle.config, handle.options.settings)
    with _Interrupts() as guard:
        callbacks = [guard.stop_if_requested] + ([progress] if progress is not None else [])
        study.optimize(make_objective(space, handle.options, guard), n_trials=quota,
                       timeout=handle.options.timeout_s, catch=(CandidateError,), callbacks=callbacks,
                       gc_after_trial=False)
    if guard.requested:
        raise KeyboardInterrupt


def _spawned_worker(handle: StudyHandle, quota: int, rank: int) -> None:
    try:
        _worker(handle, quota, rank)
    except KeyboardInterrupt:
        pass


@dataclass(frozen=True)
class RunInfo:
    study: optuna.Study
    space: SearchSpace
    handle: StudyHandle
    interrupted: bool
    ran: int  # trials asked by this run
    requeued: tuple[int, ...]


def run_study(cfg: Config, options: SearchOptions, *, on_progress: Callable[[optuna.Study], None] | None = None
              ) -> RunInfo:
    """Create or resume the study and run the missing trials (in this process or N spawned ones)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    name = options.study_name or default_study_name(cfg, options.measure.imgsz, options.budget)
    storage = resolve_storage(options.storage, name)
    base = explicit_base(cfg)
    handle = StudyHandle(storage, name, cfg, base, replace(options, study_name=name))
    space = build_space(cfg, options.settings)
    study = create_or_load(handle)
    initialise(study, space, handle)
    requeued = recover(study)
    missing = options.trials - len(counted(study.get_trials(deepcopy=False)))
    interrupted = False
    if missing > 0:
        try:
            if options.workers <= 1:
                cb = (lambda s, t: on_progress(s)) if on_progress else None
                _worker(handle, missing, 0, cb)
            else:
                _run_processes(handle, missing, options.workers, lambda: on_progress(study) if on_progress else None)
        except KeyboardInterrupt:
            interrupted = True
        requeued += recover(study)  # the interrupted trial(s) of this run go back in the queue
    return RunInfo(study, space, handle, interrupted, max(missing, 0), tuple(requeued))


def _run_processes(handle: StudyHandle, missing: int, workers: int, poll: Callable[[], None]) -> None:
    ctx = mp.get_context("spawn")
    quotas = [missing // workers + (1 if i < missing % workers else 0) for i in range(workers)]
    procs = [ctx.Process(target=_spawned_worker, args=(handle, q, i), daemon=False)
             for i, q in enumerate(quotas) if q > 0]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            poll()
            for p in procs:
                p.join(timeout=1.0 / len(procs))
        poll()
    except KeyboardInterrupt:
        deadline = time.time() + 3.0  # a terminal's Ctrl-C reached them too: let them tell their trials
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


def explicit_base(cfg: Config) -> dict[str, Any]:
    """The base config as a plain mapping with its own multiples resolved (for the study record)."""
    space = build_space(cfg, SearchSettings(widths=[1.0], depths={}))
    return space.resolve({})


def now_iso() -> str:
    return datetime.now().isoformat(timespec="seconds")
