"""`zoo profile --backend onnxruntime` (the whole graph and each row alone, mapped back to YAML rows, the
ratio of rows to total stated) and `zoo profile --latency lut` (entries per row, the calibrated total;
missing rows measured on the device, or an error naming the row); the batched ORT row path."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

import cli
from profiles import lutbuild, rowtiming
from profiles.backends import BackendError, get_backend
from profiles.backends.base import model_timer
from profiles.latency import LatencyStats, TimingProtocol
from profiles.lut import LatencyTable, plan_refs
from profiles.lutbuild import build_table
from profiles.rowtiming import capture_row_inputs, time_rows
from search.lutplans import lut_sources
from zoo import build_model
from zoo.plan import plan_config

DISTINCT = {"family": "ultralytics", "nc": 3, "backbone": [  # every row differs in module, args or inputs
    [-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [32, 3, 2]], [-1, 1, "C2f", [32, True]],
    [-1, 1, "Conv", [64, 3, 2]], [-1, 1, "SPPF", [64, 5]]],
    "head": [[-1, 1, "nn.Upsample", [None, 2, "nearest"]], [[-1, 2], 1, "Concat", [1]],
             [-1, 1, "C2f", [32, False]], [[7, 4], 1, "Detect", ["nc"]]]}
MODULES = [r[2] for r in DISTINCT["backbone"] + DISTINCT["head"]]
QUICK = TimingProtocol(runs=2, warmup_runs=1, warmup_s=0.0)


@pytest.fixture
def distinct_yaml(tmp_path):
    path = tmp_path / "distinct.yaml"
    path.write_text(yaml.safe_dump(DISTINCT))
    return path


@pytest.fixture
def ort():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")


def profile_json(capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert cli.main(["profile", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)[0]


def test_cli_ort_profile_maps_each_rows_own_timing_to_its_yaml_row(distinct_yaml, monkeypatch, capsys) -> None:
    """The CLI path of the per-row mapping: each row's time is a fingerprint of the module it was given
    (its parameter count, and 1000 + its input channels for the parameter-free rows)."""
    asked = []

    def spy(backend, items, protocol):
        for module, inputs in items:
            x = inputs if isinstance(inputs, list) else [inputs]
            asked.append((type(module).__name__, tuple(tuple(t.shape) for t in x)))
            n = sum(p.numel() for p in module.parameters()) or 1000 + sum(t.shape[1] for t in x)
            yield LatencyStats(float(n), float(n), float(n), 0.0, protocol.runs, 0, 1, "cpu", None)

    monkeypatch.setattr(rowtiming, "time_each", spy)
    monkeypatch.setattr(lutbuild, "BUILD_WARMUP_S", 0.0)
    model_calls = []
    monkeypatch.setattr("profiles.backends.base.model_timer", lambda b, m, s: lambda p: model_calls.append(s) or
                        LatencyStats(5.0, 6.0, 5.0, 0.0, p.runs, 0, 1, "cpu", None))
    pytest.importorskip("onnxruntime")
    data = profile_json(capsys, str(distinct_yaml), "--imgsz", "64", "--runs", "2", "--backend", "onnxruntime")
    model = build_model(DISTINCT)
    plan = plan_config(DISTINCT, imgsz=64)
    expected = [sum(p.numel() for p in m.parameters()) or 1000 + sum(s.channels for s in rp.inputs)
                for m, rp in zip(model.model, plan.rows)]
    assert [lay["module"] for lay in data["layers"]] == MODULES
    assert [lay["latency_ms"]["median"] for lay in data["layers"]] == expected  # row i got row i's timing
    assert len(set(expected)) == len(expected)  # so no two rows could have been swapped unnoticed
    assert [a[1] for a in asked] == [tuple((1, s.channels, s.height, s.width) for s in rp.inputs) for rp in plan.rows]
    assert model_calls == [(1, 3, 64, 64)] and data["latency_ms"]["median"] == 5.0
    how = data["latency"]
    assert (how["backend"], how["method"], how["rows"]) == ("onnxruntime", "measured", "alone")
    assert how["row_sum_ms"] == sum(expected) and how["calibration"]["a"] == pytest.approx(5.0 / sum(expected))
    shares = [lay["share"] for lay in data["layers"]]
    assert shares == pytest.approx([e / sum(expected) for e in expected], abs=1e-4)


@pytest.mark.slow
def test_cli_ort_profile_rows_sum_to_the_total_within_the_stated_ratio(distinct_yaml, ort, capsys) -> None:
    data = profile_json(capsys, str(distinct_yaml), "--imgsz", "64", "--runs", "2", "--backend", "onnxruntime")
    rows = [lay["latency_ms"]["median"] for lay in data["layers"]]
    assert len(rows) == len(MODULES) and all(ms > 0 for ms in rows)
    how = data["latency"]
    assert how["row_sum_ms"] == pytest.approx(sum(rows), abs=1e-3)
    assert how["calibration"]["a"] * how["row_sum_ms"] == pytest.approx(data["latency_ms"]["median"], rel=1e-3)
    assert data["latency_runs"] == 2
    capsys.readouterr()
    assert cli.main(["profile", str(distinct_yaml), "--imgsz", "64", "--runs", "2", "--backend", "onnxruntime"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "onnxruntime)" in text and "rows: timed alone" in text and "x the total (total = " in text


def test_cli_ort_profile_refuses_what_it_cannot_time(distinct_yaml, ort, capsys) -> None:
    assert cli.main(["profile", str(distinct_yaml), "--imgsz", "64", "--backend", "onnxruntime",
                     "--dtype", "float16"]) == 1
    assert "--dtype" in capsys.readouterr().err
    assert cli.main(["profile", str(distinct_yaml), "--imgsz", "64", "--backend", "onnxruntime", "--no-latency",
                     "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["latency"] is None  # --no-latency still counts only


def test_cli_lut_profile_prices_each_row_and_measures_missing_ones(tmp_path, distinct_yaml, monkeypatch,
                                                                   capsys) -> None:
    monkeypatch.setattr(lutbuild, "ROW_PROTOCOL", QUICK)
    monkeypatch.setattr(lutbuild, "MODEL_PROTOCOL", QUICK)
    monkeypatch.setattr(lutbuild, "BUILD_WARMUP_S", 0.0)
    path = tmp_path / "d.lut"
    build_table(path, get_backend("torch"), lut_sources([DISTINCT], imgsz=64))
    table = LatencyTable.load(path)
    refs = plan_refs(plan_config(DISTINCT, imgsz=64))
    data = profile_json(capsys, str(distinct_yaml), "--imgsz", "64", "--latency", "lut", "--lut", str(path))
    assert [lay["latency_ms"]["median"] for lay in data["layers"]] == [
        round(table.entries[r.key].median_ms, 4) for r in refs]
    cal = table.calibration
    row_sum = sum(table.entries[r.key].median_ms for r in refs)
    assert data["latency_ms"]["median"] == pytest.approx(cal.a * row_sum + cal.b, abs=1e-4)
    assert data["latency"]["method"] == "predicted" and data["latency"]["table"] == str(path)
    # another image size: every row is new; on this device they are measured and appended
    before = len(table.entries)
    data = profile_json(capsys, str(distinct_yaml), "--imgsz", "96", "--lut", str(path))
    assert len(LatencyTable.load(path).entries) == before + len(MODULES)
    # on another fingerprint the table is read only: a missing row is an error naming it and its export
    capsys.readouterr()
    assert cli.main(["profile", str(distinct_yaml), "--imgsz", "128", "--lut", str(path), "--threads", "2"]) == 1
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1  # one line, the profile's stage lines apart
    assert errors[0].startswith(f"error: {distinct_yaml}: row 0 (Conv): no latency entry for this row in {path}")
    assert '"Conv"' in errors[0] and f"zoo lut export {distinct_yaml} --imgsz 128 -o DIR" in errors[0]
    assert cli.main(["profile", str(distinct_yaml), "--imgsz", "64", "--lut", str(path), "--deploy"]) == 1
    assert "times the train form, not the deploy form" in capsys.readouterr().err
    assert cli.main(["profile", str(distinct_yaml), "--imgsz", "64", "--lut", str(path), "--batch", "2"]) == 1
    assert "--batch 2 cannot be priced by a latency table" in capsys.readouterr().err


# ---- the batched ORT row path ------------------------------------------------------------------------------
def test_ort_rows_exported_together_are_each_rows_own_graph(ort) -> None:
    from profiles.backends.onnxrt import export_rows, tensor_leaves

    backend = get_backend("onnxruntime")
    model = build_model(DISTINCT).eval()
    inputs = capture_row_inputs(model, torch.randn(1, 3, 64, 64))
    rows = [(model.model[i], inputs[i]) for i in range(len(MODULES))]
    graphs = export_rows(rows)
    assert graphs is not None and len(graphs) == len(rows)
    for (module, inp), (graph, names) in zip(rows, graphs):
        session = backend.session(graph)
        xs = inp if isinstance(inp, list) else [inp]
        wanted = {i.name for i in session.get_inputs()}
        got = session.run(None, {n: t.numpy() for n, t in zip(names, xs) if n in wanted})
        with torch.no_grad():
            want = tensor_leaves(module(inp))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            torch.testing.assert_close(torch.from_numpy(g), w, atol=1e-4, rtol=1e-4)


def test_ort_batch_with_a_row_it_cannot_export_names_that_row(ort, monkeypatch) -> None:
    model = build_model(DISTINCT)
    sppf = type(model.model[4])
    forward = sppf.forward

    def untraceable(self, x):
        if torch.compiler.is_exporting():
            raise RuntimeError("no ONNX form for this")
        return forward(self, x)

    monkeypatch.setattr(sppf, "forward", untraceable)
    with pytest.raises(BackendError, match=r"row 4 \(SPPF\): cannot export SPPF to ONNX"):
        time_rows(get_backend("onnxruntime"), model, imgsz=64, protocol=QUICK)


def test_timers_prepare_once_and_time_under_any_protocol(ort) -> None:
    model = build_model(DISTINCT).eval()
    for name in ("torch", "onnxruntime"):
        timer = model_timer(get_backend(name), model, (1, 3, 64, 64))
        short, long_ = timer(TimingProtocol(runs=1, warmup_runs=0, warmup_s=0.0)), timer(QUICK)
        assert (short.runs, long_.runs, long_.warmup_runs) == (1, 2, 1) and long_.median_ms > 0


def test_torch_rows_on_cuda_synchronise_around_every_call(monkeypatch) -> None:
    """The CUDA path of the batch and timer entry points on a CPU-only machine (placement patched)."""
    from profiles import latency
    from torch import nn

    syncs: list[object] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: syncs.append(device))
    monkeypatch.setattr(latency, "_to", lambda value, device, dtype: value)
    monkeypatch.setattr(nn.Module, "to", lambda self, *a, **k: self)
    backend = get_backend("torch", device="cuda")
    conv = nn.Conv2d(3, 4, 3).eval()
    stats = list(backend.time_rows([(conv, torch.randn(1, 3, 8, 8))] * 2, QUICK))
    assert [s.device for s in stats] == ["cuda", "cuda"]
    assert len(syncs) == 2 * (QUICK.warmup_runs + 2 * QUICK.runs)
    syncs.clear()
    backend.timer(conv, torch.randn(1, 3, 8, 8))(QUICK)
    assert len(syncs) == QUICK.warmup_runs + 2 * QUICK.runs


def test_an_ort_table_is_used_with_the_exporter_it_was_built_with(tmp_path, distinct_yaml, ort, monkeypatch,
                                                                   capsys) -> None:
    monkeypatch.setattr(lutbuild, "ROW_PROTOCOL", QUICK)
    monkeypatch.setattr(lutbuild, "MODEL_PROTOCOL", QUICK)
    monkeypatch.setattr(lutbuild, "BUILD_WARMUP_S", 0.0)
    path = tmp_path / "ts.lut"
    assert cli.main(["lut", "build", str(distinct_yaml), "--imgsz", "64", "--backend", "onnxruntime", "--exporter",
                     "torchscript", "-o", str(path), "--no-progress"]) == 0
    fp = LatencyTable.load(path).fingerprint
    assert (fp.backend, dict(fp.settings)["exporter"]) == ("onnxruntime", "torch.onnx torchscript")
    data = profile_json(capsys, str(distinct_yaml), "--imgsz", "64", "--lut", str(path))  # the table's settings
    assert data["latency"]["backend"] == "onnxruntime" and len(data["layers"]) == len(MODULES)
    capsys.readouterr()
    assert cli.main(["lut", "build", str(distinct_yaml), "--imgsz", "64", "--exporter", "torchscript", "-o",
                     str(tmp_path / "x.lut")]) == 1
    assert "--exporter is for --backend onnxruntime" in capsys.readouterr().err
