"""Anchoring a latency table to its device's speed now (profiles.lutanchor, `zoo lut anchor`): the factor is
the median of the models' measured / predicted, every later prediction (the table's, the search's pricer,
`zoo profile --latency lut`) carries it, it survives a reload, and what cannot anchor says so in one line."""
from __future__ import annotations

import json
import re
import statistics
from dataclasses import replace

import pytest

import cli
from profiles import lutbuild
from profiles.backends import BackendInfo, TorchBackend
from profiles.backends.base import settings_tuple
from profiles.latency import LatencyStats, TimingProtocol
from profiles.lut import LatencyTable, LutError, predict_plan, summarize_table
from profiles.lutanchor import measure_anchor
from search.lutplans import ANCHOR_DRAWS, ANCHOR_SEED, anchor_sources
from zoo.limits import MAX_ANCHOR_ROUNDS
from profiles.lutbuild import build_table
from search.latency import TableLatency
from search.lutplans import lut_sources


@pytest.fixture
def tiny(test_module) -> dict:
    """tests/tiny.py's LUT config: five rows, what a test can afford to time."""
    return test_module("tiny.py").LUT


FAST = TimingProtocol(runs=2, warmup_runs=1, warmup_s=0.0)


def _stats(ms: float) -> LatencyStats:
    return LatencyStats(ms, ms, ms, 0.0, 1, 0, 1, "cpu", None)


def _params(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1000


class Slowing:
    """A device whose whole models take A * (their rows' parameters / 1000) + B ms, times `speed`; the
    speed moves the way a VM's regimes do, and per model when `by_model` says so (the anchor takes the median)."""

    name, threads, A, B = "params", 1, 1.3, 2.0

    def __init__(self) -> None:
        self.speed = 1.0
        self.by_model: dict[float, float] = {}  # a model's row sum -> its own extra factor
        self.timed = 0

    def fingerprint(self) -> BackendInfo:
        return BackendInfo("params", "1", "cpu", "float32", 1, settings_tuple({}))

    def time_row(self, module, inputs, protocol=TimingProtocol()) -> LatencyStats:
        return _stats(_params(module))

    def time_model(self, model, shape, protocol=TimingProtocol()) -> LatencyStats:
        self.timed += 1
        rows = sum(_params(m) for m in model.model)
        return _stats((self.A * rows + self.B) * self.speed * self.by_model.get(round(rows, 6), 1.0))


def test_an_anchor_scales_every_prediction_by_the_median_of_its_models(tmp_path, quick, tiny) -> None:
    device = Slowing()
    path = tmp_path / "t.lut"
    build_table(path, device, lut_sources([tiny], imgsz=64, samples=6, calibrate=3))
    table = LatencyTable.open(path, device)
    other = lut_sources([tiny], imgsz=64, samples=8, seed=7)[-1].plan
    before = predict_plan(table, other, measure=True).total_ms
    whole = device.time_model(lutbuild._whole(lut_sources([tiny], imgsz=64, samples=8, seed=7)[-1], "train"), None)
    assert before == pytest.approx(whole.median_ms)  # the line fits this device exactly, at the build's speed
    pricer = TableLatency(table)
    assert pricer.price(other)[0].median_ms == pytest.approx(before)

    device.speed = 1.25  # the device runs 25% slower now; one anchor model slower still (a noisy one)
    anchors = lut_sources([tiny], imgsz=64, samples=2)
    first_sum = sum(_params(m) for m in lutbuild._whole(anchors[0], "train").model)
    device.by_model[round(first_sum, 6)] = 1.5
    device.timed = 0
    anchor = measure_anchor(table, anchors, rounds=2)
    assert device.timed == 2 * len(anchors)  # every model in every round
    ratios = [m.ratio for m in anchor.models]
    assert sorted(ratios) == pytest.approx([1.25, 1.25, 1.25 * 1.5])
    assert anchor.factor == pytest.approx(statistics.median(ratios)) == pytest.approx(1.25)
    assert anchor.note == "the device runs 25.0% slower than when the table was built"
    assert predict_plan(table, other).total_ms == pytest.approx(1.25 * before)
    assert pricer.price(other)[0].median_ms == pytest.approx(1.25 * before)  # the search's pricer too

    again = LatencyTable.load(path)  # the anchor is in the file; the latest one stands
    assert again.anchor == anchor and again.predict([r.key for r in lutbuild.plan_refs(other)]).total_ms == \
        pytest.approx(1.25 * before)
    device.speed, device.by_model = 0.9, {}
    later = measure_anchor(LatencyTable.open(path, device), anchors, rounds=1)
    assert later.factor == pytest.approx(0.9) and later.note is not None and "10.0% faster" in later.note
    assert replace(later, factor=1.04).note is None  # within ANCHOR_NOTE: nothing to say
    # each model's prediction is the table's before any anchor: a second anchor does not compound the first
    assert [m.predicted_ms for m in later.models] == pytest.approx([m.predicted_ms for m in anchor.models])
    assert LatencyTable.load(path).anchor == later
    s = summarize_table(LatencyTable.load(path))
    assert s.anchor == later and s.as_dict()["anchor"]["factor"] == pytest.approx(0.9)
    assert all(m.error == pytest.approx(0.0) for m in s.models)  # the build's check stays the build's


def test_an_anchor_needs_the_tables_device_models_and_rounds(tmp_path, quick, tiny) -> None:
    device = Slowing()
    path = tmp_path / "t.lut"
    build_table(path, device, lut_sources([tiny], imgsz=64, samples=1, calibrate=1))
    before = path.read_bytes()
    with pytest.raises(LutError, match="open for reading only"):
        measure_anchor(LatencyTable.load(path), lut_sources([tiny], imgsz=64))
    with pytest.raises(LutError, match="at least one model"):
        measure_anchor(LatencyTable.open(path, device), [])
    for rounds in (0, MAX_ANCHOR_ROUNDS + 1):  # bounded before any model is built
        with pytest.raises(LutError, match=f"rounds must be 1 to {MAX_ANCHOR_ROUNDS}, got {rounds}"):
            measure_anchor(LatencyTable.open(path, device), lut_sources([tiny], imgsz=64), rounds=rounds)
    assert path.read_bytes() == before


@pytest.mark.parametrize("record, why", [
    ({"factor": 0.0}, "factor must be > 0"),
    ({"factor": "fast"}, "factor must be a finite number"),
    ({"measured_ms": [1.0, 2.0]}, "lists of one length"),
    ({"predicted_ms": [0.0]}, "must be > 0"),
    ({"models": []}, "non-empty"),
])
def test_a_bad_anchor_record_is_one_line_naming_the_line(tmp_path, quick, record, why, tiny) -> None:
    path = tmp_path / "t.lut"
    build_table(path, Slowing(), lut_sources([tiny], imgsz=64))
    good = {"kind": "anchor", "at": "2026-12-07T00:00:00+00:00", "factor": 1.1, "rounds": 1, "models": ["m"],
            "predicted_ms": [2.0], "measured_ms": [2.2]}
    n = len(path.read_text().splitlines()) + 1
    path.write_text(path.read_text() + json.dumps({**good, **record}) + "\n")
    with pytest.raises(LutError, match=f"line {n}: .*{why}"):
        LatencyTable.load(path)


def test_anchor_sources_are_candidates_the_table_prices_whole(tmp_path, quick, tiny) -> None:
    """An anchor times candidates whose every row the table holds (not its own models, not ones it would
    have to measure into it), drawn with ANCHOR_SEED; 0 samples: the configs; none priced whole: one line."""
    path = tmp_path / "t.lut"
    build_table(path, Slowing(), lut_sources([tiny], imgsz=64, samples=6, calibrate=1))
    table = LatencyTable.load(path)
    picked = anchor_sources(table, [tiny], imgsz=64, samples=3)
    assert len(picked) == 3 and all(f"(seed {ANCHOR_SEED})" in s.name for s in picked)
    assert all(r.key in table.entries for s in picked for r in lutbuild.plan_refs(s.plan))
    drawn = [s.plan for s in lut_sources([tiny], imgsz=64, samples=3 * ANCHOR_DRAWS, seed=ANCHOR_SEED)[1:]]
    whole = [p for p in drawn if all(r.key in table.entries for r in lutbuild.plan_refs(p))]
    assert [lutbuild.plan_refs(s.plan) for s in picked] == [lutbuild.plan_refs(p) for p in whole[:3]]  # the first
    assert len(whole) < len(drawn)  # some drawn candidates lack a row: those are passed over
    configs = anchor_sources(table, [tiny], imgsz=64, samples=0)
    assert [(s.name, s.plan.rows) for s in configs] == [(c.name, c.plan.rows) for c in lut_sources([tiny], imgsz=64)]
    n = len(lut_sources([tiny], imgsz=96, samples=ANCHOR_DRAWS, seed=ANCHOR_SEED)) - 1  # 50 draws, repeats once
    with pytest.raises(LutError, match=rf"none of {n} candidates of its space at 96 px \(seed 2\) has every row"):
        anchor_sources(table, [tiny], imgsz=96, samples=1)  # the table holds no row at 96 px


class SlowingRows(Slowing):
    """Slowing whose rows, timed alone, run at the device's speed too."""

    def time_row(self, module, inputs, protocol=TimingProtocol()) -> LatencyStats:
        return _stats(_params(module) * self.speed)


def test_a_row_timed_under_an_anchor_is_kept_at_the_tables_level(tmp_path, quick, tiny) -> None:
    """A row the table lacks, timed while an anchor of x1.25 stands, ran 1.25 x slower than at the build: its
    record keeps the time and the factor, its entry is the time / 1.25, so the anchored prediction of a model
    with that row is the device's time now, not 1.25 x too slow (in this process and after a reload)."""
    device = SlowingRows()
    path = tmp_path / "t.lut"
    build_table(path, device, lut_sources([tiny], imgsz=64, samples=2, calibrate=3))
    table = LatencyTable.open(path, device)
    source = next(s for s in lut_sources([tiny], imgsz=64, samples=20, seed=7)[1:]  # the point: a row timed
                  if any(r.key not in table.entries for r in lutbuild.plan_refs(s.plan)))  # after the anchor
    refs = lutbuild.plan_refs(source.plan)
    missing = {r.key for r in refs} - set(table.entries)
    device.speed = 1.25
    anchor = measure_anchor(table, lut_sources([tiny], imgsz=64, samples=2), rounds=1)
    assert anchor.factor == pytest.approx(1.25)
    now = device.time_model(lutbuild._whole(source, "train"), None).median_ms
    assert predict_plan(table, source.plan, measure=True).total_ms == pytest.approx(now)
    records = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    late = [r for r in records if r.get("kind") == "row" and r["key"] in missing]
    assert late and all(r["anchor"] == pytest.approx(1.25) for r in late)
    assert all(table.entries[r["key"]].median_ms == pytest.approx(r["median_ms"] / 1.25) for r in late)
    assert not any("anchor" in r for r in records if r.get("kind") == "row" and r not in late)
    assert LatencyTable.load(path).predict(refs).total_ms == pytest.approx(now)


def test_an_in_context_row_timed_under_an_anchor_is_kept_at_the_tables_level(tmp_path, quick, tiny) -> None:
    """The in-context path (rows timed in a whole model's passes, one sample per model): the same rule."""
    from profiles.lut import Anchor, AnchorModel, RowRef

    path = tmp_path / "ic.lut"
    build_table(path, TorchBackend(), lut_sources([tiny], imgsz=64), protocol=FAST, model_protocol=FAST)
    table = LatencyTable.open(path, TorchBackend())
    assert table.timing == "in_context"
    table.add_anchor(Anchor("2026-12-07T00:00:00+00:00", 0.8, 1, (AnchorModel("m", 10.0, 8.0),)))
    table.add_in_context("late", [RowRef("new-key", label="late row")], [3.0])
    assert table.entries["new-key"].median_ms == pytest.approx(3.0 / 0.8)
    record = json.loads(path.read_text().splitlines()[-1])
    assert record["median_ms"] == 3.0 and record["anchor"] == 0.8  # what was measured, and under what
    again = LatencyTable.load(path)
    assert again.entries["new-key"].median_ms == pytest.approx(3.0 / 0.8)
    assert again.predict(["new-key"]).row_sum_ms == pytest.approx(3.0 / 0.8)


def test_calibration_models_timed_under_an_anchor_are_kept_at_the_tables_level(tmp_path, quick, tiny) -> None:
    """A build resumed on an anchored table (more candidates, more calibration models) times its models at
    today's level: they are stored divided by the factor, so the fit stays the table's and the prediction of
    any candidate is still its time now (without this, a refit folds the factor in and the anchor applies it
    again: 1.25 x 1.25)."""
    device = SlowingRows()
    path = tmp_path / "t.lut"
    build_table(path, device, lut_sources([tiny], imgsz=64, samples=2, calibrate=3))
    device.speed = 1.25
    assert measure_anchor(LatencyTable.open(path, device), lut_sources([tiny], imgsz=64, samples=2),
                          rounds=1).factor == pytest.approx(1.25)
    before = set(LatencyTable.load(path).models)
    build_table(path, device, lut_sources([tiny], imgsz=64, samples=8, calibrate=8))  # resumed: 6 more models
    table = LatencyTable.load(path)
    late = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    late = [r for r in late if r.get("kind") == "model" and r["name"] not in before]
    assert len(late) >= 2 and all(r["anchor"] == pytest.approx(1.25) for r in late)
    assert all(table.models[r["name"]].median_ms == pytest.approx(r["median_ms"] / 1.25) for r in late)
    assert table.calibration.a == pytest.approx(device.A) and table.calibration.b == pytest.approx(device.B)
    other = next(s for s in lut_sources([tiny], imgsz=64, samples=20, seed=7)[1:]
                 if all(r.key in table.entries for r in lutbuild.plan_refs(s.plan)))
    now = device.time_model(lutbuild._whole(other, "train"), None).median_ms
    assert predict_plan(table, other.plan).total_ms == pytest.approx(now)


def test_an_anchor_refuses_a_model_the_table_does_not_price_whole(tmp_path, quick, tiny) -> None:
    """A row timed for an anchor would be at the very level the anchor is measuring: one line naming the model
    and the row, before anything is timed, and nothing written."""
    device = Slowing()
    path = tmp_path / "t.lut"
    build_table(path, device, lut_sources([tiny], imgsz=64))
    before = path.read_bytes()
    source = next(s for s in lut_sources([tiny], imgsz=64, samples=20, seed=7)[1:]
                  if any(r.key not in LatencyTable.load(path).entries for r in lutbuild.plan_refs(s.plan)))
    device.timed = 0
    with pytest.raises(LutError, match=rf"{re.escape(source.model_name)}: \d+ of its rows are not in the table \(row \d+: .*"
                                       r"an anchor times models the table prices whole"):
        measure_anchor(LatencyTable.open(path, device), [source])
    assert device.timed == 0 and path.read_bytes() == before


@pytest.mark.parametrize("bad", [0, -1.0, "x", None])
def test_a_row_records_bad_anchor_is_one_line_naming_the_line(tmp_path, quick, tiny, bad) -> None:
    path = tmp_path / "t.lut"
    build_table(path, Slowing(), lut_sources([tiny], imgsz=64))
    before = path.read_text()
    row = next(json.loads(line) for line in before.splitlines() if '"kind": "row"' in line)
    n = len(before.splitlines()) + 1
    path.write_text(before + json.dumps({**row, "key": "other", "anchor": bad}) + "\n")
    with pytest.raises(LutError, match=f"line {n}: anchor must be"):
        LatencyTable.load(path)
    model = next(json.loads(line) for line in before.splitlines() if '"kind": "model"' in line)
    path.write_text(before + json.dumps({**model, "name": "other", "anchor": bad}) + "\n")
    with pytest.raises(LutError, match=f"line {n}: anchor must be"):  # a model record's alike
        LatencyTable.load(path)


def test_anchor_sources_say_when_fewer_candidates_than_asked_qualify(tmp_path, quick, tiny, monkeypatch) -> None:
    """When only some of the drawn candidates are priced whole, the anchor times those and a LutWarning says
    how many of how many asked (the record alone would show it)."""
    from profiles.lut import LutWarning
    from search import lutplans
    from search.settings import load_settings
    from search.space import build_space
    from zoo.config import load_config

    path = tmp_path / "t.lut"
    build_table(path, Slowing(), lut_sources([tiny], imgsz=64, samples=6, calibrate=1))
    table = LatencyTable.load(path)
    cfg = load_config(tiny)
    space = build_space(cfg, load_settings(cfg))
    whole = {}

    def priced_whole(params: dict) -> bool:
        key = tuple(sorted(params.items()))
        if key not in whole:
            whole[key] = all(r.key in table.entries for r in lutbuild.plan_refs(space.plan(params, imgsz=64)))
        return whole[key]

    monkeypatch.setattr(lutplans, "ANCHOR_DRAWS", 1)  # `samples` draws: the first s candidates of seed 2
    counts = {s: sum(map(priced_whole, space.sample(s, seed=ANCHOR_SEED))) for s in range(1, 60)}
    asked = next(s for s, found in counts.items() if 0 < found < s)
    drawn = len(space.sample(asked, seed=ANCHOR_SEED))  # a draw repeated is one candidate
    with pytest.warns(LutWarning, match=rf"only {counts[asked]} of {drawn} candidates of its space at 64 px "
                                        rf"\(seed 2\) have every row in the table: the anchor times {counts[asked]}, "
                                        rf"not {asked}"):
        picked = anchor_sources(table, [tiny], imgsz=64, samples=asked)
    assert len(picked) == counts[asked]


def test_cli_anchor_then_show_and_profile_carry_it(tmp_path, tiny_yaml, quick, capsys) -> None:
    """`zoo lut anchor` on an in-context torch table (the default build): the factor printed, `lut show` and
    `profile --latency lut` report it, and the profile's total is the table's sum times the factor."""
    out = tmp_path / "t.lut"
    assert cli.main(["lut", "build", str(tiny_yaml), "--imgsz", "64", "--samples", "2", "--calibrate", "1",
                     "-o", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["lut", "anchor", str(tiny_yaml), "--imgsz", "64", "--samples", "1", "--rounds", "1",
                     "--lut", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    anchor = LatencyTable.load(out).anchor
    assert anchor is not None and len(anchor.models) == 1 and f"median x{anchor.factor:.3f}" in text
    assert "(seed 2)" in anchor.models[0].name  # a candidate the table prices whole, not one of its own
    assert cli.main(["lut", "show", str(out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["anchor"]["factor"] == pytest.approx(anchor.factor)
    assert cli.main(["lut", "show", str(out)]) == 0
    assert f"x{anchor.factor:.3f} since {anchor.at}" in capsys.readouterr().out
    assert cli.main(["profile", str(tiny_yaml), "--imgsz", "64", "--latency", "lut", "--lut", str(out),
                     "--format", "json"]) == 0
    profile = json.loads(capsys.readouterr().out)[0]
    latency = profile["latency"]
    table = LatencyTable.load(out)
    row_sum = table.predict([r.key for r in lutbuild.plan_refs(lut_sources([str(tiny_yaml)], imgsz=64)[0].plan)]).row_sum_ms
    assert latency["anchored"] == anchor.at and latency["calibration"]["a"] == pytest.approx(anchor.factor)
    assert latency["row_sum_ms"] == pytest.approx(row_sum, rel=1e-3)
    assert profile["latency_ms"]["median"] == pytest.approx(row_sum * anchor.factor, rel=1e-3)


def test_cli_anchor_refuses_another_device_and_bad_counts_in_one_line(tmp_path, tiny_yaml, quick, capsys) -> None:
    out = tmp_path / "t.lut"
    assert cli.main(["lut", "build", str(tiny_yaml), "--imgsz", "64", "-o", str(out), "--no-progress"]) == 0
    lines = out.read_text().splitlines()
    head = json.loads(lines[0])
    head["fingerprint"]["cpu_model"] = "Cortex-A76"  # a Raspberry Pi 5's table: priced here, never measured into
    out.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    before = out.read_bytes()
    capsys.readouterr()
    for extra, said in ((["--samples", "101"], "--samples must be 0 to 100, got 101"),
                        ([], "measuring here needs the table's own device")):
        assert cli.main(["lut", "anchor", str(tiny_yaml), "--imgsz", "64", "--lut", str(out), "--no-progress",
                         *extra]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith(f"error: {out}: ") and said in err
    assert "cpu_model" in err and out.read_bytes() == before


def test_torch_backend_anchor_on_a_real_in_context_table(tmp_path, quick, tiny) -> None:
    """The real path end to end on eager torch: the factor is a measured ratio near 1 on a quiet process."""
    path = tmp_path / "ic.lut"
    build_table(path, TorchBackend(), lut_sources([tiny], imgsz=64, samples=1), protocol=FAST, model_protocol=FAST)
    anchor = measure_anchor(LatencyTable.open(path, TorchBackend()), lut_sources([tiny], imgsz=64, samples=1), rounds=1)
    assert len(anchor.models) == 2 and all(m.measured_ms > 0 and m.predicted_ms > 0 for m in anchor.models)
    assert anchor.factor == pytest.approx(statistics.median(m.ratio for m in anchor.models))
