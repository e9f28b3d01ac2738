"""The allocation guard: weights and activations are estimated from the plan and a model over the limit is
refused with one line before anything is allocated (build, profile's batch of inputs); meta builds are free."""
from __future__ import annotations

import pytest
import torch

import cli
import zoo
from profiles import profile_model
from profiles.memory import plan_peak
from zoo.builder import build_from_plan, check_plan_allocation
from zoo.config import builtin_names
from zoo.errors import ConfigError
from zoo.plan import activation_peak, param_count, plan_config

WIDE = {"nc": 2, "depth_multiple": 1.0, "width_multiple": 1.0, "anchors": [[10, 13, 16, 30, 33, 23]],
        "backbone": [[-1, 1, "Conv", [50000, 3, 2]], [-1, 1, "Conv", [50000, 3, 2]], [-1, 1, "Conv", [64, 3, 2]]],
        "head": [[[2], 1, "Detect", ["nc", "anchors"]]]}
# Conv = conv (no bias) + BatchNorm (weight and bias): c1*c2*k*k + 2*c2
WIDE_PARAMS = (3 * 50000 * 9 + 2 * 50000) + (50000 * 50000 * 9 + 2 * 50000) + (50000 * 64 * 9 + 2 * 64) \
    + (64 * 1 + 1) * 3 * (2 + 5)  # Detect: one 1x1 conv with bias, 3 anchors x (nc + 5) outputs


@pytest.mark.parametrize("name", sorted(builtin_names()))
def test_param_count_from_the_plan_equals_the_built_model(name: str) -> None:
    plan = plan_config(name, imgsz=320)
    meta = build_from_plan(plan, device="meta")
    assert param_count(plan) == sum(p.numel() for p in meta.parameters())
    assert activation_peak(plan) == (plan_peak(plan).peak_numel, plan_peak(plan).peak_row)


def test_a_legal_but_huge_config_is_refused_before_allocating() -> None:
    plan = plan_config(WIDE, imgsz=64)
    assert param_count(plan) == WIDE_PARAMS
    meta = zoo.build_model(WIDE, device="meta", imgsz=64)  # validate's build: no weights, allowed
    assert sum(p.numel() for p in meta.parameters()) == WIDE_PARAMS
    with pytest.raises(ConfigError, match=rf"needs about .* \({WIDE_PARAMS:,} parameters = .*\), over the 8\.0 GiB "
                                          r"limit \(set ZOO_MAX_BYTES to raise it\)"):
        zoo.build_model(WIDE, imgsz=64)


def test_the_limit_follows_the_environment(monkeypatch) -> None:
    n = sum(p.numel() for p in zoo.build_model("yolov5n", device="meta", imgsz=64).parameters())
    peak, _ = activation_peak(plan_config("yolov5n", imgsz=64))
    monkeypatch.setenv("ZOO_MAX_BYTES", str(4 * n + 4 * peak))  # exactly weights + activations: allowed
    zoo.build_model("yolov5n", imgsz=64)
    monkeypatch.setenv("ZOO_MAX_BYTES", str(4 * n + 4 * peak - 1))
    with pytest.raises(ConfigError, match=rf"\({n:,} parameters"):
        zoo.build_model("yolov5n", imgsz=64)
    with torch.device("meta"):  # the default device is meta: nothing is allocated, nothing checked
        zoo.build_model("yolov5n", imgsz=64)


def test_profile_checks_the_batch_before_allocating_inputs(monkeypatch) -> None:
    plan = plan_config("yolov5n", imgsz=64)
    n, (peak, _) = param_count(plan), activation_peak(plan)
    monkeypatch.setenv("ZOO_MAX_BYTES", str(4 * n + 4 * peak * 8))
    check_plan_allocation(plan, batch=8)
    with pytest.raises(ConfigError, match=r"activations"):
        check_plan_allocation(plan, batch=9)
    with pytest.raises(ConfigError, match=r"over the .* limit"):
        profile_model("yolov5n", imgsz=64, batch=9, latency=False)


def test_cli_refuses_with_one_line(tmp_path, capsys) -> None:
    import yaml

    cfg = tmp_path / "wide.yaml"
    cfg.write_text(yaml.safe_dump(WIDE))
    assert cli.main(["profile", str(cfg), "--imgsz", "64", "--no-latency"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {cfg}: needs about ")
    assert cli.main(["profile", "yolov5x", "--imgsz", "8192", "--no-latency"]) == 1  # in bounds, too big at that size
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "over the 8.0 GiB limit" in err[0]


def test_the_model_s_total_repeats_are_bounded() -> None:
    """Each repeat is a block built even on the meta device: a model's repeats are bounded in total, so no
    config keeps `zoo validate` busy for minutes (the per-row bound alone allows 1000 per row)."""
    from zoo.limits import MAX_TOTAL_REPEATS

    rows = [[-1, 1, "Conv", [16, 3, 2]]] + [[-1, 100, "C3", [16]] for _ in range(MAX_TOTAL_REPEATS // 100)]
    cfg = {**WIDE, "backbone": rows, "head": [[[len(rows) - 1], 1, "Detect", ["nc", "anchors"]]]}
    with pytest.raises(ConfigError, match=rf"row {len(rows) - 1} \(C3\): its 100 repeats bring the model to "
                                          rf"{MAX_TOTAL_REPEATS + 1} blocks .*, over the {MAX_TOTAL_REPEATS} a model"):
        plan_config(cfg, imgsz=64)
    cfg["backbone"][-1][1] = 98  # with the Conv and the Detect rows: exactly at the bound, allowed
    assert sum(rp.n for rp in plan_config(cfg, imgsz=64).rows) == MAX_TOTAL_REPEATS


@pytest.mark.parametrize("name", ["yolov5n", "damo-yolo-t", "rtdetr-l", "yolov8n"])
def test_probes_with_shape_only_norms_equal_real_meta_probes(name: str) -> None:
    """The probe's batch-norm shortcut changes nothing a probe learns (shapes, sizes, peak, params)."""
    from zoo.plan import instantiate_row, run_probe, shape_only_norms

    for rp in plan_config(name, imgsz=128).rows:
        module, feed = instantiate_row(rp.signature, device="meta")
        real = run_probe(module, feed)
        module, feed = instantiate_row(rp.signature, device="meta")
        assert run_probe(shape_only_norms(module), feed) == real == rp.probe
