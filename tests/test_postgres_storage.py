"""Optuna's RDB storage on a real PostgreSQL server: two processes share one study."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import optuna

WORKER = textwrap.dedent('''
    import sys, optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="shared", storage=sys.argv[1])
    study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=5)
''')


def test_two_processes_share_one_study(postgres_url) -> None:
    optuna.create_study(study_name="shared", storage=postgres_url)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, postgres_url]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(10))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_zoo_search_two_workers_on_postgres(postgres_url, tmp_path, test_module) -> None:
    """`zoo search --storage postgresql://... --workers 2`: one study, no lost or duplicated trials."""
    import yaml

    study_tests = test_module("search/test_study.py")  # the tiny config and fast flags
    CLI_FAST, TINY, _zoo = study_tests.CLI_FAST, study_tests.TINY, study_tests._zoo

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    p = _zoo("search", str(cfg), "--budget-ms", "1000", "--trials", "6", "--workers", "2", "--storage",
             postgres_url, "--study-name", "pg2", "-o", str(tmp_path / "o"), *CLI_FAST)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    study = optuna.load_study(study_name="pg2", storage=postgres_url)
    assert sorted(t.number for t in study.trials) == list(range(6))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert (tmp_path / "o" / "best.yaml").exists()
