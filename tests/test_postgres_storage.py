"""Optuna's RDB storage on a real PostgreSQL server: two processes share one study; the search's faults
on PostgreSQL (a killed worker, two commands at once, the server stopped mid-study and started again)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import optuna
import pytest

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
             postgres_url, "--study-name", "pg2", "-o", str(tmp_path / "o"), *CLI_FAST, cwd=tmp_path)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    study = optuna.load_study(study_name="pg2", storage=postgres_url)
    assert sorted(t.number for t in study.trials) == list(range(6))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert (tmp_path / "o" / "best.yaml").exists()


@pytest.mark.slow
def test_kill_one_of_two_workers_on_postgres(postgres_url, tmp_path, test_module) -> None:
    faults = test_module("search/test_faults.py")
    faults.kill_one_of_two_workers(faults.make_setup(tmp_path), postgres_url, "pgkill")


@pytest.mark.slow
def test_two_commands_on_one_postgres_study(postgres_url, tmp_path, test_module) -> None:
    """Claims are exact on PostgreSQL too (an advisory lock): no surplus trial, exactly --trials."""
    faults = test_module("search/test_faults.py")
    faults.two_commands_on_one_study(faults.make_setup(tmp_path), postgres_url, "pgtwo")


@pytest.mark.slow
def test_server_stopped_mid_study_then_the_same_command_resumes(postgres_url, tmp_path, test_module) -> None:
    """The server goes away during the trials: one error line, exit 1, no traceback; once it is back the
    same command resumes and ends with exactly --trials trials, every completed one kept."""
    faults = test_module("search/test_faults.py")
    pg = test_module("pg_server.py")
    s = faults.make_setup(tmp_path)
    with pg.postgres_control() as server:
        args = faults.search_args(s, "pgstop", 8, storage=server.url)
        z = faults.Zoo(args, sleep_s=0.2)
        faults.wait_until(lambda: len(faults.completed(_trials(server.url, "pgstop"))) >= 2)
        server.stop()
        assert z.wait(timeout=120) == 1
        errors = [line for line, _ in z.lines if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(f"error: {server.url}: the study storage failed ("), z.err
        assert "Traceback" not in z.err and len(z.lines) <= 3, z.err  # the "new study" line and the error
        server.start()
        before = faults.completed(_trials(server.url, "pgstop"))
        z = faults.Zoo(args)
        assert z.wait() == 0, z.err
        faults.assert_exact(_trials(server.url, "pgstop"), 8, before)


def _trials(url: str, name: str) -> list:
    try:
        return optuna.load_study(study_name=name, storage=url).get_trials()
    except KeyError:
        return []
