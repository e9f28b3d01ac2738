"""One worker's trial loop: sample in memory, claim in the study, evaluate from the plan, record.

The sampler runs on a mirror study held in memory (every finished trial of the shared study is
copied in), so sampling never reads the storage. Each trial costs the shared study two writes: the
claim (one new RUNNING trial carrying its parameters, host and pid) and the result (its attributes,
constraints and state, grouped into one journal append). Enqueued trials (the base, the uniform
scalings, retries) are popped from the shared study first. A worker stops when the study holds
`trials` counted trials. The count and the claim happen under `storage.exclusive` (the journal's file
lock, a PostgreSQL advisory lock), so concurrent processes never overshoot; on storages without such
a lock a claim that finds the study already full is failed as surplus, never run.

Any failure while evaluating a candidate (plan, build, fold, count, latency, a module's own error) is
that trial's: it is recorded as failed with its reason and the loop goes on. A failing storage or disk
(OSError, a database error) is not a candidate's fault: it stops the loop and reaches the caller.
"""
from __future__ import annotations

import datetime
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.distributions import IntDistribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from profiles.rowcosts import CostCache
from zoo.config import Config

from .evaluate import Budget, CandidateError, Evaluation, Measure, evaluate, make_scoring
from .events import TrialEvent
from .recovery import INTERRUPTED, SURPLUS, Stamper, counted, identity, recover
from .samplers import DEFAULT_SAMPLER, directions, make_sampler
from .settings import SearchSettings
from .space import SearchSpace, build_space
from .storage import batched, exact_claims, exclusive, open_storage, storage_failure

SYNC_EVERY = 100  # trials between full reads of the shared study (others' trials, the count)
NEAR_END = 50  # within this many trials of the total every claim re-reads the count
RECOVER_EVERY_S = 30.0  # how often worker 0 fails the trials of dead workers
STORAGE_EXIT = 3  # a spawned worker's exit code when its storage failed (the parent reports it)


@dataclass(frozen=True)
class SearchOptions:
    budget: Budget
    measure: Measure = field(default_factory=Measure)
    settings: SearchSettings = field(default_factory=SearchSettings)
    trials: int = 100
    timeout_s: float | None = None
    sampler: str = DEFAULT_SAMPLER  # the face picks samplers.default_sampler unless told
    objectives: tuple[str, ...] = ("score",)
    seed: int = 0
    workers: int = 1
    storage: str | None = None  # an RDB URL or a journal file; None: a journal in the study's folder
    study_name: str | None = None
    out: str | None = None  # export folder; None: the study folder
    top_k: int = 5  # candidates re-measured at the end (latency budgets)
    remeasure_factor: int = 3  # runs (and warm-up) multiplier of the re-measurement
    remeasure_rounds: int = 3  # interleaved timings of each re-measured candidate (its figure: their median)
    plugins: tuple[str, ...] = ()
    max_uniform: int | None = None  # uniform scalings enqueued (None: up to trials // 4)
    anchor_resumed: bool = True  # --latency auto: anchor the study's table on the base config when resumed


@dataclass(frozen=True)
class StudyHandle:
    """Everything a worker needs to reopen the study (picklable for spawned processes)."""

    storage: str
    study_name: str
    config: Config  # the base config as loaded (the space derives from it)
    options: SearchOptions
    cache_path: str | None = None  # the study's row-cost cache file
    optuna_verbosity: int | None = None  # Optuna's log level in worker processes (the face sets it)


class Interrupts:
    """Ctrl-C interrupts a candidate's evaluation at once, but never a storage write (a journal
    half-written by a signal would break the study): there it only asks the loop to stop."""

    def __init__(self) -> None:
        self.requested = False
        self.in_eval = False
        self.previous: Any = None

    def __enter__(self) -> Interrupts:
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


class Mirror:
    """The sampler's own study, in memory: the shared study's finished trials are copied in."""

    def __init__(self, options: SearchOptions, direction: str, rank: int) -> None:
        sampler = make_sampler(options.sampler, options.seed + rank, trials=options.trials, workers=options.workers)
        self.study = optuna.create_study(sampler=sampler, directions=directions(options.objectives, direction))
        self.known: set[int] = set()  # shared-study numbers already in the mirror

    def sync(self, trials: list[FrozenTrial]) -> None:
        for t in trials:
            if t.number in self.known or t.state not in (TrialState.COMPLETE, TrialState.FAIL):
                continue
            self.known.add(t.number)
            if t.state == TrialState.COMPLETE and t.values is None:
                continue
            constraints = {k: v for k, v in t.system_attrs.items() if k.startswith("constraints:")}
            self.study.add_trial(optuna.trial.create_trial(
                state=t.state, values=t.values if t.state == TrialState.COMPLETE else None, params=t.params,
                distributions=t.distributions, system_attrs=constraints))


def _dims(space: SearchSpace) -> dict[str, IntDistribution]:
    return {name: IntDistribution(0, n - 1) for name, n in space.dimensions().items()}


def _claim_waiting(storage: BaseStorage, study: optuna.Study, dists: dict[str, IntDistribution]
                   ) -> tuple[int, int, dict[str, int], dict[str, Any]] | None:
    """Pop one enqueued trial (atomic in the storage); None when there is none."""
    if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        return None
    trial = study.ask()  # pops under the storage's own lock (not batched: it reads its write back)
    frozen = storage.get_trial(trial._trial_id)
    fixed = frozen.system_attrs.get("fixed_params")
    if not fixed:  # another worker popped the last one first: this is a fresh trial, sampled below
        return trial._trial_id, trial.number, {}, {}
    with batched(storage):
        params = {}
        for name, dist in dists.items():
            params[name] = trial.suggest_int(name, dist.low, dist.high)
        for key, value in identity().items():
            storage.set_trial_system_attr(trial._trial_id, key, value)
    return trial._trial_id, trial.number, params, dict(frozen.user_attrs)


def _claim_new(storage: BaseStorage, study_id: int, params: dict[str, int], dists: dict[str, IntDistribution],
               user_attrs: dict[str, Any]) -> tuple[int, int]:
    """One write: a RUNNING trial with its parameters and its worker."""
    tmpl = FrozenTrial(number=-1, state=TrialState.RUNNING, value=None, datetime_start=datetime.datetime.now(),
                       datetime_complete=None, params=params, distributions=dict(dists), user_attrs=user_attrs,
                       system_attrs=identity(), intermediate_values={}, trial_id=-1)
    trial_id = storage.create_new_trial(study_id, template_trial=tmpl)
    return trial_id, storage.get_trial_number_from_id(trial_id)


def _record(storage: BaseStorage, trial_id: int, ev: Evaluation | None, objectives: tuple[str, ...],
            choices: dict[str, Any], reason: str | None = None) -> None:
    """The result of a trial in one grouped write."""
    with batched(storage):
        if ev is None:
            storage.set_trial_user_attr(trial_id, "fail_reason", reason or "")
            storage.set_trial_user_attr(trial_id, "choices", choices)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            return
        for key, value in ev.user_attrs().items():
            storage.set_trial_user_attr(trial_id, key, value)
        storage.set_trial_user_attr(trial_id, "choices", choices)
        for name, v in ev.violations.items():
            storage.set_trial_system_attr(trial_id, f"constraints:{name}", float(v))
        storage.set_trial_state_values(trial_id, TrialState.COMPLETE, objective_values(ev, objectives))


def objective_values(ev: Evaluation, objectives: tuple[str, ...]) -> list[float]:
    if tuple(objectives) == ("score",):
        return [ev.score]
    lat = ev.latency.median_ms if ev.latency is not None else float("inf")
    return [ev.score, lat]


def run_worker(handle: StudyHandle, rank: int = 0, on_trial: Callable[[TrialEvent], None] | None = None, *,
               quota: int | None = None, started: float | None = None) -> int:
    """Run trials until the study is full, `quota` trials are done, time is up (`timeout_s` after
    `started`, default now) or Ctrl-C; returns the trials this worker ran. Raises KeyboardInterrupt
    after recording an interrupted trial as such (it is enqueued again)."""
    from zoo.plugins import ensure_loaded, load_plugin

    ensure_loaded()
    for p in handle.options.plugins:
        load_plugin(p)
    o = handle.options
    storage = open_storage(handle.storage)
    study = optuna.load_study(study_name=handle.study_name, storage=storage,
                              sampler=optuna.samplers.RandomSampler(seed=o.seed + rank))
    study_id = storage.get_study_id_from_name(handle.study_name)
    cache = CostCache(handle.cache_path, form=o.measure.form)
    space = build_space(handle.config, o.settings, prober=cache)
    scoring = make_scoring(space, o.budget, o.measure, cache)
    dists = _dims(space)
    mirror = Mirror(o, scoring.objective.direction, rank)
    trials = study.get_trials(deepcopy=False)
    mirror.sync(trials)
    n_counted = len(counted(trials))
    since_sync, ran = 0, 0
    last_recover = time.time()
    started = last_recover if started is None else started
    exact = exact_claims(storage)
    stamper = Stamper(open_storage(handle.storage))
    try:
        with Interrupts() as guard:
            while not guard.requested and (quota is None or ran < quota):
                if o.timeout_s is not None and time.time() - started > o.timeout_s:
                    break
                if since_sync >= SYNC_EVERY:
                    trials = study.get_trials(deepcopy=False)
                    mirror.sync(trials)
                    n_counted, since_sync = len(counted(trials)), 0
                    if rank == 0 and time.time() - last_recover > RECOVER_EVERY_S:
                        recover(storage, study)
                        last_recover = time.time()
                t0 = time.perf_counter()
                mt = mirror.study.ask()
                t1 = time.perf_counter()
                with exclusive(storage, handle.study_name):  # the count and the claim: no other process between
                    if n_counted + NEAR_END >= o.trials:
                        n_counted = len(counted(study.get_trials(deepcopy=False)))
                    if n_counted >= o.trials:
                        mirror.study.tell(mt, state=TrialState.FAIL)
                        break
                    claim = _claim(storage, study, study_id, mt, dists)
                trial_id, number, params = claim
                t2 = time.perf_counter()
                mirror.known.add(number)
                n_counted += 1
                since_sync += 1
                if not exact and n_counted + NEAR_END >= o.trials \
                        and _over_total(study, number, o.trials):  # no lock here: two processes took the last one
                    with batched(storage):
                        storage.set_trial_system_attr(trial_id, SURPLUS, True)
                        storage.set_trial_state_values(trial_id, TrialState.FAIL)
                    mirror.study.tell(mt, state=TrialState.FAIL)
                    break
                stamper.trial_id = trial_id
                choices = space.values(params)
                ev, reason = None, None
                try:
                    guard.in_eval = True
                    try:
                        ev = evaluate(space, params, budget=o.budget, measure=o.measure, cache=cache,
                                      scoring=scoring, prober=cache)
                    finally:
                        guard.in_eval = False
                except CandidateError as e:
                    reason = str(e)
                except KeyboardInterrupt:
                    with batched(storage):
                        storage.set_trial_system_attr(trial_id, INTERRUPTED, True)
                        storage.set_trial_state_values(trial_id, TrialState.FAIL)
                    mirror.study.tell(mt, state=TrialState.FAIL)
                    raise
                except Exception as e:  # noqa: BLE001  a step no check foresaw: still only this candidate's
                    if storage_failure(e):
                        raise
                    reason = candidate_failure(e)
                stamper.trial_id = None
                t3 = time.perf_counter()
                _record(storage, trial_id, ev, o.objectives, choices, reason)
                t4 = time.perf_counter()
                if ev is None:
                    mirror.study.tell(mt, state=TrialState.FAIL)
                else:
                    for name, v in ev.violations.items():
                        mt.set_constraint(name, float(v))
                    mirror.study.tell(mt, objective_values(ev, o.objectives))
                ran += 1
                if on_trial is not None:
                    timings = {"sampler": (t1 - t0) + (time.perf_counter() - t4), "claim": t2 - t1,
                               **(ev.timings_s if ev is not None else {}), "record": t4 - t3}
                    on_trial(TrialEvent(number, "FAIL" if ev is None else "COMPLETE",
                                        None if ev is None else ev.score,
                                        bool(ev is not None and ev.feasible), reason, timings))
            if guard.requested:
                raise KeyboardInterrupt
    finally:
        stamper.stop()
    return ran


def candidate_failure(e: BaseException) -> str:
    """A trial's fail reason for an error no step turned into a CandidateError: type and first line."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _claim(storage: BaseStorage, study: optuna.Study, study_id: int, mt: optuna.Trial,
           dists: dict[str, IntDistribution]) -> tuple[int, int, dict[str, int]]:
    """An enqueued trial of the shared study if one waits (its parameters told to the mirror's trial),
    else a new one with the parameters the mirror's sampler chose."""
    waiting = _claim_waiting(storage, study, dists)
    if waiting is not None and waiting[2]:
        trial_id, number, params, _ = waiting
        for name, value in params.items():  # the mirror's trial takes the enqueued values
            mt.storage.set_trial_param(mt._trial_id, name, float(value), dists[name])
        return trial_id, number, params
    params = {name: mt.suggest_int(name, d.low, d.high) for name, d in dists.items()}
    if waiting is not None:  # a fresh trial from a lost race for the last waiting one: give it these
        trial_id, number = waiting[0], waiting[1]
        with batched(storage):
            for name, value in params.items():
                storage.set_trial_param(trial_id, name, float(value), dists[name])
            storage.set_trial_user_attr(trial_id, "kind", "sampled")
            for key, value in identity().items():
                storage.set_trial_system_attr(trial_id, key, value)
        return trial_id, number, params
    trial_id, number = _claim_new(storage, study_id, params, dists, {"kind": "sampled"})
    return trial_id, number, params


def _over_total(study: optuna.Study, number: int, total: int) -> bool:
    """Whether trial `number` came after the study was already full (concurrent claims near the end)."""
    before = [t for t in counted(study.get_trials(deepcopy=False)) if t.number < number]
    return len(before) >= total


def spawned_worker(handle: StudyHandle, rank: int, quota: int | None = None) -> None:
    """The entry point of a worker process (`--workers N`): Ctrl-C ends it cleanly; a failing storage
    ends it with STORAGE_EXIT and no traceback (the parent reports the failure once)."""
    import logging
    import sys

    if handle.optuna_verbosity is not None:  # a fresh interpreter: the face's choice, passed on
        optuna.logging.set_verbosity(handle.optuna_verbosity)
        logging.getLogger("sqlalchemy").addHandler(logging.NullHandler())  # its pool logs a lost server
    try:
        run_worker(handle, rank, quota=quota)
    except KeyboardInterrupt:
        pass
    except Exception as e:  # noqa: BLE001
        if not storage_failure(e):
            raise
        sys.exit(STORAGE_EXIT)


def cache_file(storage: str, study_name: str) -> str:
    """The study's row-cost cache: beside a journal, or under runs/search/<study>/ for an RDB study."""
    from .storage import RUNS_DIR, study_folder

    folder = study_folder(storage) or (RUNS_DIR / study_name)
    return str(Path(folder) / "costs.jsonl")


def table_file(storage: str, study_name: str) -> str:
    """The study's own latency table (--latency auto), beside its row-cost cache."""
    return str(Path(cache_file(storage, study_name)).with_name("latency.lut"))


__all__ = ["Interrupts", "Mirror", "STORAGE_EXIT", "SearchOptions", "StudyHandle", "TrialEvent", "cache_file",
           "candidate_failure", "table_file", "run_worker", "spawned_worker"]
