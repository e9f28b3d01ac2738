"""Search faults: a killed worker, a torn or truncated journal, a full disk, Ctrl-C before, during and after
the trials, two commands on one study, unwritable paths. Each asserts the exact trial count and that every
trial completed before the fault survives with its parameters and values.

Trials are made long enough to be hit mid-way by a plugin block whose real forward sleeps (only latency
measurements run it: planning and counting use the meta device).
"""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import optuna
import pytest
import yaml
from optuna.trial import TrialState

import cli
from search import Budget, SearchOptions, SearchSettings, run_search
from search.recovery import INTERRUPTED, RETRY_OF, STALE, counted, finished
from search.run import INITIALISED
from search.storage import open_storage

ROOT = Path(__file__).resolve().parents[2]
CODE = "import sys, cli; sys.exit(cli.main(sys.argv[1:]))"
TINY = {"nc": 2, "family": "yolov5", "depth_multiple": 1.0, "width_multiple": 1.0,
        "anchors": [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119]],
        "search": {"widths": [0.5, 0.75, 1.0]},
        "backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [32, 3, 2]], [-1, 2, "C3", [32]],
                     [-1, 1, "Conv", [48, 3, 2]], [-1, 2, "C3", [48]], [-1, 1, "Conv", [64, 3, 2]],
                     [-1, 1, "SPPF", [64, 5]], [-1, 1, "ZooTestSleep", [64]]],
        "head": [[[4, 7], 1, "Detect", ["nc", "anchors"]]]}
SLEEP_PLUGIN = '''
import os, time
from torch import nn
from zoo.registry import register_module


@register_module("ZooTestSleep", family="yolov5", io="out_arg")
class ZooTestSleep(nn.Module):
    """A 1x1 conv whose real forward sleeps $ZOO_TEST_SLEEP_S: trials long enough to be hit mid-way."""

    def __init__(self, c1, c2):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, 1)

    def forward(self, x):
        if x.device.type != "meta":
            time.sleep(float(os.environ.get("ZOO_TEST_SLEEP_S", "0")))
        return self.conv(x)
'''
FAST = ["--imgsz", "64", "--runs", "2", "--warmup-s", "0", "--top-k", "1", "--no-progress"]


@pytest.fixture(scope="session")
def sleep_plugin(tmp_path_factory) -> Path:
    plugin = tmp_path_factory.mktemp("plugin") / "sleep.py"
    plugin.write_text(SLEEP_PLUGIN)
    return plugin


@pytest.fixture
def setup(tmp_path: Path, sleep_plugin: Path) -> Any:
    """The tiny config with a sleeping block, the plugin, and where its study goes; a plugin loaded by a
    command run in this process is unregistered after the test (the registry stays as the built-ins made it)."""
    from zoo.registry import REGISTRY

    yield make_setup(tmp_path, sleep_plugin)
    key = str(sleep_plugin.resolve())
    if key in REGISTRY.loaded:
        REGISTRY.remove("ZooTestSleep", "yolov5")
        REGISTRY.loaded.discard(key)


def make_setup(tmp_path: Path, plugin: Path | None = None) -> dict[str, Path]:
    """The tiny config, the sleeping plugin (written here unless given) and where a study goes."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    if plugin is None:
        plugin = tmp_path / "sleep.py"
        plugin.write_text(SLEEP_PLUGIN)
    return {"cfg": cfg, "plugin": plugin, "journal": tmp_path / "j.log", "out": tmp_path / "o", "tmp": tmp_path}


def search_args(s: dict[str, Path], name: str, trials: int, *extra: str, storage: str | None = None) -> list[str]:
    return ["--plugin", str(s["plugin"]), "search", str(s["cfg"]), "--budget-ms", "5000", "--trials", str(trials),
            "--storage", storage or str(s["journal"]), "--study-name", name, "-o", str(s["out"]), *FAST, *extra]


class Zoo:
    """`zoo ...` in a subprocess; stderr lines are collected as they come."""

    def __init__(self, args: list[str], *, sleep_s: float = 0.0, preexec: Callable[[], None] | None = None) -> None:
        env = {**os.environ, "ZOO_TEST_SLEEP_S": str(sleep_s)}
        self.p = subprocess.Popen([sys.executable, "-c", CODE, *args], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env, preexec_fn=preexec)
        self.lines: list[tuple[str, bool]] = []  # (line, whether the process was still running)
        self._threads = [threading.Thread(target=self._read, args=(self.p.stderr, True), daemon=True),
                         threading.Thread(target=self._read, args=(self.p.stdout, False), daemon=True)]
        for t in self._threads:
            t.start()

    def _read(self, stream: Any, keep: bool) -> None:
        for line in stream:
            if keep:
                self.lines.append((line.rstrip("\n"), self.p.poll() is None))

    def wait(self, timeout: float = 300) -> int:
        rc = self.p.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=10)
        return rc

    @property
    def err(self) -> str:
        return "\n".join(line for line, _ in self.lines)


def trials_of(storage: str | Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(str(storage))).get_trials()


def completed(trials: list[optuna.trial.FrozenTrial]) -> dict[int, tuple[Any, ...]]:
    """What must survive a fault: each completed trial's parameters, values and recorded results."""
    return {t.number: (t.params, t.values, t.user_attrs.get("score"), t.user_attrs.get("params"))
            for t in trials if t.state == TrialState.COMPLETE}


def assert_exact(trials: list[optuna.trial.FrozenTrial], total: int, before: dict[int, tuple[Any, ...]]) -> None:
    """`total` trials done, nothing left running or waiting, and every trial completed before kept as it was."""
    assert len(counted(trials)) == total and len(finished(trials)) == total
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    after = completed(trials)
    assert {n: after.get(n) for n in before} == before


def wait_until(check: Callable[[], Any], timeout: float = 240, every: float = 0.3) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError("timed out waiting")


def running_of_child(storage: str | Path, name: str, parent: int) -> Any:
    """(A trial being measured by a worker process, not the parent; the completed trials), once one is."""
    try:
        trials = trials_of(storage, name)
    except (KeyError, ValueError):
        return None
    done = completed(trials)
    if not done:
        return None
    t = next((t for t in trials if t.state == TrialState.RUNNING and t.system_attrs.get("zoo:pid") not in
              (None, parent)), None)
    return (t, done) if t is not None else None


def kill_one_of_two_workers(s: dict[str, Path], storage: str, name: str) -> None:
    """kill -9 of a worker process mid-trial: its trial is failed and retried in the same run, the run
    says so, and the study still ends with exactly --trials trials."""
    z = Zoo(search_args(s, name, 6, "--workers", "2", storage=storage), sleep_s=0.3)
    victim, before = wait_until(lambda: running_of_child(storage, name, z.p.pid), every=0.1)
    pid = victim.system_attrs["zoo:pid"]
    os.kill(pid, signal.SIGKILL)  # a trial lasts seconds: it is still the one being measured
    assert z.wait() == 0, z.err
    trials = trials_of(storage, name)
    assert_exact(trials, 6, before)
    killed = trials[victim.number]
    assert killed.system_attrs.get("zoo:pid") == pid
    assert killed.state == TrialState.FAIL and "is gone" in killed.system_attrs[STALE]
    retry = [t for t in trials if t.user_attrs.get(RETRY_OF) == victim.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE and retry[0].params == killed.params
    assert f"warning: worker {pid} died; trial {victim.number} retried" in z.err.splitlines()
    assert "Traceback" not in z.err


@pytest.mark.slow
def test_kill_one_of_two_workers_on_the_journal(setup) -> None:
    kill_one_of_two_workers(setup, str(setup["journal"]), "kill")


def test_torn_final_record_is_set_aside_and_the_study_resumes(setup, capsys) -> None:
    assert cli.main(search_args(setup, "torn", 3)) == 0
    before = completed(trials_of(setup["journal"], "torn"))
    head = setup["journal"].read_bytes()
    with open(setup["journal"], "ab") as f:  # what kill -9 or a full disk leaves mid-write
        f.write(b'{"op_code":6,"worker_id":"x","trial_id":1,"user_attr":{"half')
    assert completed(trials_of(setup["journal"], "torn")) == before  # still readable as it is
    capsys.readouterr()
    assert cli.main(["export", "--storage", str(setup["journal"]), "--study-name", "torn", "-o",
                     str(setup["tmp"] / "e.yaml")]) == 0
    assert cli.main(search_args(setup, "torn", 5)) == 0
    err = capsys.readouterr().err
    side = list(setup["tmp"].glob("j.log.torn-*"))
    assert len(side) == 1 and side[0].read_bytes().startswith(b'{"op_code":6,"worker_id":"x"')
    assert f"a torn final record ({len(side[0].read_bytes())} bytes" in err
    assert_exact(trials_of(setup["journal"], "torn"), 5, before)
    assert setup["journal"].read_bytes().startswith(head)  # every record before it, byte for byte


def test_a_torn_record_an_older_writer_appended_onto_is_repaired(setup, capsys) -> None:
    """Stock Optuna appends onto a torn tail, and its reader then refuses the whole journal."""
    from optuna.storages.journal import JournalFileBackend

    assert cli.main(search_args(setup, "glued", 3)) == 0
    before = completed(trials_of(setup["journal"], "glued"))
    with open(setup["journal"], "ab") as f:  # a torn record, then two records as a stock writer appends them
        f.write(b'{"op_code":6,"worker_id":"x","trial_id":1,"user_attr":{"half')
        for key, value in (("after", 1), ("later", 2)):
            f.write(json.dumps({"op_code": 2, "worker_id": "w", "study_id": 0, "user_attr": {key: value}},
                               separators=(",", ":")).encode() + b"\n")
    with pytest.raises(ValueError):  # the journal as stock Optuna leaves it: unreadable
        optuna.load_study(study_name="glued", storage=optuna.storages.JournalStorage(
            JournalFileBackend(str(setup["journal"]))))
    study = optuna.load_study(study_name="glued", storage=open_storage(str(setup["journal"])))
    assert study.user_attrs["after"] == 1 and study.user_attrs["later"] == 2
    assert completed(study.get_trials()) == before
    assert len(list(setup["tmp"].glob("j.log.torn-*"))) == 1
    assert cli.main(search_args(setup, "glued", 5)) == 0
    assert_exact(trials_of(setup["journal"], "glued"), 5, before)


def test_an_unreadable_record_mid_file_moves_it_and_the_rest_aside(setup) -> None:
    assert cli.main(search_args(setup, "mid", 3)) == 0
    lines = setup["journal"].read_bytes().splitlines(keepends=True)
    cut = len(lines) - 4
    kept = b"".join(lines[:cut])
    setup["journal"].write_bytes(kept + b"garbage\n" + b"".join(lines[cut:]))
    with pytest.warns(RuntimeWarning, match=rf"record {cut + 1} is unreadable; it and the 4 records after it"):
        st = open_storage(str(setup["journal"]))
    assert setup["journal"].read_bytes() == kept
    side = list(setup["tmp"].glob("j.log.unreadable-*"))
    assert len(side) == 1 and side[0].read_bytes() == b"garbage\n" + b"".join(lines[cut:])
    optuna.load_study(study_name="mid", storage=st).get_trials()  # readable


def test_truncated_journal_keeps_complete_trials_and_retries_the_cut_ones(setup, capsys) -> None:
    z = Zoo(search_args(setup, "cut", 4))
    assert z.wait() == 0, z.err
    data = setup["journal"].read_bytes()
    cut = data.rfind(b'"state":1', 0, len(data) // 2 + len(data) // 4)  # inside a record that finishes a trial
    setup["journal"].write_bytes(data[:cut])
    truncated = trials_of(setup["journal"], "cut")  # what Optuna's replay makes of the cut file
    before = completed(truncated)
    cut_running = [t.number for t in truncated if t.state == TrialState.RUNNING]
    assert before and cut_running  # the cut lost a trial's result: it is running in the replay
    capsys.readouterr()
    assert cli.main(search_args(setup, "cut", 4)) == 0
    err = capsys.readouterr().err
    assert "a torn final record" in err  # the loss is reported
    assert f"died; trial {', '.join(map(str, cut_running))} retried" in err
    trials = trials_of(setup["journal"], "cut")
    assert_exact(trials, 4, before)
    assert all(any(r.user_attrs.get(RETRY_OF) == n for r in trials) for n in cut_running)


@pytest.mark.slow
def test_full_disk_fails_with_one_line_and_the_rerun_resumes(setup) -> None:
    assert cli.main(search_args(setup, "full", 2)) == 0
    before = completed(trials_of(setup["journal"], "full"))
    limit = setup["journal"].stat().st_size + 6000  # room for about one more trial's records

    def small_files() -> None:  # a file-size limit is a full disk for every write past it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    z = Zoo(search_args(setup, "full", 12), preexec=small_files)
    assert z.wait() == 1
    err = [line for line, _ in z.lines]
    assert err[0] == "resuming study full: 2 of 12 trials done" and len(err) == 3, err
    assert err[1].startswith("objective feature_entropy (maximize); depth budget: ")
    assert err[2].startswith(f"error: {setup['journal']}: the study storage failed (OSError: File too large)")
    partial = trials_of(setup["journal"], "full")  # readable as the failure left it
    assert completed(partial).items() >= before.items()
    mid = completed(partial)
    z = Zoo(search_args(setup, "full", 12))
    assert z.wait() == 0, z.err
    assert_exact(trials_of(setup["journal"], "full"), 12, mid)


def test_ctrl_c_during_initialise_drops_nothing(setup, monkeypatch) -> None:
    """Ctrl-C at each step of a new study's start: the resume enqueues exactly what an uninterrupted
    start does (the base and the same uniform scalings), and the study ends with --trials trials."""
    from zoo.plugins import load_plugin

    load_plugin(setup["plugin"])
    opts = dict(budget=Budget(params_m=10.0), settings=SearchSettings(widths=[0.5, 0.75, 1.0]), trials=6,
                top_k=1, remeasure_factor=1, max_uniform=3)
    ref = run_search(TINY, SearchOptions(storage=str(setup["tmp"] / "ref.log"), study_name="ref",
                                         out=str(setup["tmp"] / "ro"), **opts))
    queued = [(t.user_attrs["kind"], t.params) for t in trials_of(setup["tmp"] / "ref.log", "ref")
              if t.user_attrs.get("kind") != "sampled"]
    assert ref.n_trials == 6 and len(queued) >= 3 and queued[0][0] == "base"  # the base and the uniform scalings
    # before the record, after the base was enqueued, before the last uniform scaling was enqueued
    for step, (target, skip) in enumerate((("set_user_attr", 0), ("enqueue_trial", 1),
                                           ("enqueue_trial", len(queued) - 1))):
        calls = {"n": 0}
        real = getattr(optuna.Study, target)

        def interrupted(self, *a, _real=real, _skip=skip, **kw):
            if calls["n"] == _skip:
                calls["n"] += 1
                raise KeyboardInterrupt
            calls["n"] += 1
            return _real(self, *a, **kw)

        journal = setup["tmp"] / f"s{step}.log"
        o = SearchOptions(storage=str(journal), study_name="s", out=str(setup["tmp"] / f"o{step}"), **opts)
        monkeypatch.setattr(optuna.Study, target, interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_search(TINY, o)
        monkeypatch.setattr(optuna.Study, target, real)
        study = optuna.load_study(study_name="s", storage=open_storage(str(journal)))
        assert not study.user_attrs.get(INITIALISED)
        r = run_search(TINY, o)
        trials = trials_of(journal, "s")
        assert r.n_trials == 6 and len(counted(trials)) == 6
        assert [(t.user_attrs["kind"], t.params) for t in trials if t.user_attrs.get("kind") != "sampled"] == queued


@pytest.mark.slow
def test_ctrl_c_during_a_trial_then_again_during_the_export(setup) -> None:
    """The first Ctrl-C stops the trials at once and says what happens next; the second stops the
    re-measurement; the interrupted trial is retried by the same command, and nothing else is lost."""
    z = Zoo(search_args(setup, "intr", 6), sleep_s=0.2)
    wait_until(lambda: len(completed(trials_of(setup["journal"], "intr")) if setup["journal"].exists() else {}) >= 2)
    z.p.send_signal(signal.SIGINT)
    wait_until(lambda: "finishing: re-measuring the top 1; Ctrl-C again to stop now" in z.err, timeout=60, every=0.05)
    z.p.send_signal(signal.SIGINT)
    assert z.wait(timeout=60) == 130
    assert "error: interrupted" in z.err and "Traceback" not in z.err
    trials = trials_of(setup["journal"], "intr")
    before = completed(trials)
    stopped = [t for t in trials if INTERRUPTED in t.system_attrs]
    assert len(stopped) == 1 and not any(t.state == TrialState.RUNNING for t in trials)
    z = Zoo(search_args(setup, "intr", 6))
    assert z.wait() == 0, z.err
    assert f"resuming study intr: {len(before)} of 6 trials done" in z.err
    trials = trials_of(setup["journal"], "intr")
    assert_exact(trials, 6, before)
    assert [t.params for t in trials if t.user_attrs.get(RETRY_OF) == stopped[0].number] == [stopped[0].params]


@pytest.mark.slow
def test_ctrl_c_during_the_final_remeasurement(setup) -> None:
    z = Zoo(search_args(setup, "exp", 3, "--top-k", "3"), sleep_s=0.2)
    wait_until(lambda: setup["journal"].exists() and len(finished(trials_of(setup["journal"], "exp"))) == 3)
    time.sleep(0.5)  # re-measuring the top 3 with 3x the runs
    z.p.send_signal(signal.SIGINT)
    assert z.wait(timeout=60) == 130
    before = completed(trials_of(setup["journal"], "exp"))
    assert len(before) == 3
    z = Zoo(search_args(setup, "exp", 3))
    assert z.wait() == 0, z.err
    assert "resuming study exp: 3 of 3 trials done" in z.err
    assert_exact(trials_of(setup["journal"], "exp"), 3, before)
    assert json.loads((setup["out"] / "report.json").read_text())["n_trials"] == 3


def two_commands_on_one_study(s: dict[str, Path], storage: str, name: str) -> None:
    """Two `zoo search` commands at once: the claims are exact, so they end with --trials trials."""
    runs = [Zoo(search_args(s, name, 8, storage=storage), sleep_s=0.05) for _ in range(2)]
    assert [z.wait() for z in runs] == [0, 0], [z.err for z in runs]
    trials = trials_of(storage, name)
    assert sorted(t.number for t in trials) == list(range(8))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.system_attrs["zoo:pid"] for t in trials}) == 2  # both worked


@pytest.mark.slow
def test_two_commands_on_one_journal_study(setup) -> None:
    two_commands_on_one_study(setup, str(setup["journal"]), "two")


@pytest.mark.parametrize("flag", ["-o", "--storage"])
def test_unwritable_paths_are_refused_before_any_trial(setup, capsys, flag) -> None:
    blocker = setup["tmp"] / "a-file"
    blocker.write_text("")
    args = search_args(setup, "paths", 2)
    i = args.index(flag)
    args[i + 1] = str(blocker / "sub" / ("j.log" if flag == "--storage" else ""))
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    shown = "--out" if flag == "-o" else "--storage"
    assert len(err) == 1 and err[0].startswith(f"error: {shown} {blocker}/sub") and "is not writable: Not a " \
                                                                                      "directory" in err[0]
    assert not setup["journal"].exists() or flag == "--storage"


def _raising(exc: BaseException, real: Callable[..., Any] | None = None) -> Callable[..., Any]:
    def boom(*args: Any, **kw: Any) -> Any:
        if real is not None and kw.get("device") == "meta":  # validation's meta builds still work
            return real(*args, **kw)
        raise exc
    return boom


@pytest.mark.parametrize(("step", "target", "exc", "reason"), [
    ("build", "zoo.builder.build_from_plan", MemoryError("boom-build"), "cannot time the candidate: MemoryError: boom-build"),
    ("fold", "zoo.deploy.deploy", AssertionError("boom-fold"), "cannot time the candidate: AssertionError: boom-fold"),
    ("count", "search.evaluate.candidate_costs", ZeroDivisionError("boom-count"), "ZeroDivisionError: boom-count"),
    ("latency", "search.latency.model_timer", IndexError("boom-latency"),
     "cannot time the candidate: IndexError: boom-latency"),
    ("lookup", "search.worker.evaluate", LookupError("boom-lut"), "LookupError: boom-lut"),  # any other step (a LUT)
])
def test_a_failing_step_is_a_failed_trial_with_its_reason(tmp_path: Path, monkeypatch, step, target, exc,
                                                          reason) -> None:
    """Whatever step of a candidate raises whatever: the trial fails with the reason, the study goes on to
    exactly --trials trials, the export still happens."""
    import importlib

    from search import Measure

    module, name = target.rsplit(".", 1)
    real = getattr(importlib.import_module(module), name)
    monkeypatch.setattr(importlib.import_module(module), name, _raising(exc, real if step == "build" else None))
    cfg = {**TINY, "backbone": TINY["backbone"][:-1], "head": [[[4, 6], 1, "Detect", ["nc", "anchors"]]]}
    opts = SearchOptions(budget=Budget(latency_ms=5000.0), settings=SearchSettings(widths=[0.5, 1.0]), trials=3,
                         measure=Measure(imgsz=64, runs=2, warmup_runs=1, warmup_s=0.0, deploy=step == "fold"),
                         storage=str(tmp_path / "j.log"), study_name="s", out=str(tmp_path / "o"), top_k=1,
                         remeasure_factor=1, max_uniform=1)
    r = run_search(cfg, opts)
    trials = trials_of(tmp_path / "j.log", "s")
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(counted(trials)) == 3 and r.n_failed == len(failed) > 0 and r.best is None
    assert [t.user_attrs["fail_reason"] for t in failed] == [reason] * len(failed)
    for t in trials:  # the others never reached the step: over a cheap budget, so never timed
        assert t.state == TrialState.FAIL or (t.user_attrs["latency_ms"] is None and not t.user_attrs["feasible"])
    assert (tmp_path / "o" / "report.json").exists()
