"""`zoo search --latency lut|hybrid`: candidates priced from the table (no model built, the plan's
signatures looked up), rows the table lacks measured and appended on the device, hybrid's final check
re-measured on the device; the Measure options checked where they enter."""
from __future__ import annotations

import json

import optuna
import pytest
import yaml

import cli
from profiles import lutbuild
from profiles.backends import get_backend
from profiles.latency import TimingProtocol
from profiles.lut import LatencyTable, predict_plan
from profiles.lutanchor import ANCHOR_ROUNDS
from profiles.lutbuild import build_table
from search import Measure
from search.latency import MeasuredLatency, TableLatency, pricers
from search.lutplans import lut_sources
from search.space import build_space
from search.storage import open_storage
from zoo.config import load_config
from zoo.errors import OptionError

QUICK = TimingProtocol(runs=2, warmup_runs=1, warmup_s=0.0)
import importlib.util as _ilu
from pathlib import Path as _P
_spec = _ilu.spec_from_file_location("zoo_tests_tiny", _P(__file__).resolve().parents[1] / "tiny.py")
tiny = _ilu.module_from_spec(_spec)
_spec.loader.exec_module(tiny)
TINY = tiny.LUT
CLI_FAST = tiny.cli_fast(top_k=2)


@pytest.fixture
def table(tmp_path, monkeypatch):
    """A torch table of TINY and four candidates of its space at 64 px (quick protocols)."""
    monkeypatch.setattr(lutbuild, "ROW_PROTOCOL", QUICK)
    monkeypatch.setattr(lutbuild, "MODEL_PROTOCOL", QUICK)
    monkeypatch.setattr(lutbuild, "BUILD_WARMUP_S", 0.0)
    path = tmp_path / "t.lut"
    build_table(path, get_backend("torch"), lut_sources([TINY], imgsz=64, samples=4, calibrate=2), timing="isolated")
    return path


@pytest.fixture
def tiny_yaml(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def trials(tmp_path):
    st = open_storage(str(tmp_path / "j.log"))
    return optuna.load_study(study_name="s", storage=st).get_trials()


def test_lut_search_prices_every_candidate_from_the_table_without_a_build(tmp_path, table, tiny_yaml,
                                                                         monkeypatch) -> None:
    import zoo.builder

    real = zoo.builder.build_from_plan

    def no_build(*a, **k):  # the start's option check builds the base on the meta device: no weights, allowed
        if k.get("device") == "meta":
            return real(*a, **k)
        raise AssertionError("--latency lut built a model with weights")

    monkeypatch.setattr(zoo.builder, "build_from_plan", no_build)
    out = tmp_path / "out"
    assert cli.main(["search", str(tiny_yaml), "--budget-ms", "1000", "--latency", "lut", "--lut", str(table),
                     "--trials", "8", "-o", str(out), "--storage", str(tmp_path / "j.log"), "--study-name", "s",
                     "--no-anchor", *CLI_FAST]) == 0  # an anchor times whole models: not this test's point
    done = [t for t in trials(tmp_path) if t.state.name == "COMPLETE"]
    assert len(done) == 8
    done = [t for t in done if t.user_attrs["latency_ms"] is not None]  # the rest failed a cheap budget first
    assert len(done) >= 3
    lut = LatencyTable.load(table)
    space = build_space(load_config(str(tiny_yaml)))
    for t in done:  # each trial's latency is the table's prediction of its plan, marked as such
        pred = predict_plan(lut, space.plan(t.params, imgsz=64))
        assert t.user_attrs["latency_ms"]["source"] == "lut"
        assert t.user_attrs["latency_ms"]["median"] == pytest.approx(pred.total_ms, abs=1e-4)
    report = json.loads((out / "report.json").read_text())
    assert report["latency"] == {"pricing": "lut", "backend": "torch", "lut": str(table), "final_check": "table",
                                 "anchor": None}  # the table was never anchored
    assert report["best"]["latency_ms"]["source"] == "lut" and report["best"]["meets_budget"]


def test_lut_search_on_this_devices_table_anchors_it_first(tmp_path, table, tiny_yaml, capsys) -> None:
    """On the table's own device the search first times the config and its first candidates whole, appends
    the anchor and prices every candidate at that level; --no-anchor prices at the table's speed as it
    stands; a bad count is one line before anything is timed."""
    def argv(name: str, *extra: str) -> list[str]:
        return ["search", str(tiny_yaml), "--budget-ms", "1000", "--latency", "lut", "--lut", str(table),
                "--trials", "6", "-o", str(tmp_path / name), "--storage", str(tmp_path / f"{name}.log"),
                "--study-name", "s", *CLI_FAST, *extra]

    assert cli.main(argv("plain", "--no-anchor")) == 0
    assert LatencyTable.load(table).anchor is None
    capsys.readouterr()
    assert cli.main(argv("bad", "--anchor", "101")) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {table}: --anchor must be 0 to 100, got 101" and LatencyTable.load(table).anchor is None
    assert cli.main(argv("anchored", "--anchor", "1")) == 0
    lut = LatencyTable.load(table)
    assert lut.anchor is not None and len(lut.anchor.models) == 1 and lut.anchor.rounds == ANCHOR_ROUNDS
    assert f"{table}: anchored x{lut.anchor.factor:.3f} since {lut.anchor.at}" in capsys.readouterr().err
    plain = json.loads((tmp_path / "plain" / "report.json").read_text())["latency"]
    assert plain["anchor"] is None
    recorded = json.loads((tmp_path / "anchored" / "report.json").read_text())["latency"]["anchor"]
    assert recorded == lut.anchor.as_dict()  # report.json says which speed the candidates were priced at
    space = build_space(load_config(str(tiny_yaml)))
    study = optuna.load_study(study_name="s", storage=open_storage(str(tmp_path / "anchored.log")))
    done = [t for t in study.get_trials() if t.state.name == "COMPLETE" and t.user_attrs.get("latency_ms")]
    assert done
    for t in done:  # priced at the anchor's level: the table's own prediction times the factor
        plan = space.plan(t.params, imgsz=64)
        assert t.user_attrs["latency_ms"]["median"] == pytest.approx(predict_plan(lut, plan).total_ms, abs=1e-4)
        lut.anchor, anchor = None, lut.anchor
        unanchored = predict_plan(lut, plan).total_ms
        lut.anchor = anchor
        assert t.user_attrs["latency_ms"]["median"] == pytest.approx(unanchored * anchor.factor, abs=1e-4)


def test_lut_search_measures_and_appends_rows_the_table_lacks(tmp_path, table, tiny_yaml) -> None:
    before = LatencyTable.load(table)
    space = build_space(load_config(str(tiny_yaml)))
    assert cli.main(["search", str(tiny_yaml), "--budget-ms", "1000", "--latency", "lut", "--lut", str(table),
                     "--trials", "12", "--seed", "3", "-o", str(tmp_path / "out"), "--storage",
                     str(tmp_path / "j.log"), "--study-name", "s", *CLI_FAST]) == 0
    after = LatencyTable.load(table)
    priced = [t for t in trials(tmp_path) if t.user_attrs.get("latency_ms")]
    keys = {rp.signature.key() for t in priced for rp in space.plan(t.params, imgsz=64).rows}
    assert keys <= set(after.entries) and len(after.entries) > len(before.entries)
    assert all(after.entries[k] == e for k, e in before.entries.items())  # nothing measured again


def test_lut_search_on_another_devices_table_stops_naming_the_missing_row(tmp_path, table, tiny_yaml,
                                                                          capsys) -> None:
    argv = ["search", str(tiny_yaml), "--budget-ms", "1000", "--latency", "lut", "--lut", str(table), "--imgsz", "96",
            "--trials", "3", "-o", str(tmp_path / "out"), "--storage", str(tmp_path / "j.log"), "--no-progress"]
    before = table.read_bytes()
    assert cli.main(argv + ["--threads", "2"]) == 1  # another fingerprint: read only, no --force needed
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and f"{tiny_yaml}: row 0 (Conv): no latency entry" in errors[0]
    assert f"zoo lut export {tiny_yaml} --imgsz 96" in errors[0] and "zoo lut import" in errors[0]
    assert table.read_bytes() == before


def test_lut_search_prices_another_devices_table_without_force(tmp_path, table, tiny_yaml, capsys) -> None:
    """A table whose fingerprint is not this machine's (another CPU, as an imported one is) prices a whole
    search without --force and is never written to; hybrid, which re-measures here, refuses it in one line."""
    lines = table.read_text().splitlines()
    header = json.loads(lines[0])
    header["fingerprint"]["cpu_model"] = "ARM Cortex-A78AE (a Jetson)"
    header["fingerprint"]["threads"] = 6
    foreign = tmp_path / "jetson.lut"
    foreign.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    before = foreign.read_bytes()
    argv = ["search", str(tiny_yaml), "--budget-ms", "1000", "--lut", str(foreign), "--trials", "6",
            "--storage", str(tmp_path / "j.log"), "--study-name", "s", *CLI_FAST]
    assert cli.main([*argv, "--latency", "lut", "-o", str(tmp_path / "out")]) == 0
    done = [t for t in trials(tmp_path) if t.state.name == "COMPLETE" and t.user_attrs.get("latency_ms")]
    assert done and all(t.user_attrs["latency_ms"]["source"] == "lut" for t in done)
    assert foreign.read_bytes() == before
    with pytest.raises(Exception) as e:
        pricers(Measure(imgsz=64, latency="hybrid", lut=str(foreign)))
    assert "cpu_model ARM Cortex-A78AE (a Jetson) (table) vs" in str(e.value) and "threads 6 (table) vs 1" in str(e.value)
    capsys.readouterr()
    assert cli.main([*argv, "--latency", "hybrid", "-o", str(tmp_path / "out2")]) == 1  # re-measures here: refused
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "measuring here needs the table's own device" in err and "threads 6 (table)" in err
    assert foreign.read_bytes() == before


def test_hybrid_search_remeasures_the_top_candidates_on_the_device(tmp_path, table, tiny_yaml) -> None:
    out = tmp_path / "out"
    assert cli.main(["search", str(tiny_yaml), "--budget-ms", "1000", "--latency", "hybrid", "--lut", str(table),
                     "--trials", "6", "-o", str(out), "--storage", str(tmp_path / "j.log"), "--study-name", "s",
                     *CLI_FAST]) == 0
    assert all(t.user_attrs["latency_ms"]["source"] == "lut" for t in trials(tmp_path) if t.user_attrs.get("latency_ms"))
    report = json.loads((out / "report.json").read_text())
    assert report["latency"]["final_check"] == "measured on torch"
    for c in [report["base"], *report["remeasured"]]:
        assert "source" not in c["latency_ms"] and c["latency_ms"]["median"] > 0  # measured, not predicted
    assert report["best"]["meets_budget"] and report["best"]["latency_ms"]["median"] <= 1000


def test_hybrid_goes_down_the_ranking_until_one_truly_meets_the_budget(tmp_path, table, tiny_yaml,
                                                                      monkeypatch) -> None:
    """Predicted under the budget, measured over it: the export re-measures further candidates."""
    timed: list = []  # the plans timed at the final check, in order of their first timing (kept alive: ids not reused)
    order: list[int] = []  # every timing, as the index into timed
    real = MeasuredLatency.price

    def slow_top(self, plan, budget_ms, *, full=False, runs_factor=1):
        stats, screened = real(self, plan, budget_ms, full=full, runs_factor=runs_factor)
        index = next((i for i, seen in enumerate(timed) if seen is plan), None)
        if index is None:
            index = len(timed)
            timed.append(plan)
        order.append(index)
        if index < 2:  # the two top candidates turn out over the budget on the device, every round
            from dataclasses import replace
            return replace(stats, median_ms=10_000.0), screened
        return stats, screened

    monkeypatch.setattr(MeasuredLatency, "price", slow_top)
    out = tmp_path / "out"
    assert cli.main(["search", str(tiny_yaml), "--budget-ms", "1000", "--latency", "hybrid", "--lut", str(table),
                     "--trials", "6", "-o", str(out), "--storage", str(tmp_path / "j.log"), "--study-name", "s",
                     *CLI_FAST]) == 0
    report = json.loads((out / "report.json").read_text())
    meets = [c["meets_budget"] for c in report["remeasured"]]
    assert meets[:2] == [False, False] and meets[2] is True and len(meets) == 3
    assert report["best"]["trial"] == report["remeasured"][2]["trial"]
    assert all(len(c["latency_ms"]["rounds"]) == 3 for c in report["remeasured"])  # each timed in 3 rounds
    assert order[:9] == [0, 1, 2] * 3  # the top 2 and the base in turn, round after round; then the third alone
    assert order[9:] == [3] * 3


def test_none_meeting_the_budget_names_the_nearest_and_how_to_keep_it(tmp_path, table, tiny_yaml, monkeypatch,
                                                                      capsys) -> None:
    """Every re-measured candidate over the budget (a machine slower at the check than when the budget was
    chosen): exit 1, the error names the nearest one against the base timed beside it, and the note's
    export command writes it."""
    timed: list = []
    real = MeasuredLatency.price

    def slow(self, plan, budget_ms, *, full=False, runs_factor=1):
        stats, screened = real(self, plan, budget_ms, full=full, runs_factor=runs_factor)
        if not any(seen is plan for seen in timed):
            timed.append(plan)
        from dataclasses import replace
        return replace(stats, median_ms=3000.0 if timed[0] is plan else 6000.0), screened

    monkeypatch.setattr(MeasuredLatency, "price", slow)
    out, storage = tmp_path / "out", str(tmp_path / "j.log")
    assert cli.main(["search", str(tiny_yaml), "--budget-ms", "1000", "--latency", "hybrid", "--lut", str(table),
                     "--trials", "6", "-o", str(out), "--storage", storage, "--study-name", "s", *CLI_FAST]) == 1
    err = capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    first = report["remeasured"][0]
    assert first["latency_ms"]["median"] == 3000.0 and not (out / "best.yaml").exists()
    assert f"nearest re-measured: trial {first['trial']} at 3000.00 ms, 0.50 of the base timed beside it" in err
    command = next(line for line in err.splitlines() if "zoo export" in line).split("anyway: ", 1)[1].split()
    assert command[:2] == ["zoo", "export"] and command[command.index("--trial") + 1] == str(first["trial"])
    kept = tmp_path / "kept.yaml"
    assert cli.main([*command[1:-1], str(kept)]) == 0 and kept.exists()


def test_measure_options_are_checked() -> None:
    with pytest.raises(OptionError, match="needs a latency table"):
        Measure(latency="lut")
    with pytest.raises(OptionError, match="must be one of auto, measure, lut, hybrid"):
        Measure(latency="guess", lut="x.lut")
    search_p, check_p = pricers(Measure(imgsz=64))
    assert isinstance(search_p, MeasuredLatency) and check_p is search_p  # the default: measured, as before
    assert pricers(Measure(imgsz=64)) == (search_p, check_p)  # made once per process and Measure


def test_table_pricer_is_a_lookup_per_row_after_the_first_sight(table) -> None:
    lut = LatencyTable.load(table)
    pricer = TableLatency(lut)
    plan = build_space(load_config(TINY)).plan({}, imgsz=64)
    first, _ = pricer.price(plan)
    assert first.median_ms == pytest.approx(predict_plan(lut, plan).total_ms)
    lut.entries.clear()  # from now on only the pricer's own lookups can answer
    again, screened = pricer.price(plan)
    assert again == first and not screened
    assert again.as_dict() == {"median": round(first.median_ms, 4), "p90": round(first.median_ms, 4), "cv": 0.0,
                               "source": "lut"}


def test_table_pricer_follows_entries_that_in_context_rows_move(tmp_path) -> None:
    """An in-context table re-estimates an entry each time a model with that row is timed (a search appends
    the rows a candidate lacks): the pricer's lookups then answer what the table predicts now. (Levels "none":
    models that differ only in their level move no entry of a per-model table.)"""
    from profiles.lut import RowRef, plan_refs

    path = tmp_path / "ic.lut"
    lut = LatencyTable.open(path, get_backend("torch"), form="train", timing="in_context", levels="none")
    plan = build_space(load_config(TINY)).plan({}, imgsz=64)
    refs = plan_refs(plan)
    lut.add_in_context("first", refs, [1.0] * len(refs))
    pricer = TableLatency(lut)
    assert pricer.price(plan)[0].median_ms == pytest.approx(len(refs))
    for name in ("second", "third"):  # the median of each row's three samples becomes 3.0
        lut.add_in_context(name, refs, [3.0] * len(refs))
    assert pricer.price(plan)[0].median_ms == pytest.approx(predict_plan(lut, plan).total_ms) == 3.0 * len(refs)
    lut.add_in_context("other", [RowRef("unrelated", label="x")], [9.0])
    assert pricer.price(plan)[0].median_ms == pytest.approx(3.0 * len(refs))


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_measured_search_times_on_the_chosen_backend(tmp_path, tiny_yaml, backend) -> None:
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    pricer, _ = pricers(Measure(imgsz=64, runs=2, warmup_s=0.0, backend=backend))
    assert pricer.backend.name == backend
    plan = build_space(load_config(TINY)).plan({}, imgsz=64)
    stats, screened = pricer.price(plan, 1e-6)  # far over: the 3-run screen stops it
    assert screened and stats.runs == 3
    stats, screened = pricer.price(plan, None, full=True)
    assert not screened and stats.runs == 2 and stats.median_ms > 0


def test_auto_search_builds_its_table_in_context_and_a_resumed_run_reuses_it(tmp_path, tiny_yaml) -> None:
    from search.latency import _PRICERS

    argv = ["search", str(tiny_yaml), "--budget-ms", "1000", "--imgsz", "64", "--trials", "6", "-o",
            str(tmp_path / "out"), "--storage", str(tmp_path / "j.log"), "--study-name", "s", *CLI_FAST]
    assert cli.main(argv) == 0  # --latency auto is the default
    lut = tmp_path / "latency.lut"
    first = LatencyTable.load(lut)
    assert first.timing == "in_context" and first.entries
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["latency"]["pricing"] == "auto" and report["latency"]["lut"] == str(lut)
    assert report["latency"]["final_check"] == "measured on torch" and report["best"]["meets_budget"]
    priced = [t for t in trials(tmp_path) if t.user_attrs.get("latency_ms")]
    assert priced and all(t.user_attrs["latency_ms"]["source"] == "lut" for t in priced)
    kept = lut.read_bytes()
    _PRICERS.clear()  # a new process would open the table afresh
    assert cli.main([*argv[:argv.index("--trials") + 1], "12", *argv[argv.index("--trials") + 2:]]) == 0
    assert lut.read_bytes().startswith(kept)  # resumed: what the first run timed stands, only new rows appended
    again = LatencyTable.load(lut)
    assert set(first.entries) <= set(again.entries)
    models = [json.loads(x).get("model") for x in lut.read_text().splitlines()[1:]]
    first_models = {json.loads(x).get("model") for x in kept.decode().splitlines()[1:]}
    new = [m for m in models[len(kept.decode().splitlines()) - 1:]]
    assert not first_models & set(new)  # no model of the first run timed again


def test_a_resumed_auto_search_anchors_its_table_on_the_config(tmp_path, tiny_yaml, capsys) -> None:
    """--latency auto, resumed: the study's own table holds an earlier run's rows, so it is anchored on the
    config first (one model, a note), rows timed after it carry the factor, and --no-anchor skips it."""
    from search.latency import _PRICERS

    def argv(trials: int, *extra: str) -> list[str]:
        return ["search", str(tiny_yaml), "--budget-ms", "1000", "--imgsz", "64", "--trials", str(trials), "-o",
                str(tmp_path / "out"), "--storage", str(tmp_path / "j.log"), "--study-name", "s", *CLI_FAST, *extra]

    lut = tmp_path / "latency.lut"
    assert cli.main(argv(4)) == 0
    assert LatencyTable.load(lut).anchor is None  # a new table is timed at today's speed: nothing to anchor
    assert "anchor" not in capsys.readouterr().err
    _PRICERS.clear()
    assert cli.main(argv(8)) == 0
    table = LatencyTable.load(lut)
    anchor = table.anchor
    assert anchor is not None and len(anchor.models) == 1 and anchor.models[0].name.startswith("tiny@64 #")
    err = capsys.readouterr().err
    done = err.index(f"{lut}: the resumed study's table anchored x{anchor.factor:.3f} on the config")
    # said before the timing starts, so the pause has a reason on screen
    assert 0 <= err.index(f"{lut}: the resumed study's table was timed in an earlier run: anchoring it, timing 1 "
                          f"model in 3 rounds now (--no-anchor skips this)") < done
    records = [json.loads(x) for x in lut.read_text().splitlines()[1:]]
    at = next(i for i, r in enumerate(records) if r.get("kind") == "anchor")
    assert all(r["anchor"] == anchor.factor for r in records[at + 1:] if r.get("kind") == "row")
    _PRICERS.clear()
    assert cli.main(argv(10, "--no-anchor")) == 0
    assert LatencyTable.load(lut).anchor == anchor  # not anchored again
    assert "anchoring it" not in capsys.readouterr().err


def test_auto_refuses_a_lut_flag(tmp_path, tiny_yaml, capsys) -> None:
    assert cli.main(["search", str(tiny_yaml), "--budget-ms", "10", "--lut", "x.lut", "--no-progress"]) == 1
    assert "--lut is for --latency lut or hybrid" in capsys.readouterr().err
