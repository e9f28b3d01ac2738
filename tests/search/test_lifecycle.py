"""A study's life as a user sees it: names that say what a study is, "new study"/"resuming" lines, one
failure count everywhere, progress lines without a terminal, latency honesty in report.json, flags
checked before work, `zoo export` creating nothing on a failed look-up, trials.csv with real values."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

import cli
from search import Budget, SearchOptions, SearchSettings, run_search
from search.export import RUN_CV_WARN, plot_axis, reliability_warnings
from search.recovery import failed
from search.run import default_study_name
from search.storage import open_storage
from zoo.config import load_config

import importlib.util as _ilu
from pathlib import Path as _P
_spec = _ilu.spec_from_file_location("zoo_tests_tiny", _P(__file__).resolve().parents[1] / "tiny.py")
tiny = _ilu.module_from_spec(_spec)
_spec.loader.exec_module(tiny)
TINY = tiny.SEARCH
FAST = tiny.cli_fast()


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(TINY))
    return p


def trials_of(storage: str | Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(str(storage))).get_trials()


def err_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_default_study_name_covers_budgets_objective_and_sampler() -> None:
    c = load_config(TINY)  # a mapping's name is "config"
    assert default_study_name(c, 320, Budget(latency_ms=40, gflops=5.5)) == "config-320-40ms-5.5gflops-feature_entropy-nsga2"
    assert default_study_name(c, 320, Budget(latency_ms=40), objectives=("score", "latency"), objective="mae",
                              deploy=True) == "config-320-40ms-mae-nsga2-pareto-deploy"
    names = {default_study_name(c, 320, b, objective=o, sampler=s, objectives=obj)
             for b in (Budget(latency_ms=40), Budget(latency_ms=40, params_m=2), Budget(params_m=2))
             for o in ("mae", "feature_entropy") for s in ("nsga2", "tpe")
             for obj in (("score",), ("score", "latency"))}
    assert len(names) == 3 * 2 * 2 * 2  # every combination its own study
    assert default_study_name(c, 320, Budget(latency_ms=40, params_m=2, max_layers=30), sampler="tpe").endswith(
        "-320-40ms-2mparams-30layers-feature_entropy-tpe")


def test_new_and_resuming_lines_and_the_journal_under_the_output_folder(tmp_path: Path, cfg: Path, capsys) -> None:
    args = ["search", str(cfg), "--budget-params", "5", "--trials", "3", *FAST]
    name = "tiny-64-5mparams-feature_entropy-nsga2"
    assert cli.main([*args, "-o", str(tmp_path / "a")]) == 0
    lines = err_lines(capsys)
    assert lines[0] == f"new study {name} at {tmp_path / 'a' / 'journal.log'}"
    base = search_base_of(cfg)  # the default objective's depth budget is the base's, and the run says so
    assert lines[1] == (f"objective feature_entropy (maximize); depth budget: feature_entropy grows without bound "
                        f"in depth: layers at most the base's ({base.layers})")
    assert cli.main([*args, "-o", str(tmp_path / "b")]) == 0  # another -o: another study, never the first one
    assert err_lines(capsys)[0] == f"new study {name} at {tmp_path / 'b' / 'journal.log'}"
    assert cli.main([*args[:5], "5", *args[6:], "-o", str(tmp_path / "a")]) == 0
    assert err_lines(capsys)[0] == f"resuming study {name}: 3 of 5 trials done"
    assert len(trials_of(tmp_path / "a" / "journal.log", name)) == 5
    assert len(trials_of(tmp_path / "b" / "journal.log", name)) == 3


def search_base_of(cfg: Path):
    """The base's layers at the search's size, from the objectives' own summary."""
    from profiles.rowcosts import CostCache
    from search.evaluate import rows_of
    from search.objectives import ObjectiveContext
    from search.objectives.budgets import summarize
    from zoo.plan import plan_config

    cache = CostCache()
    rows = rows_of(plan_config(load_config(cfg), imgsz=64, prober=cache), cache)
    return summarize(rows, ObjectiveContext(imgsz=64))


def test_nsga2_then_tpe_never_share_a_study_unless_named(tmp_path: Path, cfg: Path, capsys) -> None:
    journal = str(tmp_path / "j.log")
    base = ["search", str(cfg), "--budget-ms", "1000", "--trials", "2", "--storage", journal, "-o",
            str(tmp_path / "o"), *FAST]
    assert cli.main([*base, "--sampler", "nsga2", "--objectives", "score,latency", "--study-name", "s"]) == 0
    capsys.readouterr()
    assert cli.main([*base, "--sampler", "tpe", "--study-name", "s"]) == 1  # the same name: refused, named
    assert err_lines(capsys) == [f"error: {journal}: study 's' was made with other settings: --objectives "
                                 f"score,latency (this run: score); --sampler nsga2 (this run: tpe); run with the "
                                 f"study's settings to resume it, or choose another --study-name"]
    assert len(trials_of(journal, "s")) == 2  # untouched
    assert cli.main([*base, "--sampler", "tpe"]) == 0  # no name: its own study
    assert err_lines(capsys)[0].startswith("new study tiny-64-1000ms-feature_entropy-tpe at ")
    trials = trials_of(journal, "tiny-64-1000ms-feature_entropy-tpe")
    assert len(trials) == 2 and all(t.state == TrialState.COMPLETE and len(t.values) == 1 for t in trials)


@pytest.fixture
def picky(test_module):
    """test_study's conv that refuses 16 output channels, registered for one test only."""
    from zoo.registry import REGISTRY, register_module

    register_module("ZooTestPicky", family="yolov5", io="out_arg")(test_module("search/test_study.py").Picky)
    yield
    REGISTRY.remove("ZooTestPicky", "yolov5")


def test_one_failure_count_in_progress_table_and_report(tmp_path: Path, picky, capsys) -> None:
    """Candidates that cannot be built (width 0.5 of row 1 is 16 channels, which Picky refuses): failed
    trials, counted the same by the progress lines, the result table and report.json."""
    cfg = tmp_path / "picky.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "ZooTestPicky", [32, 3, 2]],
                                                       *TINY["backbone"][2:]]}))
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"widths": {"backbone/4": [0.5, 1.0]}, "depths": {}}))
    out = tmp_path / "o"
    rc = cli.main(["search", str(cfg), "--budget-params", "5", "--trials", "6", "--space", str(space), "--seed", "3",
                   "--storage", str(tmp_path / "j.log"), "--study-name", "f", "-o", str(out), "--imgsz", "64"])
    captured = capsys.readouterr()
    trials = trials_of(tmp_path / "j.log", "f")
    n = len(failed(trials))
    assert rc == 0 and 0 < n < 6, [t.user_attrs.get("fail_reason") for t in trials]
    progress = [ln for ln in captured.err.splitlines() if ln.startswith("search: ")]
    assert progress[-1].startswith("search: 6/6, ") and f", {n} failed" in progress[-1]
    assert "6 trials, " in captured.out and f", {n} failed" in captured.out.splitlines()[0]
    assert json.loads((out / "report.json").read_text())["n_failed"] == n
    assert all(t.user_attrs["fail_reason"] for t in trials if t.state == TrialState.FAIL)


def test_progress_lines_reach_a_pipe_while_the_search_runs(tmp_path: Path, test_module) -> None:
    faults = test_module("search/test_faults.py")
    s = faults.make_setup(tmp_path)
    args = [a for a in faults.search_args(s, "pipe", 8) if a != "--no-progress"]
    z = faults.Zoo(args, sleep_s=0.15)
    assert z.wait() == 0, z.err
    lines = [(ln, alive) for ln, alive in z.lines if ln.startswith("search: ")]
    assert lines[-1][0].startswith("search: 8/8, best ")
    assert any(alive and not ln.startswith("search: 0/") for ln, alive in lines)  # while it ran
    assert all(" feasible, " in ln and " failed" in ln for ln, _ in lines)


def test_report_records_the_load_and_the_run_to_run_variation(tmp_path: Path, monkeypatch) -> None:
    import profiles.latency

    monkeypatch.setattr(profiles.latency, "loadavg", lambda: (99.0, 1.0, 1.0))
    opts = SearchOptions(budget=Budget(latency_ms=1000.0), settings=SearchSettings(widths=[0.5, 1.0]),
                         measure=__import__("search").Measure(imgsz=64, runs=2, warmup_runs=1, warmup_s=0.0),
                         trials=3, storage=str(tmp_path / "j.log"), study_name="l", out=str(tmp_path / "o"),
                         top_k=2, remeasure_factor=1, max_uniform=1)
    r = run_search(TINY, opts)
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["load"]["loadavg_start"] == [99.0, 1.0, 1.0] and report["load"]["cores"] >= 1
    assert r.warnings[0].startswith(f"load average 99.0 exceeded the {report['load']['cores']} cores")
    trials = {t.number: t for t in trials_of(tmp_path / "j.log", "l")}
    pairs = [(trials[c["trial"]].user_attrs["latency_ms"]["median"], c["latency_ms"]["median"])
             for c in report["remeasured"]]
    base = next(t for t in trials.values() if t.user_attrs["kind"] == "base")
    pairs.append((base.user_attrs["latency_ms"]["median"], report["base"]["latency_ms"]["median"]))
    import statistics

    assert report["latency_run_to_run_cv"] == round(max(statistics.stdev(p) / statistics.fmean(p) for p in pairs), 4)
    cv_warned = any("timed twice" in w for w in r.warnings)
    assert cv_warned == (report["latency_run_to_run_cv"] > RUN_CV_WARN)


def test_reliability_warnings() -> None:
    assert reliability_warnings({"loadavg_start": [1.0, 0, 0], "loadavg_end": [2.0, 0, 0], "cores": 2}, 0.05) == []
    load, cv = reliability_warnings({"loadavg_start": [2.5, 0, 0], "loadavg_end": None, "cores": 2}, 0.3)
    assert load.startswith("load average 2.5 exceeded the 2 cores") and "CV of 30% (over 10%)" in cv
    assert reliability_warnings({"loadavg_start": [2.5, 0, 0], "loadavg_end": None, "cores": 2}, None,
                                timed=False) == []  # a GFLOPs-only search timed nothing: nothing to warn about


def test_an_unmet_budget_names_the_fastest_candidate_seen(tmp_path: Path, cfg: Path, capsys) -> None:
    rc = cli.main(["search", str(cfg), "--budget-ms", "0.001", "--trials", "3", "--storage", str(tmp_path / "j.log"),
                   "--study-name", "u", "-o", str(tmp_path / "o"), *FAST])
    assert rc == 1
    trials = trials_of(tmp_path / "j.log", "u")
    v, n = min((t.user_attrs["latency_ms"]["median"], t.number) for t in trials if t.user_attrs["latency_ms"])
    err = capsys.readouterr().err
    assert f"; fastest seen: trial {n} at {v:.2f} ms); relax the budget" in err
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["closest"] == {"latency_ms": {"trial": n, "value": v, "limit": 0.001}}


def test_flags_are_checked_before_any_work(tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    assert cli.main(["search", "yolov5n", "--budget-params", "1", "--imgsz", "641", "-o", str(out)]) == 1
    assert err_lines(capsys) == ["error: yolov5n: --imgsz 641 is not a positive multiple of the model's max stride "
                                 "32 (try 672)"]
    if not torch.cuda.is_available():
        assert cli.main(["search", "yolov5n", "--budget-params", "1", "--device", "cuda", "-o", str(out)]) == 1
        assert err_lines(capsys) == ["error: --device cuda needs CUDA, which is not available on this "
                                     "machine (use cpu)"]  # at parse time, as every command checks --device
    assert not out.exists()


def test_export_creates_nothing_on_a_failed_look_up(tmp_path: Path, cfg: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    for storage in (str(tmp_path / "missing"), str(tmp_path / "empty"), f"sqlite:///{tmp_path / 'none.db'}"):
        assert cli.main(["export", "--storage", storage, "--study-name", "x", "-o", str(tmp_path / "x.yaml")]) == 1
        line, = err_lines(capsys)
        assert line.startswith("error: no study storage at ") and "runs/search/<study>/journal.log" in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["empty", "tiny.yaml"]
    journal = tmp_path / "o" / "journal.log"
    assert cli.main(["search", str(cfg), "--budget-params", "0.08", "--trials", "4", "-o", str(tmp_path / "o"),
                     "--study-name", "e", *FAST]) in (0, 1)
    capsys.readouterr()
    assert cli.main(["export", "--storage", str(tmp_path / "o"), "--study-name", "nope", "-o", "x.yaml"]) == 1
    assert err_lines(capsys) == [f"error: no study named 'nope' in {journal}; it holds e"]
    over = next(t for t in trials_of(journal, "e") if t.state == TrialState.COMPLETE and not t.user_attrs["feasible"])
    assert cli.main(["export", "--storage", str(journal), "--study-name", "e", "--trial", str(over.number),
                     "-o", str(tmp_path / "over.yaml")]) == 0
    ratio = over.system_attrs["constraints:params"]
    assert err_lines(capsys)[1] == f"warning: trial {over.number} breaks the study's budgets (params {ratio:+.0%} " \
                                   f"over the limit)"


def test_trials_csv_has_real_values_beside_the_indices(tmp_path: Path) -> None:
    opts = SearchOptions(budget=Budget(params_m=5.0), settings=SearchSettings(widths=[0.5, 0.75, 1.0]), trials=4,
                         storage=str(tmp_path / "j.log"), study_name="c", out=str(tmp_path / "o"), max_uniform=1,
                         measure=__import__("search").Measure(imgsz=64))
    run_search(TINY, opts)
    trials = {t.number: t for t in trials_of(tmp_path / "j.log", "c")}
    from search.space import build_space

    space = build_space(load_config(TINY), opts.settings)
    with open(tmp_path / "o" / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for row in rows:
        t = trials[int(row["number"])]
        for name, index in t.params.items():
            assert int(row[f"params_{name}"]) == index  # the index, named as trials_dataframe() names it
            assert float(row[name]) == space.values(t.params)[name] == t.user_attrs["choices"][name]
    assert any(row["w:backbone/2"] == "0.5" for row in rows) or any(row["w:backbone/2"] == "0.75" for row in rows)


@pytest.mark.parametrize(("budget", "label"), [
    (Budget(latency_ms=10, params_m=1), "latency (ms, median)"), (Budget(params_m=1), "params (M)"),
    (Budget(gflops=2, max_layers=30), "GFLOPs"), (Budget(max_layers=30), "layers (deploy convs)")])
def test_the_plot_axis_follows_the_budgets(budget: Budget, label: str) -> None:
    key, shown, value_of, limit = plot_axis(budget)
    assert shown == label and limit == budget.as_dict()[key]
    attrs = {"latency_ms": {"median": 3.0}, "params": 1_500_000, "gflops": 2.5, "layers": 21}
    assert value_of(attrs) == {"latency_ms": 3.0, "params_m": 1.5, "gflops": 2.5, "max_layers": 21}[key]
