"""Where a study lives: the embedded journal file by default, or any Optuna RDB URL (sqlite, postgresql).

The journal backend is Optuna's JournalFileBackend with two additions: writes can be grouped so one
finished trial costs one append and one fsync instead of one per attribute (`batch()`), and a torn
final record (what kill -9 or a full disk mid-write leaves) is set aside into a side file before the
next append, so a new record never lands on a half-written one and the study stays readable.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.storages import BaseStorage
from optuna.storages.journal import JournalFileBackend

RUNS_DIR = Path("runs/search")
JOURNAL_NAME = "journal.log"


class BatchingJournalBackend(JournalFileBackend):
    """A journal file whose appends may be grouped, and whose torn tail is set aside, never appended to."""

    def __init__(self, file_path: str) -> None:
        super().__init__(file_path)
        self._local = threading.local()  # a batch belongs to the thread that opened it
        self.set_aside: list[str] = []  # side files holding torn tails this process moved away

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Appends inside are written together, once, when the block ends (also on an error)."""
        if getattr(self._local, "pending", None) is not None:
            yield
            return
        self._local.pending = []
        try:
            yield
        finally:
            logs, self._local.pending = self._local.pending, None
            if logs:
                self._write(logs)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        pending = getattr(self._local, "pending", None)
        if pending is not None:
            pending.extend(logs)
            return
        self._write(logs)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the journal's file lock for a read-check-write (a claim that must not overshoot the
        study's total): other processes' writes wait; this thread's own writes go through."""
        if getattr(self._local, "held", False):
            yield
            return
        self._lock.acquire()
        self._local.held = True
        try:
            yield
        finally:
            self._local.held = False
            self._lock.release()

    def _write(self, logs: list[dict[str, Any]]) -> None:
        """Under the journal's file lock: set a torn tail aside, then one write and one fsync."""
        text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
        with self.exclusive():
            self._repair_tail()
            with open(self._file_path, "ab") as f:
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())

    def _repair_tail(self) -> None:
        path = self._file_path
        size = os.path.getsize(path)
        if size == 0:
            return
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            data = f.read()
        cut = data.rfind(b"\n") + 1
        side = f"{path}.torn-{int(time.time())}-{os.getpid()}"
        with open(side, "wb") as f:
            f.write(data[cut:])
        with open(path, "r+b") as f:
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        self.set_aside.append(side)
        warnings.warn(f"{path}: a torn final record ({size - cut} bytes, from an interrupted write) was moved "
                      f"to {side}; every complete record is kept", RuntimeWarning, stacklevel=2)


def is_url(storage: str) -> bool:
    return "://" in storage


def resolve_storage(storage: str | None, study_name: str, *, folder: str | Path | None = None) -> str:
    """An RDB URL as given; else a journal file path (a folder means its journal.log). With no storage,
    the journal lives in `folder` (the output folder) or runs/search/<study>/."""
    if storage is None:
        return str(Path(folder) / JOURNAL_NAME) if folder is not None else str(RUNS_DIR / study_name / JOURNAL_NAME)
    if is_url(storage):
        return storage
    p = Path(storage)
    return str(p / JOURNAL_NAME) if p.is_dir() or not p.suffix else str(p)


def open_storage(storage: str) -> BaseStorage:
    """The Optuna storage for a resolved location (creating a journal's folder and file if needed)."""
    if is_url(storage):
        return optuna.storages.RDBStorage(storage)
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(BatchingJournalBackend(storage))


@contextlib.contextmanager
def batched(storage: BaseStorage) -> Iterator[None]:
    """Group a trial's writes into one append on a journal; a no-op on other storages."""
    backend = getattr(storage, "_backend", None)
    if isinstance(backend, BatchingJournalBackend):
        with backend.batch():
            yield
    else:
        yield


@contextlib.contextmanager
def exclusive(storage: BaseStorage) -> Iterator[None]:
    """A read-check-write no other process interleaves with, on a journal; a no-op on RDB storages
    (there two processes may both claim the last trial: the later one is failed as surplus)."""
    backend = getattr(storage, "_backend", None)
    if isinstance(backend, BatchingJournalBackend):
        with backend.exclusive():
            yield
    else:
        yield


def study_folder(storage: str) -> Path | None:
    """The folder of a journal study (where its side files live); None for an RDB URL."""
    return None if is_url(storage) else Path(storage).parent


__all__ = ["BatchingJournalBackend", "JOURNAL_NAME", "RUNS_DIR", "batched", "exclusive", "is_url", "open_storage",
           "resolve_storage", "study_folder"]
