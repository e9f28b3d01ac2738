"""`zoo search` / `run_search`: resume, failures, stale workers, Ctrl-C, workers, infeasible, export."""
from __future__ import annotations

import json
import os
import statistics
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState
from torch import nn

import cli
import zoo
from search import Budget, Measure, SearchOptions, SearchSettings, run_search
from search.recovery import counted
from search.storage import open_storage
from zoo.registry import REGISTRY, register_module

ROOT = Path(__file__).resolve().parents[2]
import importlib.util as _ilu
from pathlib import Path as _P
_spec = _ilu.spec_from_file_location("zoo_tests_tiny", _P(__file__).resolve().parents[1] / "tiny.py")
tiny = _ilu.module_from_spec(_spec)
_spec.loader.exec_module(tiny)
TINY = tiny.SEARCH
FAST = Measure(imgsz=64, runs=2, warmup_runs=1, warmup_s=0.0)
CLI_FAST = tiny.cli_fast()


def _opts(tmp: Path, **kw) -> SearchOptions:
    base = dict(budget=Budget(latency_ms=1000.0), measure=FAST, settings=SearchSettings(widths=[0.5, 0.75, 1.0]),
                trials=3, storage=str(tmp / "journal.log"), study_name="t", out=str(tmp / "out"), top_k=1,
                remeasure_factor=1, max_uniform=1)
    base.update(kw)
    return SearchOptions(**base)


def _trials(tmp: Path, name: str = "t", storage: str | None = None) -> list[optuna.trial.FrozenTrial]:
    st = open_storage(storage or str(tmp / "journal.log"))
    return optuna.load_study(study_name=name, storage=st).get_trials()


def _zoo(*args: str, cwd: Path = ROOT) -> subprocess.Popen:
    """`zoo ARGS` in a process of its own, in `cwd` (a study on a URL storage keeps its folder under
    runs/search of the working directory: a test gives its tmp_path, not the checkout)."""
    code = "import sys, cli; sys.exit(cli.main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_resume_adds_only_missing_and_exports(tmp_path: Path) -> None:
    r1 = run_search(TINY, _opts(tmp_path, trials=3))
    first = {t.number: t.params for t in _trials(tmp_path)}
    assert r1.n_trials == 3 and r1.best is not None and r1.base is not None
    r2 = run_search(TINY, _opts(tmp_path, trials=5))
    trials = _trials(tmp_path)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4] and r2.n_trials == 5
    assert {t.number: t.params for t in trials if t.number < 3} == first  # old trials untouched
    assert trials[0].user_attrs["kind"] == "base" and trials[1].user_attrs["kind"].startswith("uniform d")
    for key in ("params", "gflops", "latency_ms", "score", "choices", "layers"):
        assert key in trials[0].user_attrs
    assert all(t.user_attrs["gflops"] > 0 for t in trials)  # recorded per trial, not only when budgeted
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["n_trials"] == 5 and report["budget_ms"] == 1000.0
    for who in ("base", "best"):
        assert set(report[who]) >= {"score", "latency_ms", "params", "gflops"}
        lat = report[who]["latency_ms"]  # timed in 3 interleaved rounds: the figure is their median
        assert set(lat) == {"median", "p90", "cv", "rounds"} and len(lat["rounds"]) == 3
        assert lat["median"] == pytest.approx(statistics.median(lat["rounds"]), abs=1e-3)
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"best.yaml", "report.json", "trials.csv", "pareto.png"}
    best = zoo.build_model(str(tmp_path / "out" / "best.yaml"))
    assert sum(p.numel() for p in best.parameters()) == report["best"]["params"]
    # `zoo export` round trip of any trial: the file rebuilds to the trial's params
    out = tmp_path / "t3.yaml"
    assert cli.main(["export", "--storage", str(tmp_path / "journal.log"), "--study-name", "t", "--trial", "3",
                     "-o", str(out)]) == 0
    assert sum(p.numel() for p in zoo.build_model(str(out)).parameters()) == trials[3].user_attrs["params"]
    assert cli.main(["export", "--storage", str(tmp_path), "--study-name", "t", "--trial", "99",
                     "-o", str(out)]) == 1


class Picky(nn.Module):
    """A conv that refuses 16 output channels (a candidate that cannot be built)."""

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 1) -> None:
        super().__init__()
        if c2 == 16:
            raise ValueError("16 channels are not supported")
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.fixture
def picky_module():
    """Register Picky for one test only, so the global registry stays as the built-ins made it."""
    register_module("ZooTestPicky", family="yolov5", io="out_arg")(Picky)
    yield
    REGISTRY.remove("ZooTestPicky", "yolov5")


def test_failing_candidate_is_a_failed_trial(tmp_path: Path, picky_module) -> None:
    cfg = {**TINY, "backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "ZooTestPicky", [32, 3, 2]],
                                *TINY["backbone"][2:]]}
    settings = SearchSettings(widths={"backbone/4": [0.5, 1.0]}, depths={})
    r = run_search(cfg, _opts(tmp_path, trials=5, settings=settings, seed=3))
    trials = _trials(tmp_path)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.params["w:backbone/4"] == 0 for t in failed)  # width 0.5: 16 channels
    assert all("16 channels are not supported" in t.user_attrs["fail_reason"] for t in failed)
    assert len(counted(trials)) == 5 and r.best is not None and r.n_failed == len(failed)


def test_stale_trial_of_dead_worker_is_failed_and_retried(tmp_path: Path) -> None:
    run_search(TINY, _opts(tmp_path, trials=2))
    st = open_storage(str(tmp_path / "journal.log"))
    study = optuna.load_study(study_name="t", storage=st)
    dead = subprocess.Popen(["true"])
    dead.wait()
    ghost = study.ask()  # a worker that asked, stamped and was killed
    ghost.suggest_int("w:backbone/2", 0, 2)
    for k, v in (("zoo:host", __import__("socket").gethostname()), ("zoo:pid", dead.pid), ("zoo:stamp", time.time())):
        st.set_trial_system_attr(ghost._trial_id, k, v)
    run_search(TINY, _opts(tmp_path, trials=3))
    trials = _trials(tmp_path)
    g = trials[ghost.number]
    assert g.state == TrialState.FAIL and "is gone" in g.system_attrs["zoo:stale"]
    retry = [t for t in trials if t.user_attrs.get("retry_of") == ghost.number]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].params["w:backbone/2"] == g.params["w:backbone/2"]
    assert len(counted(trials)) == 3


def test_all_infeasible_exits_1_without_measuring(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    rc = cli.main(["search", str(cfg), "--budget-params", "0.001", "--budget-ms", "1000", "--trials", "3",
                   "--storage", str(tmp_path / "j.log"), "--study-name", "inf", "-o", str(tmp_path / "o"), *CLI_FAST])
    assert rc == 1
    assert "no candidate meets the budget 1000 ms, 0.001 M params" in capsys.readouterr().err
    trials = _trials(tmp_path, "inf", str(tmp_path / "j.log"))
    assert len(trials) == 3 and all(t.user_attrs["latency_ms"] is None for t in trials)
    assert all(t.system_attrs["constraints:params"] > 0 for t in trials)  # every one over the params budget
    assert not (tmp_path / "o" / "best.yaml").exists() and (tmp_path / "o" / "report.json").exists()


def test_two_workers_share_one_study(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    url = f"sqlite:///{tmp_path / 's.db'}"
    p = _zoo("search", str(cfg), "--budget-ms", "1000", "--trials", "6", "--workers", "2", "--storage", url,
             "--study-name", "w2", "-o", str(tmp_path / "o"), *CLI_FAST, cwd=tmp_path)
    out, err = p.communicate(timeout=240)
    assert p.returncode == 0, err
    trials = _trials(tmp_path, "w2", url)
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.system_attrs["zoo:pid"] for t in trials}) == 2  # both processes worked


def test_ctrl_c_exports_best_so_far_and_resumes(tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    args = ["search", str(cfg), "--budget-ms", "1000", "--trials", "300", "--storage", str(tmp_path / "j.log"),
            "--study-name", "c", "-o", str(tmp_path / "o"), *CLI_FAST]
    p = _zoo(*args)
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.5)
        if (tmp_path / "j.log").exists():
            done = [t for t in _trials(tmp_path, "c", str(tmp_path / "j.log")) if t.state == TrialState.COMPLETE]
            if len(done) >= 2:
                break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "interrupted" in err
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["interrupted"] is True and report["best"] is not None
    assert (tmp_path / "o" / "best.yaml").exists()
    trials = _trials(tmp_path, "c", str(tmp_path / "j.log"))
    assert not any(t.state == TrialState.RUNNING for t in trials)
    stopped = [t for t in trials if "zoo:interrupted" in t.system_attrs]
    for t in stopped:  # the interrupted candidate waits in the queue for the next run
        assert any(w.user_attrs.get("retry_of") == t.number and w.state == TrialState.WAITING for w in trials)
