"""Building latency tables: from plans (every distinct row once, calibration models whole, the fit on a
backend whose answer is known), through `zoo lut build` (interrupted and resumed: nothing measured twice)
and `zoo lut show`; the CLI's one-line errors for another fingerprint and for a corrupt file (left as it was)."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import cli
from profiles import lutbuild
from profiles.backends import BackendInfo, TorchBackend
from profiles.backends.base import settings_tuple
from profiles.latency import LatencyStats, TimingProtocol
from profiles.lut import LatencyTable, RowMaker, plan_refs, predict_plan
from profiles.lutbuild import BuildSource, build_table
from search.lutplans import lut_sources
from zoo.plan import plan_config

QUICK = TimingProtocol(runs=2, warmup_runs=1, warmup_s=0.0)
import importlib.util as _ilu
from pathlib import Path as _P
_spec = _ilu.spec_from_file_location("zoo_tests_tiny", _P(__file__).resolve().parents[1] / "tiny.py")
tiny = _ilu.module_from_spec(_spec)
_spec.loader.exec_module(tiny)
TINY = tiny.LUT


class Params:
    """A backend whose timings are known: a row takes (its parameter count) / 1000 ms; a whole ZooModel
    A * (the sum over its rows) + B."""

    name, threads, A, B = "params", 1, 1.3, 2.0

    def fingerprint(self) -> BackendInfo:
        return BackendInfo("params", "1", "cpu", "float32", 1, settings_tuple({}))

    def time_row(self, module, inputs, protocol=TimingProtocol()) -> LatencyStats:
        return _stats(sum(p.numel() for p in module.parameters()) / 1000)

    def time_model(self, model, shape, protocol=TimingProtocol()) -> LatencyStats:
        rows = sum(sum(p.numel() for p in m.parameters()) for m in model.model) / 1000
        return _stats(self.A * rows + self.B)


def _stats(ms: float) -> LatencyStats:
    return LatencyStats(ms, ms, ms, 0.0, 1, 0, 1, "cpu", None)


# ---- the build, through the API -------------------------------------------------------------------------
def test_build_measures_each_distinct_row_once_and_fits_the_known_line(tmp_path, quick) -> None:
    sources = lut_sources([TINY], imgsz=64, samples=6, seed=0, calibrate=3)
    assert [s.calibrate for s in sources] == [True] * 4 + [False] * (len(sources) - 4)
    keys = {r.key for s in sources for r in plan_refs(s.plan)}
    progress = []
    report = build_table(tmp_path / "p.lut", Params(), sources, on_progress=lambda d, n, t: progress.append((d, n)))
    table = report.table
    assert set(table.entries) == keys and report.rows == report.rows_measured == len(keys)
    assert progress[0] == (0, len(keys) + 4) and progress[-1] == (len(keys) + 4, len(keys) + 4)
    lines = [json.loads(x) for x in (tmp_path / "p.lut").read_text().splitlines()[1:]]
    assert sum(x["kind"] == "row" for x in lines) == len(keys)  # once each, though plans share rows
    assert [x["kind"] for x in lines[-2:]] == ["fit", "build"]
    cal = report.calibration
    assert (cal.method, cal.a, cal.b) == ("least squares", pytest.approx(Params.A), pytest.approx(Params.B))
    # a prediction is the calibrated sum of the plan's rows, one entry per row (repeats counted)
    plan = sources[5].plan
    pred = predict_plan(LatencyTable.load(tmp_path / "p.lut"), plan)
    maker = RowMaker()
    maker.add(plan)
    rows_ms = [sum(p.numel() for p in maker(r.key)[0].parameters()) / 1000 for r in plan_refs(plan)]
    assert len(pred.rows) == len(plan.rows) and [r.row for r, _ in pred.rows] == [rp.index for rp in plan.rows]
    assert [ms for _, ms in pred.rows] == pytest.approx(rows_ms)
    assert pred.total_ms == pytest.approx(Params.A * sum(rows_ms) + Params.B)
    again = build_table(tmp_path / "p.lut", Params(), sources)
    assert (again.rows_measured, again.models_measured) == (0, 0)
    assert len((tmp_path / "p.lut").read_text().splitlines()) == 1 + len(lines)  # nothing appended


def test_calibration_models_are_spread_through_the_build(tmp_path, quick) -> None:
    """Each model is measured once its own rows are in, between stretches of the other rows of about one
    size, so the fit sees the machine at every stage of the build, not only at its end."""
    sources = lut_sources([TINY], imgsz=64, samples=12, seed=0, calibrate=3)
    build_table(tmp_path / "p.lut", Params(), sources)
    lines = [json.loads(x) for x in (tmp_path / "p.lut").read_text().splitlines()[1:]]
    kinds = [x["kind"] for x in lines]
    at = [i for i, k in enumerate(kinds) if k == "model"]
    last_row = max(i for i, k in enumerate(kinds) if k == "row")
    assert len(at) == 4 and at[0] < at[-1] < last_row  # the first and the last before the rows end
    seen: set[str] = set()
    for x in lines:
        if x["kind"] == "row":
            seen.add(x["key"])
        elif x["kind"] == "model":
            assert set(x["keys"]) <= seen  # its rows measured before it
    refs = [r for s in sources for r in plan_refs(s.plan)]
    models = [(s.model_name, s) for s in sources if s.calibrate]
    stretches = lutbuild.interleave(refs, models)
    assert [m for _, m in stretches] == [*models, None]
    assert {r.key for rows, _ in stretches for r in rows} == {r.key for r in refs}
    for rows, m in stretches[:-1]:
        assert {r.key for r in plan_refs(m[1].plan)} <= {r.key for r in rows}
    own = {r.key for _, s in models for r in plan_refs(s.plan)}
    sizes = [len({r.key for r in rows} - own) for rows, _ in stretches]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) > 0
    assert lutbuild.interleave(refs, []) == [(list({r.key: r for r in refs}.values()), None)]


def test_row_maker_gives_the_rows_module_and_seeded_inputs() -> None:
    plan = plan_config(TINY, imgsz=64)
    maker = RowMaker()
    refs = maker.add(plan)
    module, x = maker(refs[2].key)  # the C3 row: 2 chained bottlenecks inside one module
    assert type(module).__name__ == "C3" and not module.training and tuple(x.shape) == (1, 32, 16, 16)
    assert torch.equal(x, maker(refs[2].key)[1]) and x.std() > 0.5  # random, the same each time
    head, feats = maker(refs[-1].key)
    assert isinstance(feats, list) and [tuple(f.shape) for f in feats] == [(1, 32, 16, 16), (1, 32, 8, 8)]
    assert refs[2].label == "C3[32, 32, 2] in 32x16x16" and refs[-1].module == "Detect"
    folding = RowMaker("deploy")
    folding.add(plan)
    deployed, _ = folding(refs[0].key)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules())  # folded for the deploy form
    assert any(isinstance(m, nn.BatchNorm2d) for m in maker(refs[0].key)[0].modules())


def test_build_source_names_change_with_the_rows() -> None:
    a = BuildSource("tiny@64", plan_config(TINY, imgsz=64))
    b = BuildSource("tiny@64", plan_config({**TINY, "nc": 3}, imgsz=64))
    assert a.model_name.startswith("tiny@64 #") and a.model_name != b.model_name
    assert a.model_name == BuildSource("tiny@64", plan_config(TINY, imgsz=64)).model_name


def test_a_table_answers_for_its_form_only(tmp_path, quick) -> None:
    sources = lut_sources([TINY], imgsz=64)
    build_table(tmp_path / "d.lut", TorchBackend(), sources, form="deploy")
    table = LatencyTable.load(tmp_path / "d.lut")
    assert table.form == "deploy"
    with pytest.raises(Exception, match="times the deploy form, not the train form"):
        table.check_form("train")
    with pytest.raises(Exception, match="another timing protocol"):
        LatencyTable.open(tmp_path / "d.lut", TorchBackend(), protocol=TimingProtocol(runs=3))


# ---- `zoo lut build` / `zoo lut show` ---------------------------------------------------------------
def _rows_in(path) -> list[dict]:
    return [r for r in map(json.loads, path.read_text().splitlines()[1:]) if r["kind"] == "row"]


def test_cli_build_interrupted_then_resumed_measures_nothing_twice(tmp_path, tiny_yaml, quick, monkeypatch,
                                                                   capsys) -> None:
    out = tmp_path / "t.lut"
    argv = ["lut", "build", str(tiny_yaml), "--imgsz", "64", "--samples", "4", "--calibrate", "1", "-o", str(out),
            "--no-progress", "--timing", "isolated"]
    real = TorchBackend.time_row
    calls: list[tuple[int, ...]] = []

    def stop_after_three(self, module, inputs, protocol=TimingProtocol()):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(tuple((inputs[0] if isinstance(inputs, list) else inputs).shape))
        return real(self, module, inputs, protocol)

    monkeypatch.setattr(TorchBackend, "time_row", stop_after_three)
    assert cli.main(argv) == 130  # Ctrl-C
    kept = out.read_bytes()
    first = _rows_in(out)
    assert len(first) == 2  # the first call was the process warm-up, then two rows measured and kept

    monkeypatch.setattr(TorchBackend, "time_row", real)
    capsys.readouterr()
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    rows = _rows_in(out)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) and out.read_bytes().startswith(kept)  # the first two stand as they were
    assert f"measured {len(rows) - 2} of {len(rows)} distinct rows (2 already there)" in " ".join(err.split())
    assert cli.main(argv) == 0 and _rows_in(out) == rows  # a third run measures nothing
    assert "measured 0 of" in " ".join(capsys.readouterr().err.split())


def test_cli_show_prints_fingerprint_coverage_and_calibration(tmp_path, tiny_yaml, quick, capsys) -> None:
    out = tmp_path / "t.lut"
    assert cli.main(["lut", "build", str(tiny_yaml), "--imgsz", "64", "--samples", "3", "--calibrate", "2",
                     "-o", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["lut", "show", str(out), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    table = LatencyTable.load(out)
    assert data["fingerprint"]["backend"] == "torch" and data["fingerprint"]["threads"] == 1
    assert data["rows"] == len(table.entries) and sum(data["rows_by_module"].values()) == data["rows"]
    assert set(data["rows_by_module"]) == {"Conv", "C3", "SPPF", "Detect"}
    assert len(data["models"]) == 3 and data["calibration"]["current"] is True
    assert data["levels"] == "per_model" and len(data["level_range"]) == 2
    for m in data["models"]:  # each at the level its rows were timed at (profiles.lutlevels)
        cal = table.calibration
        assert m["level"] == table.model_levels[m["name"]]
        assert m["predicted_ms"] == pytest.approx((cal.a * m["row_sum_ms"] + cal.b) * m["level"])
        assert m["error"] == pytest.approx((m["predicted_ms"] - m["measured_ms"]) / m["measured_ms"])
    assert cli.main(["lut", "show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "cpu_model" in text and "calibration: total = row sum" in text and "by module" in text
    assert "per model: each model's level fitted and divided out" in text
    assert "3 models a check, no fit" in " ".join(text.split())  # torch tables time rows in context


def test_cli_refuses_a_table_of_another_fingerprint_naming_the_fields(tmp_path, tiny_yaml, quick, capsys) -> None:
    out = tmp_path / "t.lut"
    assert cli.main(["lut", "build", str(tiny_yaml), "--imgsz", "64", "-o", str(out), "--no-progress"]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert cli.main(["lut", "build", str(tiny_yaml), "--imgsz", "64", "-o", str(out), "--threads", "2",
                     "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: {out}: measuring here needs the table's own device")
    assert "threads 1 (table) vs 2 (here)" in err and "--force" in err
    # pricing needs no local device: another fingerprint's table prices (read only), without --force
    assert cli.main(["profile", str(tiny_yaml), "--imgsz", "64", "--latency", "lut", "--lut", str(out),
                     "--threads", "2", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["latency"]["method"] == "predicted"
    assert out.read_bytes() == before


@pytest.mark.parametrize("damage", [lambda b: b.replace(b'"median_ms": ', b'"median_ms": ,', 1),
                                    lambda b: b"not a table\n" + b, lambda b: b""])
def test_cli_corrupt_table_is_one_line_and_left_as_it_was(tmp_path, tiny_yaml, quick, capsys, damage) -> None:
    out = tmp_path / "t.lut"
    assert cli.main(["lut", "build", str(tiny_yaml), "--imgsz", "64", "-o", str(out), "--no-progress"]) == 0
    bad = damage(out.read_bytes())
    out.write_bytes(bad)
    capsys.readouterr()
    for argv in (["lut", "show", str(out)],
                 ["lut", "build", str(tiny_yaml), "--imgsz", "64", "-o", str(out), "--no-progress"],
                 ["profile", str(tiny_yaml), "--imgsz", "64", "--latency", "lut", "--lut", str(out)],
                 ["search", str(tiny_yaml), "--imgsz", "64", "--budget-ms", "5", "--latency", "lut", "--lut", str(out),
                  "--trials", "1", "-o", str(tmp_path / "s")]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {out}: ") and "\n" not in err and "Traceback" not in err
        assert out.read_bytes() == bad
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.lut", "tiny.yaml"]


def test_cli_option_errors_name_the_flags(tmp_path, tiny_yaml, capsys) -> None:
    out = tmp_path / "t.lut"
    for argv, message in (
            (["lut", "build", str(tiny_yaml), "-o", str(out), "--samples", "-1"], "--samples must be >= 0"),
            (["lut", "build", str(tiny_yaml), "-o", str(out), "--device", "mps"], "--device mps"),
            (["profile", str(tiny_yaml), "--latency", "lut"], "--latency lut needs --lut FILE"),
            (["search", str(tiny_yaml), "--budget-ms", "5", "--latency", "hybrid"], "--latency hybrid needs --lut"),
            (["search", str(tiny_yaml), "--budget-ms", "5", "--lut", str(out)], "--lut is for --latency lut")):
        assert cli.main(argv) == 1, argv
        assert message in capsys.readouterr().err
    assert not out.exists()


# ---- rows timed in context ---------------------------------------------------------------------------------
def test_in_context_table_records_its_timing_and_its_rows_add_up_per_model(tmp_path, quick) -> None:
    from profiles.lutbuild import IN_CONTEXT_PROTOCOL, in_context_plan

    sources = lut_sources([TINY], imgsz=64, samples=3, calibrate=1)
    path = tmp_path / "ic.lut"
    report = build_table(path, TorchBackend(), sources, protocol=QUICK, model_protocol=QUICK)
    table = LatencyTable.load(path)
    assert table.timing == "in_context" and json.loads(path.read_text().splitlines()[0])["timing"] == "in_context"
    keys = {r.key for s in sources for r in plan_refs(s.plan)}
    assert keys <= set(table.entries) and report.rows_measured == len(keys)
    assert not in_context_plan(table, sources)  # nothing left to time: a rerun measures nothing
    again = build_table(path, TorchBackend(), sources, protocol=QUICK, model_protocol=QUICK)
    assert again.rows_measured == 0 and again.models_measured == 0
    assert len(table.models) == 2 and table.calibration is not None  # the config and one candidate, whole
    cal = table.calibration  # rows add up by construction: the whole models are a check, not a fit
    assert (cal.method, cal.a, cal.b, len(cal.models)) == ("identity", 1.0, 0.0, 2)
    assert cal.residuals_ms == pytest.approx([m - s for m, s in zip(cal.measured_ms, cal.row_sums_ms)])
    rows = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    by_model: dict = {}
    for r in rows:
        if r["kind"] == "row":
            by_model.setdefault(r["model"], []).append(r)
    first = sources[0]
    assert len(by_model[first.model_name]) == len(first.plan.rows)  # every row of a timed model, repeats too
    assert IN_CONTEXT_PROTOCOL.runs >= 5


def test_a_key_seen_in_several_models_gets_the_estimate_over_them(tmp_path) -> None:
    from profiles.lut import RowRef

    path = tmp_path / "t.lut"
    table = LatencyTable.open(path, TorchBackend(), form="train", timing="in_context", levels="none")
    for name, ms in (("a", 1.0), ("b", 9.0), ("c", 2.0)):
        table.add_in_context(name, [RowRef("k", label="row k")], [ms])
    assert table.entries["k"].median_ms == 2.0
    assert LatencyTable.load(path).entries["k"].median_ms == 2.0  # the file says the same
    with pytest.raises(Exception, match="in context"):
        table.measure(RowRef("other"), lambda key: (nn.Identity(), torch.zeros(1)))
    with pytest.raises(Exception, match="times rows in context"):
        LatencyTable.open(path, TorchBackend(), timing="isolated")


def test_show_checks_an_in_context_table_against_its_rows_now_and_warns_when_they_disagree(tmp_path, capsys) -> None:
    """An in-context table's entries move as models are timed after a calibration model (levels "none": a
    slower stretch moves them; test_lut_levels has the per-model levels that take it out): its check (and
    `zoo lut show`) takes the row sums a prediction takes now, not the ones kept at the model's moment, and a
    table off its own models by more than CHECK_WARN says so."""
    from profiles.lut import CHECK_WARN, RowRef, summarize_table

    path = tmp_path / "t.lut"
    table = LatencyTable.open(path, TorchBackend(), form="train", timing="in_context", levels="none")
    refs = [RowRef("a", label="row a"), RowRef("b", label="row b")]
    table.add_in_context("m", refs, [4.0, 6.0])
    rec = table.add_model("m", ["a", "b"], _stats(10.0))  # timed whole at the rows' moment: they add up
    assert rec.row_sum_ms == 10.0 and summarize_table(table).check_error == 0.0
    for name in ("later 1", "later 2"):  # the machine then ran 20% slower for the rest of the build
        table.add_in_context(name, refs, [4.8, 7.2])
    cal = table.save_fit()
    assert cal.row_sums_ms == pytest.approx((12.0,)) and cal.residuals_ms == pytest.approx((-2.0,))  # the same sums
    s = summarize_table(LatencyTable.load(path))
    [m] = s.models
    assert (m.row_sum_ms, m.measured_ms, m.predicted_ms) == (pytest.approx(12.0), 10.0, pytest.approx(12.0))
    assert s.check_error == pytest.approx(0.2) and s.check_error > CHECK_WARN
    assert LatencyTable.load(path).predict(["a", "b"]).total_ms == pytest.approx(12.0)  # what the check shows
    said = f"{path}: the table predicts its own calibration models 20.0% off (median, more than {CHECK_WARN:.0%})"
    assert s.warnings[0].startswith(said) and "rebuild it on a quiet device" in s.warnings[0]
    assert cli.main(["lut", "show", str(path)]) == 0
    captured = capsys.readouterr()
    assert "+20.0%" in captured.out and said in " ".join(captured.err.split())
    assert cli.main(["lut", "show", str(path), "--format", "json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["check_error"] == pytest.approx(0.2) and data["warnings"] == list(s.warnings)
    assert said in " ".join(captured.err.split())


def test_a_table_that_agrees_with_its_models_warns_nothing(tmp_path, tiny_yaml, quick, capsys) -> None:
    """`zoo lut build` prints the check; within CHECK_WARN (or on an isolated table, whose models are a
    fit's, not a check of rows that add up) there is nothing to warn of."""
    from profiles.lut import CHECK_WARN, summarize_table

    out = tmp_path / "t.lut"
    assert cli.main(["lut", "build", str(tiny_yaml), "--imgsz", "64", "--samples", "2", "--calibrate", "1",
                     "-o", str(out), "--no-progress"]) == 0
    s = summarize_table(LatencyTable.load(out))
    assert s.timing == "in_context" and s.check_error is not None
    assert ("the table predicts its own calibration models" in capsys.readouterr().err) == (s.check_error > CHECK_WARN)
    iso = tmp_path / "iso.lut"
    table = LatencyTable.open(iso, TorchBackend(), form="train", timing="isolated")
    table.measure_missing(["k"], lambda key: (nn.Identity(), torch.zeros(1)))
    row = table.entries["k"].median_ms
    for name, times in (("m1", 1.0), ("m2", 2.0), ("m3", 1.5)):  # one row sum, three totals: no fit meets all
        table.add_model(name, ["k"], _stats(row * times))
    table.save_fit()
    s = summarize_table(LatencyTable.load(iso))
    assert s.check_error > CHECK_WARN and s.warnings == ()


def test_an_old_table_without_timing_reads_as_isolated(tmp_path, quick) -> None:
    path = tmp_path / "old.lut"
    build_table(path, Params(), lut_sources([TINY], imgsz=64, samples=1, calibrate=0))
    lines = path.read_text().splitlines()
    head = json.loads(lines[0])
    assert head["timing"] == "isolated"  # a backend without time_in_context
    del head["timing"]
    path.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    assert LatencyTable.load(path).timing == "isolated"


def test_predict_plan_on_an_in_context_table_times_the_missing_candidate_whole(tmp_path, quick) -> None:
    sources = lut_sources([TINY], imgsz=64, samples=0)
    path = tmp_path / "ic.lut"
    build_table(path, TorchBackend(), sources, protocol=QUICK, model_protocol=QUICK)
    table = LatencyTable.open(path, TorchBackend())
    other = lut_sources([TINY], imgsz=64, samples=2, seed=5)[-1].plan
    missing = [r.key for r in plan_refs(other) if r.key not in table.entries]
    assert missing
    with pytest.raises(Exception, match="no latency entry"):
        predict_plan(table, other)
    pred = predict_plan(table, other, measure=True)
    assert all(k in table.entries for k in missing) and pred.total_ms > 0
