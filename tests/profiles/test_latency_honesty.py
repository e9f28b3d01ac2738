"""A latency says when it cannot be trusted: the load and each run set's CV are recorded, a load above the
cores, a CV above MAX_CV and a half dtype on a CPU without its kernels each give one warning line."""
from __future__ import annotations

import json

import torch

import cli
from profiles import latency
from profiles.latency import MAX_CV, LatencyStats, half_on_cpu, latency_warnings


def stats(cv: float = 0.01, load: float | None = 0.5, device: str = "cpu") -> LatencyStats:
    return LatencyStats(median_ms=10.0, p90_ms=11.0, mean_ms=10.2, cv=cv, runs=30, warmup_runs=5, threads=1,
                        device=device, loadavg=None if load is None else (load, load, load))


def codes(ws) -> list[str]:
    return [w.code for w in ws]


def test_quiet_steady_run_has_no_warning() -> None:
    assert latency_warnings(stats(), cores=2) == ()
    assert latency_warnings(stats(cv=MAX_CV, load=2.0), cores=2) == ()  # at the bounds: still fine
    assert latency_warnings(stats(load=None), cores=1) == ()  # no load average on this platform


def test_load_above_the_cores() -> None:
    [w] = latency_warnings(stats(load=7.22), cores=2)
    assert w.code == "load" and w.text.startswith("load average 7.22 is above the 2 cores this process can use")
    assert codes(latency_warnings(stats(load=1.5), cores=1)) == ["load"]


def test_cv_above_the_threshold() -> None:
    [w] = latency_warnings(stats(cv=0.249), cores=2)
    assert w.code == "cv" and f"the 30 timed runs vary by CV 0.249 (above {MAX_CV:g})" in w.text
    assert codes(latency_warnings(stats(cv=0.3, load=9.0), cores=2)) == ["load", "cv"]


def test_half_on_cpu_only_without_its_kernels(monkeypatch) -> None:
    monkeypatch.setattr(latency, "cpu_has_fast", lambda dtype: False)
    w = half_on_cpu("cpu", torch.float16)
    assert w is not None and w.code == "half-on-cpu" and "float16 on this CPU runs about 15-20x slower" in w.text
    assert half_on_cpu("cpu", torch.bfloat16) is not None
    assert half_on_cpu("cpu", torch.float32) is None and half_on_cpu("cuda", torch.float16) is None
    assert codes(latency_warnings(stats(), dtype=torch.float16, cores=2)) == ["half-on-cpu"]
    monkeypatch.setattr(latency, "cpu_has_fast", lambda dtype: dtype == torch.bfloat16)  # an AVX512-BF16 CPU
    assert half_on_cpu("cpu", torch.bfloat16) is None and half_on_cpu("cpu", torch.float16) is not None


def test_profile_json_records_load_cores_and_each_cv(monkeypatch, capsys) -> None:
    monkeypatch.setattr(latency, "loadavg", lambda: (99.0, 50.0, 10.0))  # as a busy machine reports it
    argv = ["profile", "yolov5n", "--imgsz", "64", "--runs", "3", "--format", "json"]
    assert cli.main(argv) == 0
    cap = capsys.readouterr()
    [data] = json.loads(cap.out)
    cores = latency.usable_cores()
    assert data["loadavg"] == [99.0, 50.0, 10.0] and data["cores"] == cores and data["latency_cv_max"] == MAX_CV
    assert set(data["latency_ms"]) == {"median", "p90", "cv"} and data["latency_runs"] == 3
    assert all(set(lay["latency_ms"]) == {"median", "p90", "cv"} and lay["latency_runs"] == 3
               for lay in data["layers"])
    assert "load" in codes_of(data) and ("cv" in codes_of(data)) == (data["latency_ms"]["cv"] > MAX_CV)
    lines = [ln for ln in cap.err.splitlines() if ln.startswith("warning:")]
    assert f"warning: yolov5n: latency: load average 99.00 is above the {cores} core" in lines[0]
    assert len(lines) == len(data["latency_warnings"])


def codes_of(data: dict) -> list[str]:
    return [w["code"] for w in data["latency_warnings"]]


def test_half_on_cpu_warned_once_before_timing(monkeypatch, capsys) -> None:
    monkeypatch.setattr(latency, "cpu_has_fast", lambda dtype: False)
    monkeypatch.setattr(latency, "loadavg", lambda: (0.0, 0.0, 0.0))
    assert cli.main(["profile", "yolov5n", "--imgsz", "32", "--runs", "1", "--dtype", "float16",
                     "--format", "json"]) == 0
    cap = capsys.readouterr()
    [data] = json.loads(cap.out)
    assert "half-on-cpu" in codes_of(data)
    half = [ln for ln in cap.err.splitlines() if "slower than float32" in ln]
    assert half == ["warning: --dtype float16: float16 on this CPU runs about 15-20x slower than float32 (it has "
                    "no native float16 kernels): time float32 on CPU, or float16 on a GPU"]
    assert cap.err.splitlines()[0] == half[0]  # before the profile's stages, not after the wait
    assert cli.main(["profile", "yolov5n", "--imgsz", "32", "--dtype", "float16", "--no-latency",
                     "--format", "json"]) == 0
    assert "slower" not in capsys.readouterr().err  # nothing timed, nothing to warn about
