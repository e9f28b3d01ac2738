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
