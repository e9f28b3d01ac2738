"""Per-model levels in in-context tables (profiles.lutlevels): a build's models timed at different speeds of the
device give entries at one level, and the table file, reloaded, says the same."""
from __future__ import annotations

import json
import random
import statistics

import pytest

from profiles.backends.torch_eager import TorchBackend
from profiles.latency import LatencyStats
from profiles.lut import DEFAULT_LEVELS, LatencyTable, LutError, RowRef, summarize_table
from profiles.lutlevels import MIN_SHARED_SHARE, Record, fit_levels, level_of


def _world(seed: int = 0, models: int = 40, keys: int = 60, per_model: int = 12):
    """True costs and levels, and the records a build of them would write (noise-free)."""
    rng = random.Random(seed)
    cost = {f"k{i}": rng.uniform(0.05, 8.0) for i in range(keys)}
    level = {f"m{j}": rng.uniform(0.85, 1.15) for j in range(models)}
    rows = {m: rng.sample(sorted(cost), per_model) for m in level}
    records = [Record(m, k, cost[k] * level[m]) for m in level for k in rows[m]]
    return cost, level, rows, records


def test_noise_free_records_give_back_the_planted_costs_and_levels_up_to_one_scale() -> None:
    """Within 0.2% of the truth where the levels spread by 30% (medians settle on a fixed point, not an
    exact solve: that is their robustness to a hiccup in one model)."""
    cost, level, _, records = _world()
    fit = fit_levels(records)
    scale = statistics.median(fit.entries[k] / cost[k] for k in cost)  # the gauge: the median level is 1
    assert all(fit.entries[k] == pytest.approx(cost[k] * scale, rel=2e-3) for k in cost)
    assert all(fit.levels[m] == pytest.approx(level[m] / scale, rel=2e-3) for m in level)
    assert statistics.median(fit.levels.values()) == pytest.approx(1.0, abs=1e-12)
    assert fit.fitted == frozenset(level) and fit.iterations < 50


def test_a_drifting_build_prices_candidates_at_one_level_where_plain_medians_price_when_rows_were_timed() -> None:
    """The device slows by 15% across a build in which each model brings rows of its own (as an in-context
    build's sources do) beside common ones: plain medians price a rare row at its model's moment; the fit
    prices every row at one level, so candidates' sums keep their true ratios."""
    rng = random.Random(1)
    common = {f"c{i}": rng.uniform(0.5, 8.0) for i in range(20)}
    cost = dict(common)
    records = []
    for j in range(120):
        drift = 1.0 + 0.15 * j / 119
        own = {f"m{j} r{i}": rng.uniform(0.5, 8.0) for i in range(3)}
        cost.update(own)
        for k in [*rng.sample(sorted(common), 10), *own]:
            records.append(Record(f"m{j}", k, cost[k] * drift * rng.uniform(0.99, 1.01)))
    leveled = fit_levels(records).entries
    plain = _plain_medians(records)
    rare = [k for k in cost if k not in common]
    candidates = [rng.sample(sorted(common), 10) + rng.sample(rare, 3) for _ in range(200)]
    truth = [sum(cost[k] for k in c) for c in candidates]

    def spread(entries: dict[str, float]) -> float:
        """The widest error of a candidate's sum once the table's overall level is divided out."""
        ratios = sorted(sum(entries[k] for k in c) / t for c, t in zip(candidates, truth))
        mid = ratios[len(ratios) // 2]
        return max(abs(r / mid - 1) for r in ratios)

    assert spread(leveled) < 0.005 and spread(plain) > 0.015  # 0.4% and 1.9% here


def _plain_medians(records: list[Record]) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    for r in records:
        by.setdefault(r.key, []).append(r.ms)
    return {k: statistics.median(v) for k, v in by.items()}


def test_models_timed_under_an_anchor_at_its_level_move_no_entry() -> None:
    """The gauge is each model's level against the one expected of it (the anchor in force): a search that
    appends candidates timed 20% slower under a x1.2 anchor leaves the build's entries where they were."""
    cost, level, rows, records = _world(seed=2)
    before = fit_levels(records)
    later = [Record(f"late {m}", k, cost[k] * level[m] * 1.2, expected=1.2) for m in list(level)[:30] for k in rows[m]]
    after = fit_levels(records + later)
    assert all(after.entries[k] == pytest.approx(before.entries[k], rel=1e-9) for k in cost)
    assert after.levels["late m0"] == pytest.approx(before.levels["m0"] * 1.2, rel=1e-9)


def test_a_model_sharing_too_little_keeps_its_expected_level() -> None:
    cost, _, _, records = _world(seed=3)
    shared_small = min(cost, key=cost.get)  # its one shared row is a sliver of its time
    lonely = [Record("lonely", shared_small, cost[shared_small] * 1.3, expected=1.1),
              Record("lonely", "only here", 100.0, expected=1.1)]
    fit = fit_levels(records + lonely)
    assert cost[shared_small] * 1.3 < MIN_SHARED_SHARE * (100.0 + cost[shared_small] * 1.3)
    assert "lonely" not in fit.fitted and fit.levels["lonely"] == 1.1
    assert fit.entries["only here"] == pytest.approx(100.0 / 1.1)


def test_level_of_a_new_model_is_the_time_weighted_median_of_its_known_rows() -> None:
    # known rows: 10 ms at ratio 1.2 outweighs two 1 ms rows at 0.5 and 3.0
    assert level_of([(12.0, 10.0), (0.5, 1.0), (3.0, 1.0), (40.0, None)]) == pytest.approx(1.2)
    assert level_of([(1.0, 1.0), (40.0, None)], expected=1.07) == 1.07  # known rows hold 2% of its time
    assert level_of([], expected=0.9) == 0.9


def test_records_must_be_finite_times() -> None:
    with pytest.raises(ValueError, match="finite"):
        fit_levels([Record("m", "k", float("nan"))])
    assert fit_levels([]).entries == {}


def _stats(ms: float) -> LatencyStats:
    return LatencyStats(median_ms=ms, p90_ms=ms, mean_ms=ms, cv=0.0, runs=30, warmup_runs=5, threads=1, device="cpu",
                        loadavg=None)


def test_a_slower_stretch_of_a_build_leaves_every_entry_at_one_level(tmp_path) -> None:
    """The scenario of test_lut_build's show-check test with the default levels: the device runs 20% slower
    after the first model, which alone holds row d. Plain medians price a, b, c slow and d fast; per-model
    levels bring d to the same level (the models' median, where a reload's fit puts it, in memory too), the
    check finds the table on its model at that model's level, and the file reloaded says the same."""
    assert DEFAULT_LEVELS == "per_model"
    path = tmp_path / "t.lut"
    table = LatencyTable.open(path, TorchBackend(), form="train", timing="in_context")
    refs = [RowRef("a", label="row a"), RowRef("b", label="row b"), RowRef("c", label="row c")]
    table.add_in_context("m", [*refs, RowRef("d")], [4.0, 6.0, 2.0, 1.0])
    table.add_model("m", ["a", "b", "c", "d"], _stats(13.0))
    for name in ("later 1", "later 2"):
        table.add_in_context(name, refs, [4.8, 7.2, 2.4])
    assert [table.entries[k].median_ms for k in "abcd"] == pytest.approx([4.8, 7.2, 2.4, 1.2])
    assert table.model_levels["m"] == pytest.approx(1 / 1.2) and table.model_levels["later 1"] == pytest.approx(1.0)
    again = LatencyTable.load(path)
    assert again.levels == "per_model" and json.loads(path.read_text().splitlines()[0])["levels"] == "per_model"
    assert again.model_levels == pytest.approx(table.model_levels)
    assert [again.entries[k].median_ms for k in "abcd"] == pytest.approx([4.8, 7.2, 2.4, 1.2])
    assert again.entries["a"].label == "row a"
    table.refit()
    assert {k: e.median_ms for k, e in table.entries.items()} == pytest.approx(
        {k: e.median_ms for k, e in again.entries.items()})
    none = LatencyTable.load(path, levels="none")  # the same records, plain medians: d keeps its fast minute
    assert [none.entries[k].median_ms for k in "abcd"] == pytest.approx([4.8, 7.2, 2.4, 1.0])
    summary = summarize_table(again)  # the check takes the model at its own level: its rows add up
    assert summary.models[0].level == pytest.approx(1 / 1.2) and summary.models[0].predicted_ms == pytest.approx(13.0)
    assert summary.check_error == pytest.approx(0.0, abs=1e-12) and not summary.warnings
    assert summary.levels == "per_model" and summary.level_range == pytest.approx((0.85, 1.0))  # of 1/1.2, 1, 1
    assert summarize_table(none).check_error == pytest.approx(15.4 / 13.0 - 1)  # the slow stretch is the error


def test_a_growing_table_follows_the_models_median_level_not_its_first_models(tmp_path) -> None:
    """A search's own table grows one candidate at a time. Its first model ran 10% fast; the next nine at the
    device's usual speed, each with a row of its own. The entries sit at the usual speed (the models' median),
    in memory as after a reload, and the first model's own row is brought there too."""
    path = tmp_path / "t.lut"
    table = LatencyTable.open(path, TorchBackend(), form="train", timing="in_context")
    common = [RowRef(k) for k in ("a", "b", "c")]
    cost = [5.0, 3.0, 2.0]
    table.add_in_context("first", [*common, RowRef("own 0")], [0.9 * c for c in [*cost, 1.0]])
    for i in range(1, 10):
        table.add_in_context(f"m{i}", [*common, RowRef(f"own {i}")], [*cost, 1.0])
    got = [table.entries[k].median_ms for k in ("a", "b", "c", "own 0", "own 5")]
    assert got == pytest.approx([*cost, 1.0, 1.0], rel=0.003)
    again = LatencyTable.load(path)
    assert [again.entries[k].median_ms for k in ("a", "b", "c", "own 0", "own 5")] == pytest.approx(got, rel=0.003)


def test_levels_are_fitted_with_the_tables_estimator(tmp_path) -> None:
    path = tmp_path / "t.lut"
    table = LatencyTable.open(path, TorchBackend(), form="train", timing="in_context")
    table.estimator = "trimmed_mean"
    for name, ms in (("a", [1.0, 2.0]), ("b", [1.0, 2.0]), ("c", [1.0, 2.0])):
        table.add_in_context(name, [RowRef("x"), RowRef("y")], ms)
    fit = fit_levels([Record(n, k, v) for n in "abc" for k, v in zip("xy", (1.0, 2.0))], "trimmed_mean")
    table.refit()
    assert table.entries["y"].median_ms == pytest.approx(fit.entries["y"]) == pytest.approx(2.0)


def test_a_table_without_the_setting_reads_as_built_and_a_bad_one_is_refused(tmp_path) -> None:
    path = tmp_path / "t.lut"
    LatencyTable.open(path, TorchBackend(), form="train", timing="in_context")
    header, *rest = path.read_text().splitlines()
    old = json.loads(header)
    del old["levels"]
    path.write_text(json.dumps(old) + "\n")
    assert LatencyTable.load(path).levels == "none"  # older tables keep the entries they were judged with
    with pytest.raises(ValueError, match="levels"):
        LatencyTable.load(path, levels="often")
    old["levels"] = "sometimes"
    path.write_text(json.dumps(old) + "\n")
    with pytest.raises(LutError, match="levels"):
        LatencyTable.load(path)


def test_opening_a_table_with_other_levels_is_refused(tmp_path) -> None:
    path = tmp_path / "t.lut"
    LatencyTable.open(path, TorchBackend(), form="train", timing="in_context", levels="none")
    with pytest.raises(LutError, match="levels are none, not per_model"):
        LatencyTable.open(path, TorchBackend(), levels="per_model")
    assert LatencyTable.open(path, TorchBackend()).levels == "none"
