"""optuna-dashboard as a real client of studies made by `zoo search`: its CLI serves a journal study and a
PostgreSQL study on loopback, and its JSON API gives back every trial with its parameters and user attrs."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

import cli
from search.storage import open_storage

pytest.importorskip("optuna_dashboard", reason="the dev extra (optuna-dashboard) is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def dashboard_trials(storage: str, study_name: str) -> list[dict[str, Any]]:
    """Start `optuna-dashboard STORAGE` on a free loopback port, read the study's trials from its API, stop it."""
    exe = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the optuna-dashboard command is not installed beside this interpreter")
    port = _free_port()
    proc = subprocess.Popen([exe, storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                studies = _get(f"{base}/api/studies")["study_summaries"]
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"optuna-dashboard did not start: {proc.communicate()[1]}") from None
                time.sleep(0.3)
        study_id = next(s["study_id"] for s in studies if s["study_name"] == study_name)
        return _get(f"{base}/api/studies/{study_id}")["trials"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def check_against_study(storage: str, name: str) -> None:
    trials = optuna.load_study(study_name=name, storage=open_storage(storage) if "://" not in storage
                               else storage).get_trials()
    served = {t["number"]: t for t in dashboard_trials(storage, name)}
    assert sorted(served) == [t.number for t in trials] and len(trials) == 4
    for t in trials:
        s = served[t.number]
        assert s["state"] == t.state.name.capitalize()
        assert {p["name"]: int(p["param_external_value"]) for p in s["params"]} == t.params
        attrs = {a["key"]: a["value"] for a in s["user_attrs"]}
        assert set(attrs) == set(t.user_attrs)
        assert json.loads(attrs["choices"]) == t.user_attrs["choices"]  # the real widths and repeats
        if t.state == TrialState.COMPLETE:
            assert float(attrs["score"]) == t.user_attrs["score"] and int(attrs["params"]) == t.user_attrs["params"]


def _search(tmp_path: Path, storage: str, name: str, test_module, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # a study on a URL storage keeps its folder under runs/search of the cwd
    tiny = test_module("search/test_study.py").TINY
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny))
    assert cli.main(["search", str(cfg), "--budget-params", "5", "--trials", "4", "--imgsz", "64", "--storage", storage,
                     "--study-name", name, "-o", str(tmp_path / "o"), "--no-progress"]) == 0


def test_dashboard_reads_a_journal_study(tmp_path: Path, test_module, monkeypatch) -> None:
    journal = str(tmp_path / "journal.log")
    _search(tmp_path, journal, "dash", test_module, monkeypatch)
    check_against_study(journal, "dash")


def test_dashboard_reads_a_postgres_study(tmp_path: Path, postgres_url: str, test_module, monkeypatch) -> None:
    _search(tmp_path, postgres_url, "dashpg", test_module, monkeypatch)
    check_against_study(postgres_url, "dashpg")
