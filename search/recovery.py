"""Trials that count toward `--trials`, and the recovery of trials whose worker is gone.

Each worker records its host and pid on the trials it claims and stamps its running trial every
STAMP_EVERY_S; a running trial whose worker is gone (same host, dead pid) or silent for STALE_AFTER_S
is failed and its parameters are enqueued again (the retry names it in `retry_of`). The same holds
for a trial interrupted by Ctrl-C. Works the same on the journal and on RDB storages.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Sequence

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

STAMP_EVERY_S = 10.0
STALE_AFTER_S = 60.0
RETRY_OF = "retry_of"  # a waiting copy's user attr naming the failed trial it retries
INTERRUPTED = "zoo:interrupted"
STALE = "zoo:stale"
SURPLUS = "zoo:surplus"  # claimed by a worker after the study was full: failed, never evaluated


def retried_numbers(trials: Sequence[FrozenTrial]) -> set[int]:
    nums = {t.user_attrs.get(RETRY_OF) for t in trials}
    return {n for n in nums if isinstance(n, int)}


def counted(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Trials that count toward `--trials`: done, running, or failed candidates (not retried, stale,
    interrupted or surplus ones)."""
    retried = retried_numbers(trials)
    out = []
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED):
            out.append(t)
        elif t.state == TrialState.FAIL and t.number not in retried and not any(
                k in t.system_attrs for k in (INTERRUPTED, SURPLUS, STALE)):
            out.append(t)
    return out


def finished(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Counted trials that are over (done or failed): the "N of M trials done" of progress and reports."""
    return [t for t in counted(trials) if t.state != TrialState.RUNNING]


def failed(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Failed candidates (counted FAIL trials): the one failure count of progress, table and report.json."""
    return [t for t in counted(trials) if t.state == TrialState.FAIL]


@dataclass(frozen=True)
class Retried:
    """A trial failed because its worker was gone (or Ctrl-C stopped it) and enqueued again."""

    number: int
    reason: str | None  # why its worker was judged gone; None for an interrupted trial
    host: str | None = None
    pid: int | None = None


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


def recover(storage: BaseStorage, study: optuna.Study, *, now: float | None = None) -> list[Retried]:
    """Fail the running trials of dead or silent workers and enqueue every unretried stale or
    interrupted trial's parameters again; returns the trials enqueued."""
    now = time.time() if now is None else now
    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = stale_reason(t, host=host, now=now)
        if reason is None:
            continue
        try:
            storage.set_trial_system_attr(t._trial_id, STALE, reason)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except (RuntimeError, ValueError):  # finished meanwhile by its worker: leave it
            continue
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials) | {t.number for t in trials if t.state == TrialState.WAITING
                                         and isinstance(t.user_attrs.get(RETRY_OF), int)}
    again = []
    for t in trials:
        if t.state == TrialState.FAIL and t.number not in retried and (STALE in t.system_attrs
                                                                        or INTERRUPTED in t.system_attrs):
            study.enqueue_trial(dict(t.params), user_attrs={"kind": t.user_attrs.get("kind", "sampled"),
                                                            RETRY_OF: t.number})
            pid = t.system_attrs.get("zoo:pid")
            again.append(Retried(t.number, t.system_attrs.get(STALE), t.system_attrs.get("zoo:host"),
                                 pid if isinstance(pid, int) else None))
    return again


class Stamper:
    """Stamps this worker's running trial every STAMP_EVERY_S from a daemon thread (long trials only
    need it: a dead pid on the same host is noticed at once). It writes through a storage object of its
    own, so it never holds the worker's storage lock while the worker holds the journal's file lock."""

    def __init__(self, storage: BaseStorage) -> None:
        self.storage = storage
        self.trial_id: int | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(STAMP_EVERY_S):
            tid = self.trial_id
            if tid is None:
                continue
            try:
                self.storage.set_trial_system_attr(tid, "zoo:stamp", time.time())
            except Exception:  # noqa: BLE001  the trial finished meanwhile, or the storage went away:
                continue  # the worker's own next write reports a storage failure

    def stop(self) -> None:
        self._done.set()


def identity() -> dict[str, object]:
    """The system attrs a claimed trial carries: who runs it."""
    return {"zoo:host": socket.gethostname(), "zoo:pid": os.getpid(), "zoo:stamp": time.time()}


__all__ = ["INTERRUPTED", "RETRY_OF", "Retried", "STALE", "STALE_AFTER_S", "STAMP_EVERY_S", "SURPLUS", "Stamper",
           "counted", "failed", "finished", "identity", "pid_alive", "recover", "retried_numbers", "stale_reason"]
