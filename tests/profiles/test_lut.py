"""The latency table: append-as-measured and resume, fingerprint refusal, missing rows, corrupt files
(left byte for byte as they were), torn last lines, and the calibration fit on known answers."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from profiles.backends import BackendInfo, TorchBackend
from profiles.backends.base import settings_tuple
from profiles.fingerprint import device_fingerprint
from profiles.latency import LatencyStats, TimingProtocol
from profiles.lut import (LatencyTable, LutError, LutWarning, RowRef, UNCALIBRATED, fit_calibration)

QUICK = TimingProtocol(runs=2, warmup_runs=1, warmup_s=0.0)
KEYS = [f"conv:{c}" for c in (4, 8, 12, 16, 20)]


def make_conv(key: str) -> tuple[nn.Module, torch.Tensor]:
    """`conv:C`: a C -> C 3x3 conv at 8x8, the shape of what instantiate_row gives for a signature."""
    c = int(key.split(":")[1])
    return nn.Conv2d(c, c, 3, padding=1).eval(), torch.zeros(1, c, 8, 8)


class Counting:
    """A measuring callable that counts its calls and can stop the build (Ctrl-C) after `stop_after`."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[str] = []
        self.stop_after = stop_after

    def __call__(self, key: str):
        if self.stop_after is not None and len(self.calls) == self.stop_after:
            raise KeyboardInterrupt
        self.calls.append(key)
        return make_conv(key)


class Known:
    """A backend whose timings are known: row `conv:C` takes C ms; a whole model a * (its row sum) + b."""

    name, threads = "known", 1

    def __init__(self, a: float = 1.25, b: float = 3.0, version: str = "1") -> None:
        self.a, self.b, self.version = a, b, version

    def fingerprint(self) -> BackendInfo:
        return BackendInfo("known", self.version, "cpu", "float32", 1, settings_tuple({"a": self.a}))

    def time_row(self, module, inputs, protocol=TimingProtocol()) -> LatencyStats:
        return stats(float(module.in_channels))

    def time_model(self, model, shape, protocol=TimingProtocol()) -> LatencyStats:
        row_sum = sum(float(m.in_channels) for m in model)
        return stats(self.a * row_sum + self.b)


def stats(ms: float) -> LatencyStats:
    return LatencyStats(median_ms=ms, p90_ms=ms, mean_ms=ms, cv=0.0, runs=1, warmup_runs=0, threads=1,
                        device="cpu", loadavg=None)


@pytest.fixture
def built(tmp_path):
    """A table of the five KEYS measured by the torch backend."""
    path = tmp_path / "cpu.lut.jsonl"
    table = LatencyTable.open(path, TorchBackend(), protocol=QUICK)
    table.measure_missing(KEYS, make_conv)
    return path


# ---- building and resuming -------------------------------------------------------------------------------
def test_build_appends_one_line_per_entry_and_reads_back(built) -> None:
    lines = built.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "zoo-lut" and header["version"] == 2
    assert header["fingerprint"] == device_fingerprint(TorchBackend()).as_dict()
    assert header["protocol"] == header["model_protocol"] == QUICK.as_dict() and header["form"] == "train"
    assert [json.loads(x)["key"] for x in lines[1:]] == KEYS
    table = LatencyTable.load(built)
    assert list(table.entries) == KEYS and table.protocol == QUICK
    assert all(e.runs == QUICK.runs and e.median_ms > 0 for e in table.entries.values())
    assert table.fingerprint == device_fingerprint(TorchBackend())


def test_resumed_build_measures_only_what_is_missing(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    first = Counting(stop_after=2)
    table = LatencyTable.open(path, TorchBackend(), protocol=QUICK)
    with pytest.raises(KeyboardInterrupt):
        table.measure_missing(KEYS + KEYS[:2], first)  # repeats are measured once
    assert first.calls == KEYS[:2]
    kept = path.read_bytes()
    assert len(kept.splitlines()) == 1 + 2  # the interrupted build kept what it measured

    second = Counting()
    resumed = LatencyTable.open(path, TorchBackend())  # the stored protocol is used
    progress: list[tuple[str, int, int]] = []
    measured = resumed.measure_missing(KEYS, second, on_measured=lambda e, i, n: progress.append((e.key, i, n)))
    assert measured == tuple(KEYS[2:]) and second.calls == KEYS[2:]
    assert progress == [(k, i, 3) for i, k in enumerate(KEYS[2:], 1)]
    assert path.read_bytes().startswith(kept)  # the first entries stand as they were
    again = LatencyTable.open(path, TorchBackend())
    assert again.measure_missing(KEYS, Counting()) == () and list(again.entries) == KEYS


def test_resume_with_another_protocol_is_refused(built) -> None:
    before = built.read_bytes()
    with pytest.raises(LutError, match=r"another timing protocol: runs 2 \(table\) vs 5 \(asked\)"):
        LatencyTable.open(built, TorchBackend(), protocol=TimingProtocol(runs=5, warmup_runs=1, warmup_s=0.0))
    assert built.read_bytes() == before


# ---- fingerprints ----------------------------------------------------------------------------------------
def test_another_fingerprint_is_refused_naming_the_fields(built) -> None:
    before = built.read_bytes()
    with pytest.raises(LutError) as e:
        LatencyTable.open(built, TorchBackend(threads=2))
    assert "threads 1 (table) vs 2 (here)" in str(e.value) and str(built) in str(e.value)
    table = LatencyTable.load(built)
    with pytest.raises(LutError, match=r"dtype float32 \(table\) vs float64 \(here\)"):
        table.check(device_fingerprint(TorchBackend(dtype=torch.float64)))
    assert built.read_bytes() == before


def test_forced_table_prices_but_never_grows(built) -> None:
    before = built.read_bytes()
    table = LatencyTable.open(built, TorchBackend(threads=2), force=True)
    assert table.predict(KEYS[:2]).row_sum_ms == pytest.approx(sum(table.entries[k].median_ms for k in KEYS[:2]))
    with pytest.raises(LutError, match="reading only"):
        table.predict(["conv:24"], measure=make_conv)
    assert built.read_bytes() == before


# ---- missing rows ----------------------------------------------------------------------------------------
def test_missing_row_is_an_error_naming_the_row(built) -> None:
    table = LatencyTable.load(built)
    ref = RowRef("conv:24", row=7, module="C3", file="mine.yaml")
    with pytest.raises(LutError) as e:
        table.predict([RowRef(KEYS[0], row=0, module="Conv"), ref])
    assert str(e.value).startswith("mine.yaml: row 7 (C3): no latency entry") and "conv:24" in str(e.value)
    with pytest.raises(LutError, match="key conv:24"):
        table.predict(["conv:24"])


def test_missing_row_is_measured_and_appended_on_the_device(built) -> None:
    table = LatencyTable.open(built, TorchBackend())
    maker = Counting()
    p = table.predict(KEYS[:1] + ["conv:24", "conv:24"], measure=maker)
    assert maker.calls == ["conv:24"]  # measured once, counted twice
    assert p.row_sum_ms == pytest.approx(table.entries[KEYS[0]].median_ms + 2 * table.entries["conv:24"].median_ms)
    assert "conv:24" in LatencyTable.load(built).entries
    with pytest.raises(LutError, match="reading only"):
        LatencyTable.load(built).measure("conv:28", make_conv)


# ---- corrupt files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage,message", [
    (lambda b: b.replace(b'"key": "conv:8"', b'"key": "conv:8', 1), "line 3 is not valid JSON"),
    (lambda b: b.replace(b'"median_ms": ', b'"median_ms": "x", "was": ', 1), "line 2: median_ms must be a finite"),
    (lambda b: b.replace(b'"kind": "row"', b'"kind": "rows"', 1), "line 2: unknown kind 'rows'"),
    (lambda b: b"garbage\n" + b, "not a zoo latency table: the first line is not JSON"),
    (lambda b: b.replace(b'"zoo-lut"', b'"other"', 1), 'lacks "format": "zoo-lut"'),
    (lambda b: b.replace(b'"version": 2', b'"version": 9', 1), "version 9; this zoo reads version 2"),
    (lambda b: b.replace(b'"version": 2', b'"version": 1', 1), r"version 1; this zoo reads version 2 \(rebuild"),
    (lambda b: b.replace(b'"form": "train"', b'"form": "fused"', 1), "bad header: form= must be one of"),
    (lambda b: b.replace(b'"cpu_model"', b'"cpu"', 1), "fingerprint lacks cpu_model; has unknown cpu"),
    (lambda b: b"", "empty file"),
])
def test_corrupt_table_is_a_clear_error_and_left_as_it_is(built, damage, message) -> None:
    bad = damage(built.read_bytes())
    built.write_bytes(bad)
    for read in (LatencyTable.load, lambda p: LatencyTable.open(p, TorchBackend())):
        with pytest.raises(LutError, match=message) as e:
            read(built)
        assert "\n" not in str(e.value)
        assert built.read_bytes() == bad
    assert sorted(p.name for p in built.parent.iterdir()) == [built.name]


def test_torn_last_line_is_set_aside_by_a_resumed_build(built) -> None:
    torn = built.read_bytes() + b'{"kind": "row", "key": "conv:24", "med'
    built.write_bytes(torn)
    with pytest.warns(LutWarning, match="torn"):
        table = LatencyTable.load(built)
    assert list(table.entries) == KEYS and built.read_bytes() == torn  # reading never touches the file

    with pytest.warns(LutWarning, match="kept in"):
        table = LatencyTable.open(built, TorchBackend())
    assert table.set_aside is not None and table.set_aside.read_bytes() == torn  # nothing lost
    table.measure("conv:24", make_conv)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(LatencyTable.load(built).entries) == KEYS + ["conv:24"]


def test_last_line_without_its_newline_is_kept(built) -> None:
    built.write_bytes(built.read_bytes().rstrip(b"\n"))
    table = LatencyTable.open(built, TorchBackend())
    assert list(table.entries) == KEYS
    table.measure("conv:24", make_conv)
    assert list(LatencyTable.load(built).entries) == KEYS + ["conv:24"]


# ---- calibration -----------------------------------------------------------------------------------------
def test_fit_recovers_a_known_line() -> None:
    sums = [10.0, 20.0, 35.0, 50.0]
    cal = fit_calibration(sums, [1.1 * s + 2.5 for s in sums], ["a", "b", "c", "d"])
    assert cal.method == "least squares" and cal.models == ("a", "b", "c", "d")
    assert cal.a == pytest.approx(1.1, abs=1e-12) and cal.b == pytest.approx(2.5, abs=1e-10)
    assert cal.residuals_ms == pytest.approx([0.0] * 4, abs=1e-10)
    assert cal.predict(40.0) == pytest.approx(46.5, abs=1e-10)


def test_fit_residuals_on_noisy_data_are_measured_minus_predicted() -> None:
    sums = [12.0, 18.0, 30.0, 41.0, 55.0]
    measured = [21.1, 27.6, 41.2, 53.3, 68.0]  # about 1.1 x + 8: an intercept a plain ratio cannot give
    cal = fit_calibration(sums, measured)
    assert cal.method == "least squares"
    a, b = np.polyfit(sums, measured, 1, w=1 / np.asarray(measured))  # an independent relative least-squares line
    assert (cal.a, cal.b) == (pytest.approx(a, rel=1e-9), pytest.approx(b, rel=1e-9))
    assert cal.residuals_ms == pytest.approx([m - (a * s + b) for s, m in zip(sums, measured)], abs=1e-9)
    rel = np.asarray(cal.residuals_ms) / np.asarray(measured)
    assert np.sum(rel / np.asarray(measured)) == pytest.approx(0.0, abs=1e-9)  # normal equation of the intercept
    assert cal.relative_residuals == pytest.approx([r / m for r, m in zip(cal.residuals_ms, measured)])


def relative_ratio(sums, measured) -> float:
    """The a of measured = a * sum with the least squared relative residuals (an independent lstsq)."""
    s, m = np.asarray(sums), np.asarray(measured)
    (a,), *_ = np.linalg.lstsq((s / m)[:, None], np.ones_like(m), rcond=None)
    return float(a)


def test_fit_with_too_few_models() -> None:
    one = fit_calibration([20.0], [25.0], ["m"])
    assert (one.method, one.b, one.residuals_ms) == ("ratio", 0.0, pytest.approx((0.0,), abs=1e-12))
    assert one.a == pytest.approx(1.25, rel=1e-12)
    same = fit_calibration([20.0, 20.0], [24.0, 26.0])
    a = relative_ratio([20.0, 20.0], [24.0, 26.0])
    assert (same.method, same.a) == ("ratio", pytest.approx(a, rel=1e-12))
    assert same.residuals_ms == pytest.approx((24.0 - 20 * a, 26.0 - 20 * a))
    assert fit_calibration([], []) is UNCALIBRATED
    with pytest.raises(ValueError, match="> 0"):
        fit_calibration([0.0, 1.0], [1.0, 2.0])


def test_fit_keeps_a_line_only_where_it_predicts_unseen_models_better() -> None:
    """Sums that barely differ under noise tip a line's slope (here negative): the ratio stands."""
    sums, measured = [100.0, 101.0, 102.0, 103.0], [121.0, 118.0, 124.5, 117.0]
    assert np.polyfit(sums, measured, 1, w=1 / np.asarray(measured))[0] < 0
    cal = fit_calibration(sums, measured)
    assert (cal.method, cal.b) == ("ratio", 0.0) and cal.a == pytest.approx(relative_ratio(sums, measured))
    proportional = [1.2 * s for s in (10.0, 20.0, 40.0)]  # no intercept: the ratio is as good and simpler
    nudged = [proportional[0] * 1.01, proportional[1] * 0.99, proportional[2] * 1.005]
    assert fit_calibration([10.0, 20.0, 40.0], nudged).method == "ratio"


def test_table_calibration_predicts_the_known_totals(tmp_path) -> None:
    path = tmp_path / "known.jsonl"
    backend = Known(a=1.25, b=3.0)
    table = LatencyTable.open(path, backend, protocol=QUICK)
    models = {"small": [4, 8], "mid": [8, 12, 16], "big": [12, 16, 20, 20]}
    for name, cs in models.items():
        keys = [f"conv:{c}" for c in cs]
        with pytest.raises(LutError, match="measure its rows first"):
            table.measure_model(name, nn.Sequential(*[make_conv(k)[0] for k in keys]), (1, cs[0], 8, 8), keys)
        table.measure_missing(keys, make_conv)
        rec = table.measure_model(name, nn.Sequential(*[make_conv(k)[0] for k in keys]), (1, cs[0], 8, 8), keys)
        assert rec.row_sum_ms == sum(cs) and rec.median_ms == 1.25 * sum(cs) + 3.0
    assert table.calibration is None and not table.fit_is_current
    assert table.predict(["conv:4", "conv:8"]).calibration is UNCALIBRATED
    cal = table.save_fit()
    assert cal.a == pytest.approx(1.25) and cal.b == pytest.approx(3.0) and table.fit_is_current
    assert cal.models == ("small", "mid", "big") and cal.residuals_ms == pytest.approx([0, 0, 0], abs=1e-9)

    reread = LatencyTable.load(path)
    assert reread.calibration == cal and set(reread.models) == set(models)
    p = reread.predict(["conv:4", "conv:20", "conv:20"])
    assert (p.row_sum_ms, p.total_ms) == (44.0, pytest.approx(1.25 * 44 + 3.0))
    assert [ms for _, ms in p.rows] == [4.0, 20.0, 20.0]
    with pytest.raises(LutError, match=r"backend_version 1 \(table\) vs 2 \(here\)"):
        LatencyTable.open(path, Known(version="2"))


def test_fit_mode_identity_applies_nothing_and_keeps_the_check() -> None:
    """`identity` applies nothing and keeps the models' residuals as a check."""
    sums, measured = [10.0, 20.0, 40.0], [19.0, 30.0, 52.0]  # exactly 1.1 x + 8: the line mode takes it
    assert fit_calibration(sums, measured).method == "least squares"
    ident = fit_calibration(sums, measured, ["a", "b", "c"], mode="identity")
    assert (ident.method, ident.a, ident.b, ident.models) == ("identity", 1.0, 0.0, ("a", "b", "c"))
    assert ident.residuals_ms == pytest.approx((9.0, 10.0, 12.0)) and ident.predict(25.0) == 25.0
    with pytest.raises(ValueError, match="mode='guess': must be line or identity"):
        fit_calibration(sums, measured, mode="guess")
