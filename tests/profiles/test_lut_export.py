"""`zoo lut export` -> the runner on the device (numpy + onnxruntime, no torch, no zoo) -> `zoo lut import`:
the table holds every exported row, is calibrated on the whole models, prices anywhere, and predicts
ONNX Runtime's own measurement of the exported config; bad files are one line naming file and line."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import cli
from profiles import lutbuild, lutexport
from profiles.backends.onnxrt import OnnxRuntimeBackend, resolve_providers
from profiles.backends.base import model_timer
from profiles.lut import LatencyTable, predict_plan
from profiles.lutmanifest import MEASUREMENTS, read_manifest
from zoo import limits
from zoo.builder import build_from_plan
from zoo.config import load_config
from zoo.plan import plan_config

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

_spec = importlib.util.spec_from_file_location("zoo_tests_tiny", Path(__file__).resolve().parents[1] / "tiny.py")
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)

IMGSZ = 128  # big enough that a whole model takes about a millisecond: the accuracy check is not all noise
RUNNER = Path(lutexport.__file__).resolve().parent / "lutrunner" / "run_lut.py"
BLOCKER = '''import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "zoo", "profiles", "search", "face", "onnx", "onnxscript", "cli"):
            raise ImportError(f"{name} is blocked: the runner must not need it")
        return None
sys.meta_path.insert(0, _Block())
'''


def run_runner(python: str, folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The exported runner in its folder, as a user on the device starts it."""
    return subprocess.run([python, str(folder / "run_lut.py"), *args], cwd=folder, capture_output=True, text=True,
                          timeout=240, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny config and two candidates of its space at 128 px, exported once (torchscript: fast)."""
    root = tmp_path_factory.mktemp("export")
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny.LUT))
    folder = root / "exp"
    assert cli.main(["lut", "export", str(cfg), "--imgsz", str(IMGSZ), "--samples", "2", "--calibrate", "2",
                     "--exporter", "torchscript", "-o", str(folder), "--no-progress"]) == 0
    return cfg, folder


@pytest.fixture(scope="module")
def measured(exported, tmp_path_factory):
    """The runner run with this interpreter, torch and zoo made unimportable (a sitecustomize that blocks
    them), 15 runs a row, 30 a model: the device's side of the flow."""
    cfg, folder = exported
    block = tmp_path_factory.mktemp("block")
    (block / "sitecustomize.py").write_text(BLOCKER)
    env = {"PYTHONPATH": str(block)}
    check = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, env={**os.environ, **env})
    assert "torch is blocked" in check.stderr  # the blocker works
    done = run_runner(sys.executable, folder, env=env)
    assert done.returncode == 0, done.stderr
    return cfg, folder, block


def test_export_writes_one_file_per_row_signature_models_manifest_runner_and_doc(exported) -> None:
    cfg, folder = exported
    man = read_manifest(folder / "manifest.json")
    space_plans = [s.plan for s in __import__("search.lutplans", fromlist=["lut_sources"]).lut_sources(
        [str(cfg)], imgsz=IMGSZ, samples=2, calibrate=2)]
    keys = {rp.signature.key() for p in space_plans for rp in p.rows}
    rows = [i for i in man.items if i.kind == "row"]
    models = [i for i in man.items if i.kind == "model"]
    assert {i.key for i in rows} == keys and len(rows) == len(keys)  # each distinct signature once
    assert len(models) == 3 and all(set(m.keys) <= keys for m in models)  # the config and 2 calibrating samples
    assert models[0].keys == tuple(rp.signature.key() for rp in space_plans[0].rows)
    at = {i.key: n for n, i in enumerate(man.items) if i.kind == "row"}
    for n, item in enumerate(man.items):  # a model right after its own rows, as a build measures it
        if item.kind == "model":
            assert max(at[k] for k in item.keys) < n
    assert man.items[0].kind == "row" and [i.kind for i in man.items].index("model") < len(rows)
    for item in man.items:
        assert (folder / item.file).stat().st_size > 0
        assert all(s.shape[0] == 1 for s in item.inputs)
    assert models[0].inputs[0].shape == (1, 3, IMGSZ, IMGSZ)
    assert (folder / "run_lut.py").read_text() == RUNNER.read_text()
    assert "measurements.jsonl" in (folder / "lut-manifest.md").read_text()
    assert man.commands and man.commands[0].startswith(f"zoo lut export {cfg} --imgsz {IMGSZ} --samples 2")


def test_export_rerun_resumes_writing_nothing_again(exported, capsys) -> None:
    cfg, folder = exported
    first = read_manifest(folder / "manifest.json")
    stamps = {p: p.stat().st_mtime_ns for p in folder.rglob("*.onnx")}
    capsys.readouterr()
    assert cli.main(["lut", "export", str(cfg), "--imgsz", str(IMGSZ), "--samples", "2", "--calibrate", "2",
                     "--exporter", "torchscript", "-o", str(folder), "--no-progress"]) == 0
    assert "(0 files written now)" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.onnx")} == stamps
    assert read_manifest(folder / "manifest.json").export_id == first.export_id  # the runner's file still fits


def test_runner_needs_neither_torch_nor_zoo_and_resumes(measured) -> None:
    _, folder, block = measured
    man = read_manifest(folder / "manifest.json")
    lines = [json.loads(ln) for ln in (folder / MEASUREMENTS).read_text().splitlines()]
    assert lines[0]["kind"] == "device" and lines[0]["fingerprint"]["providers"] == ["CPUExecutionProvider"]
    assert lines[0]["fingerprint"]["threads"] == 1 and lines[0]["fingerprint"]["cpu_model"]
    timings = {r["id"]: r for r in lines[1:]}
    assert set(timings) == {i.id for i in man.items} and all(r["kind"] == "timing" for r in lines[1:])
    row = timings[man.items[0].id]
    assert row["runs"] == man.protocol.runs == len(row["samples_ms"]) and row["min_ms"] <= row["median_ms"]
    model = next(timings[i.id] for i in man.items if i.kind == "model")
    assert model["runs"] == man.model_protocol.runs
    before = (folder / MEASUREMENTS).read_bytes()
    again = run_runner(sys.executable, folder, env={"PYTHONPATH": str(block)})
    assert again.returncode == 0 and f"{len(man.items)} of {len(man.items)} items already measured" in again.stderr
    assert (folder / MEASUREMENTS).read_bytes() == before  # nothing timed twice


def test_runner_resumes_an_interrupted_run_and_refuses_other_settings(exported, tmp_path) -> None:
    _, folder = exported
    copy = tmp_path / "exp"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(MEASUREMENTS))
    fast = ["--runs", "2", "--model-runs", "2"]
    assert run_runner(sys.executable, copy, *fast, "--limit", "2").returncode == 0
    out = copy / MEASUREMENTS
    out.write_bytes(out.read_bytes() + b'{"kind": "timing", "id": ')  # a torn last line: killed mid-write
    done = run_runner(sys.executable, copy, *fast)
    assert done.returncode == 0 and "2 of" in done.stderr and "torn" in done.stderr
    lines = [json.loads(ln) for ln in out.read_text().splitlines()]
    ids = [r["id"] for r in lines if r["kind"] == "timing"]
    assert len(ids) == len(set(ids)) == len(read_manifest(copy / "manifest.json").items)
    other = run_runner(sys.executable, copy, *fast, "--threads", "2")
    assert other.returncode == 1 and other.stderr.count("\n") == 1
    assert f"{out}:1: measured under other settings (threads differ)" in other.stderr
    manifest = copy / "manifest.json"
    manifest.write_text(manifest.read_text().replace(read_manifest(manifest).export_id, "0123456789abcdef", 1))
    other = run_runner(sys.executable, copy, *fast)
    assert other.returncode == 1 and other.stderr.count("\n") == 1 and f"{out}:1: from another export" in other.stderr


def test_import_builds_the_calibrated_table_that_predicts_ort(measured, tmp_path, capsys) -> None:
    """The imported table holds every exported row, is fitted on the exported whole models, and predicts
    ONNX Runtime's latency of the exported config, measured afresh here as `zoo profile --backend
    onnxruntime` measures it, within 10%."""
    cfg, folder, _ = measured
    out = tmp_path / "device.lut"
    assert cli.main(["lut", "import", str(folder / MEASUREMENTS), "-o", str(out)]) == 0
    man = read_manifest(folder / "manifest.json")
    table = LatencyTable.load(out)
    assert set(table.entries) == {i.key for i in man.items if i.kind == "row"}
    assert set(table.models) == {i.name for i in man.items if i.kind == "model"} and table.fit_is_current
    fp = table.fingerprint
    assert fp.backend == "onnxruntime" and fp.threads == 1 and dict(fp.settings)["providers"] == ("CPUExecutionProvider",)
    assert dict(fp.settings)["runner"] == "zoo lut runner 1" and dict(fp.settings)["exporter"] == "torch.onnx torchscript"
    plan = plan_config(load_config(str(cfg)), imgsz=IMGSZ)
    predicted = predict_plan(table, plan).total_ms
    backend = OnnxRuntimeBackend(threads=1, exporter="torchscript")
    timer = model_timer(backend, build_from_plan(plan), (1, 3, IMGSZ, IMGSZ))
    medians = sorted(timer(lutbuild.MODEL_PROTOCOL).median_ms for _ in range(3))
    measured_ms = medians[1]
    floor = (medians[-1] - medians[0]) / measured_ms  # how far this machine's own measurements disagree now
    error = abs(predicted - measured_ms) / measured_ms
    assert error <= 0.10 + floor, (predicted, medians)  # within 10% beyond the measurement's own spread
    # importing the same measurements again adds nothing
    capsys.readouterr()
    assert cli.main(["lut", "import", str(folder / MEASUREMENTS), "-o", str(out)]) == 0
    assert "imported 0 rows" in capsys.readouterr().err
    # the table prices on any machine, without --force: profile with it here (another fingerprint)
    assert cli.main(["profile", str(cfg), "--imgsz", str(IMGSZ), "--lut", str(out), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)[0]
    assert data["latency"]["method"] == "predicted" and data["latency_ms"]["median"] == pytest.approx(predicted, abs=1e-3)


def test_search_prices_from_an_imported_table_without_force(measured, tmp_path) -> None:
    cfg, folder, _ = measured
    out = tmp_path / "device.lut"
    assert cli.main(["lut", "import", str(folder / MEASUREMENTS), "-o", str(out)]) == 0
    before = out.read_bytes()
    assert cli.main(["search", str(cfg), "--budget-ms", "1000", "--latency", "lut", "--lut", str(out), "--trials", "4",
                     "--seed", "0", "--imgsz", str(IMGSZ), "--runs", "2", "--warmup-s", "0", "--top-k", "1",
                     "--no-progress", "-o", str(tmp_path / "out"), "--storage", str(tmp_path / "j.log")]) in (0, 1)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["latency"]["pricing"] == "lut" and report["latency"]["backend"] == "onnxruntime"
    assert out.read_bytes() == before  # another device's table is never written to


def test_runner_in_a_fresh_venv_with_only_numpy_and_onnxruntime(exported, tmp_path) -> None:
    """The device's side as a user sets it up: a new virtual environment, `pip install numpy onnxruntime`
    (from the package index pip is configured with; skipped where it cannot install), the runner, then
    the import. About 27 s here with the machine shared (venv and pip 10 s)."""
    _, folder = exported
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    pip = subprocess.run([python, "-m", "pip", "install", "-q", "numpy", "onnxruntime"], capture_output=True,
                         text=True, timeout=300)
    if pip.returncode != 0:
        pytest.skip(f"pip cannot install numpy and onnxruntime here: {pip.stderr.strip().splitlines()[-1:]}")
    assert subprocess.run([python, "-c", "import torch"], capture_output=True).returncode != 0  # no torch there
    copy = tmp_path / "exp"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(MEASUREMENTS))
    done = run_runner(python, copy, "--runs", "3", "--model-runs", "5")
    assert done.returncode == 0, done.stderr
    assert cli.main(["lut", "import", str(copy / MEASUREMENTS), "-o", str(tmp_path / "venv.lut")]) == 0
    man = read_manifest(copy / "manifest.json")
    assert len(LatencyTable.load(tmp_path / "venv.lut").entries) == sum(i.kind == "row" for i in man.items)


# ---- bad files: one line naming the file and the line --------------------------------------------------
def _import_error(capsys, measurements: Path, out: Path, *extra: str) -> str:
    capsys.readouterr()
    assert cli.main(["lut", "import", str(measurements), "-o", str(out), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ")
    assert not out.exists()
    return err


def test_import_refuses_bad_measurements_naming_file_and_line(measured, tmp_path, capsys) -> None:
    _, folder, _ = measured
    copy = tmp_path / "exp"
    shutil.copytree(folder, copy)
    meas = copy / MEASUREMENTS
    good = meas.read_text().splitlines()
    meas.write_text("\n".join(good[:3] + ["{not json"] + good[3:]) + "\n")  # a damaged line in the middle
    assert f"{meas}:4: not valid JSON" in _import_error(capsys, meas, tmp_path / "a.lut")
    record = json.loads(good[2])
    record["export_id"] = "0123456789abcdef"
    meas.write_text("\n".join(good[:2] + [json.dumps(record)] + good[3:]) + "\n")
    assert f"{meas}:3: from another export" in _import_error(capsys, meas, tmp_path / "b.lut")
    record = json.loads(good[2])
    record["median_ms"] = -1
    meas.write_text("\n".join(good[:2] + [json.dumps(record)] + good[3:]) + "\n")
    assert f"{meas}:3: median_ms must be" in _import_error(capsys, meas, tmp_path / "c.lut")
    meas.write_text("\n".join(good[1:]) + "\n")  # no device record
    assert f"{meas}:1: a measurement before the device record" in _import_error(capsys, meas, tmp_path / "d.lut")
    # a torn last line (the runner was killed mid-write) is ignored: the rest imports
    meas.write_text("\n".join(good) + "\n" + good[-1][:20])
    assert cli.main(["lut", "import", str(meas), "-o", str(tmp_path / "e.lut")]) == 0
    # another device's measurements never go into this device's table
    device = json.loads(good[0])
    device["fingerprint"]["cpu_model"] = "Cortex-A76"
    meas.write_text("\n".join([json.dumps(device)] + good[1:]) + "\n")
    before = (tmp_path / "e.lut").read_bytes()
    capsys.readouterr()
    assert cli.main(["lut", "import", str(meas), "-o", str(tmp_path / "e.lut")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "measured on another device or setting: cpu_model " in err and "Cortex-A76 (measurements)" in err
    assert (tmp_path / "e.lut").read_bytes() == before


def test_import_refuses_a_bad_manifest_naming_file_and_line(measured, tmp_path, capsys) -> None:
    _, folder, _ = measured
    copy = tmp_path / "exp"
    shutil.copytree(folder, copy)
    manifest = copy / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text[: len(text) * 2 // 3])  # truncated by a copy
    err = _import_error(capsys, copy / MEASUREMENTS, tmp_path / "a.lut")
    assert err.startswith(f"error: {manifest}:") and "not valid JSON" in err
    lines = text.splitlines()
    n = next(i for i, ln in enumerate(lines) if '"kind": "row"' in ln)
    item = json.loads(lines[n].rstrip(","))
    item["inputs"][0]["shape"] = [1, 1 << 20, 1 << 10, 1 << 10]  # 2**40 elements: refused before any allocation
    manifest.write_text("\n".join(lines[:n] + [json.dumps(item) + ","] + lines[n + 1:]) + "\n")
    err = _import_error(capsys, copy / MEASUREMENTS, tmp_path / "b.lut")
    assert f"{manifest}:{n + 1}: item 0: input" in err and f"over {limits.MAX_INPUT_ELEMENTS}" in err
    run = run_runner(sys.executable, copy)
    assert run.returncode == 1 and run.stderr.count("\n") == 1 and f"over {limits.MAX_INPUT_ELEMENTS}" in run.stderr
    manifest.write_text(text[: len(text) // 2])
    run = run_runner(sys.executable, copy)
    assert run.returncode == 1 and f"{manifest}:" in run.stderr and "not valid JSON" in run.stderr


def test_runner_keeps_the_bounds_of_zoo_limits() -> None:
    """The runner cannot import zoo; its copies of the bounds are checked here instead."""
    spec = importlib.util.spec_from_file_location("run_lut", RUNNER)
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    assert runner.MAX_MANIFEST_BYTES == limits.MAX_LUT_MANIFEST_BYTES
    assert runner.MAX_INPUT_ELEMENTS == limits.MAX_INPUT_ELEMENTS and runner.MAX_RUNS == limits.MAX_RUNS
    from profiles import lutmanifest
    assert (runner.MANIFEST_FORMAT, runner.MANIFEST_VERSION, runner.MEASUREMENTS_FORMAT) == (
        lutmanifest.FORMAT, lutmanifest.VERSION, lutmanifest.MEASUREMENTS_FORMAT)


# ---- execution providers -------------------------------------------------------------------------------
def test_providers_by_short_or_full_name_checked_against_onnxruntime() -> None:
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers(gpu, "cuda") == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert resolve_providers(gpu, ["TensorRT", "cuda"]) == ("TensorrtExecutionProvider", "CUDAExecutionProvider",
                                                           "CPUExecutionProvider")
    assert resolve_providers(gpu, "CPUExecutionProvider") == ("CPUExecutionProvider",)
    with pytest.raises(ValueError) as e:
        resolve_providers(["CPUExecutionProvider"], "tensorrt")
    assert str(e.value).count("\n") == 0 and "available: CPUExecutionProvider" in str(e.value)
    assert "onnxruntime-gpu" in str(e.value)


def test_a_gpu_provider_times_on_cuda_and_is_recorded(monkeypatch) -> None:
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    backend = OnnxRuntimeBackend(providers=("cuda",))
    info = backend.fingerprint()
    assert info.device == "cuda" and dict(info.settings)["providers"] == ("CUDAExecutionProvider",
                                                                           "CPUExecutionProvider")
    assert OnnxRuntimeBackend(providers=("cuda",), device="cuda:1").device_id == 1
    from profiles.backends import recorded_settings
    assert recorded_settings("onnxruntime", info.settings_dict())["providers"] == ("CUDAExecutionProvider",
                                                                                  "CPUExecutionProvider")
    with pytest.raises(ValueError, match="device='cuda'"):
        OnnxRuntimeBackend(device="cuda")  # the CPU provider times on cpu


def test_cli_provider_errors_are_one_line(tmp_path, capsys) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny.LUT))
    for argv, text in (
            (["lut", "build", str(cfg), "--backend", "onnxruntime", "--provider", "cuda", "-o", str(tmp_path / "t.lut")],
             "--provider 'cuda': not available in this onnxruntime"),
            (["profile", str(cfg), "--provider", "cuda"], "--provider is for --backend onnxruntime")):
        capsys.readouterr()
        assert cli.main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert [ln for ln in err if ln.startswith("error:")] == [ln for ln in err if text in ln][:1]
