"""Where a study lives: the embedded journal file by default, or any Optuna RDB URL (sqlite, postgresql).

The journal backend is Optuna's JournalFileBackend with these additions:
- writes can be grouped so one finished trial costs one append and one fsync instead of one per
  attribute (`batch()`);
- a torn final record (what kill -9 or a full disk mid-write leaves; Optuna's reader skips it, but an
  append after it makes the file unreadable) is set aside into a side file before the next append;
- on opening, a record Optuna's reader would stop at (a torn record an older writer appended onto) is
  repaired: the record written after the torn part is kept; anything unreadable and everything after
  it is moved to a side file with a warning, so the study opens with every record before it;
- the inter-process lock is a kernel file lock (flock), which dies with its holder: a worker killed
  with kill -9 while writing leaves no stale lock for the others to wait out.
`exclusive()` holds that lock for a read-check-write (a claim that must not overshoot the study's
total); on PostgreSQL it is an advisory lock and on SQLite a lock file beside the database, so claims
are exact there too.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
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

from zoo.errors import ConfigError, OptionError

RUNS_DIR = Path("runs/search")
JOURNAL_NAME = "journal.log"
LOCK_SUFFIX = ".flock"
_RECORD_START = b'{"op_code"'  # how every record Optuna's journal writes begins


class StorageError(ConfigError):
    """The study's storage failed while a command ran (disk full, database gone): one line; the study
    stays as its last complete write left it, so the same command resumes."""


class FlockLock:
    """An exclusive flock on `<journal>.flock`, one open file per acquisition (so threads exclude each
    other too); the kernel releases it when the holder's process ends, however it ends. It has the
    acquire/release interface of Optuna's journal file locks."""

    def __init__(self, journal: str) -> None:
        self.path = journal + LOCK_SUFFIX
        self._local = threading.local()

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._local.fd = fd
        return True

    def release(self) -> None:
        fd = getattr(self._local, "fd", None)
        if fd is None:
            raise RuntimeError("the journal lock is not held")
        self._local.fd = None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class BatchingJournalBackend(JournalFileBackend):
    """A journal file whose appends may be grouped, and whose torn tail is set aside, never appended to."""

    def __init__(self, file_path: str) -> None:
        super().__init__(file_path, lock_obj=FlockLock(file_path))
        self._local = threading.local()  # a batch belongs to the thread that opened it
        self.set_aside: list[str] = []  # side files holding records this process moved away
        with self.exclusive():
            self._repair_body()

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

    def _repair_body(self) -> None:
        """Make every complete line a record Optuna's reader accepts (see the module docstring)."""
        with open(self._file_path, "rb") as f:
            data = f.read()
        if not data:
            return
        lines = data.splitlines(keepends=True)
        kept: list[bytes] = []
        prefixes: list[bytes] = []
        for i, line in enumerate(lines):
            if not line.endswith(b"\n"):  # the torn tail: set aside before the next append
                kept.append(line)
                break
            if _readable(line):
                kept.append(line)
                continue
            start = line.rfind(_RECORD_START)
            if start > 0 and _readable(line[start:]):  # a torn record with a whole one appended onto it
                prefixes.append(line[:start])
                kept.append(line[start:])
                continue
            rest = b"".join(lines[i:])  # unreadable: it and everything after it go to a side file
            side = self._side_file("unreadable", rest)
            self._replace(b"".join(kept))
            warnings.warn(f"{self._file_path}: record {i + 1} is unreadable; it and the {len(lines) - i - 1} "
                          f"records after it were moved to {side}; the {i} records before it are kept",
                          RuntimeWarning, stacklevel=3)
            return
        if prefixes:
            side = self._side_file("torn", b"\n".join(prefixes) + b"\n")
            self._replace(b"".join(kept))
            warnings.warn(f"{self._file_path}: {len(prefixes)} torn record(s) an older writer appended onto were "
                          f"moved to {side}; every complete record is kept", RuntimeWarning, stacklevel=3)

    def _side_file(self, kind: str, data: bytes) -> str:
        side = f"{self._file_path}.{kind}-{int(time.time())}-{os.getpid()}"
        with open(side, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.set_aside.append(side)
        return side

    def _replace(self, data: bytes) -> None:
        """The journal's new content, written beside it and renamed over it (never half-replaced)."""
        tmp = f"{self._file_path}.repair-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._file_path)
        self._log_number_offset = {0: 0}

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


def _readable(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


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


def open_storage(storage: str, *, create: bool = True) -> BaseStorage:
    """The Optuna storage for a resolved location (creating a journal's folder and file, or an RDB's
    tables, if needed). With `create=False` nothing is created: a missing journal or SQLite file is a
    FileNotFoundError. A storage that cannot be reached is a StorageError."""
    if is_url(storage):
        if not create:
            db = sqlite_file(storage)
            if db is not None and not Path(db).is_file():
                raise FileNotFoundError(db)
        with storage_errors(storage):
            return optuna.storages.RDBStorage(storage, skip_table_creation=not create)
    if not create and not Path(storage).is_file():
        raise FileNotFoundError(storage)
    with storage_errors(storage):
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(BatchingJournalBackend(storage))


def sqlite_file(url: str) -> str | None:
    """The database file of a sqlite:/// URL (None for other URLs and in-memory databases)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    path = path.split("?", 1)[0]
    return path if path and path != ":memory:" else None


def check_writable(path: str | Path, *, param: str, folder: bool = False) -> None:
    """Refuse (OptionError naming `param`) a journal file or an output folder this process cannot write,
    before any work: the folders are created, a probe file is written and removed."""
    p = Path(path)
    target = p if folder else p.parent
    try:
        if folder and p.exists() and not p.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a folder")
        if not folder and p.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder")
        target.mkdir(parents=True, exist_ok=True)
        if not folder and p.exists():
            with open(p, "ab"):
                pass
        else:
            probe = target / f".zoo-write-check-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
    except OSError as e:
        raise OptionError(None, param, str(path), f"is not writable: {e.strerror or e}") from None


def check_storage(storage: str, *, param: str = "storage") -> None:
    """A journal's file, or a SQLite database's folder, must be writable; a server URL is checked by
    connecting (open_storage)."""
    if not is_url(storage):
        check_writable(storage, param=param)
        return
    db = sqlite_file(storage)
    if db is not None:
        check_writable(db, param=param)


def storage_failure(e: BaseException) -> bool:
    """Whether an exception is the storage (or the disk) failing, not a candidate or a bug."""
    if isinstance(e, OSError):
        return True
    if isinstance(e, optuna.exceptions.StorageInternalError):
        return True
    try:
        import sqlalchemy.exc
    except ImportError:  # pragma: no cover - optuna depends on sqlalchemy
        return False
    return isinstance(e, sqlalchemy.exc.SQLAlchemyError)


def failure_text(e: BaseException) -> str:
    """One line for a storage failure: the database's own first line, or the OS error."""
    cause = e
    while cause.__cause__ is not None and not isinstance(cause, OSError):
        cause = cause.__cause__
    orig = getattr(cause, "orig", None)  # sqlalchemy's DBAPI error: the driver's message
    if orig is not None:
        cause = orig
    if isinstance(cause, OSError) and cause.strerror:
        text = cause.strerror + (f": {cause.filename}" if cause.filename else "")
    else:
        text = next((ln.strip() for ln in str(cause).splitlines() if ln.strip()), type(cause).__name__)
    return f"{type(cause).__name__}: {text}"


@contextlib.contextmanager
def storage_errors(storage: str, *, what: str = "the study storage") -> Iterator[None]:
    """Turn a storage failure inside the block into one StorageError naming the storage."""
    try:
        yield
    except StorageError:
        raise
    except Exception as e:
        if not storage_failure(e):
            raise
        raise StorageError(storage, f"{what} failed ({failure_text(e)}); the study keeps every trial "
                                    f"recorded before; run the same command again to resume") from None


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
def exclusive(storage: BaseStorage, key: str = "") -> Iterator[None]:
    """A read-check-write (for study `key`) no other process interleaves with: the journal's file lock,
    a PostgreSQL advisory lock, or a lock file beside a SQLite database. Other RDB dialects get none (two
    processes may both claim the last trial there: the later one is failed as surplus)."""
    backend = getattr(storage, "_backend", None)
    if isinstance(backend, BatchingJournalBackend):
        with backend.exclusive():
            yield
        return
    engine = getattr(storage, "engine", None)
    dialect = getattr(getattr(engine, "dialect", None), "name", None)
    if dialect == "postgresql":
        from sqlalchemy import text

        k = int.from_bytes(hashlib.sha1(f"zoo:{key}".encode()).digest()[:8], "big", signed=True)
        with engine.connect() as conn:  # a session lock: released with the connection if the process dies
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": k})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": k})
        return
    db = sqlite_file(str(engine.url)) if dialect == "sqlite" else None
    if db is None:
        yield
        return
    lock = FlockLock(db)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def exact_claims(storage: BaseStorage) -> bool:
    """Whether `exclusive` really excludes other processes on this storage."""
    if isinstance(getattr(storage, "_backend", None), BatchingJournalBackend):
        return True
    engine = getattr(storage, "engine", None)
    dialect = getattr(getattr(engine, "dialect", None), "name", None)
    return dialect == "postgresql" or (dialect == "sqlite" and sqlite_file(str(engine.url)) is not None)


def study_folder(storage: str) -> Path | None:
    """The folder of a journal study (where its side files live); None for an RDB URL."""
    return None if is_url(storage) else Path(storage).parent


__all__ = ["BatchingJournalBackend", "FlockLock", "JOURNAL_NAME", "RUNS_DIR", "StorageError", "batched",
           "check_storage", "check_writable", "exact_claims", "exclusive", "failure_text", "is_url", "open_storage",
           "resolve_storage", "sqlite_file", "storage_errors", "storage_failure", "study_folder"]
