"""MAC counting: hand-computed counts, per-row sums, uncounted ops, the cross-check counters."""
from __future__ import annotations

import pytest

from profiles.crosscheck import cross_check
from profiles.flops import DATA_MOVEMENT_OPS, count_flops, op_family
from profiles.memory import param_bytes, plan_peak
from zoo.plan import plan_config
from zoo import build_model

ONE_CONV = {"nc": 1, "backbone": [[-1, 1, "Conv", [8, 3, 2]]]}
RELU_NET = {"nc": 1, "activation": "nn.ReLU()", "backbone": [
    [-1, 1, "Conv", [8, 3, 2]], [-1, 1, "nn.ZeroPad2d", [1]], [-1, 1, "nn.MaxPool2d", [3, 1, 0]],
    [-1, 1, "C3", [8]], [[-1, 0], 1, "Concat", [1]]]}


@pytest.fixture(scope="module")
def yolov5n():
    return build_model("yolov5n")


def test_conv_row_macs_by_hand() -> None:
    fc = count_flops(build_model(ONE_CONV), imgsz=64)
    conv = 3 * 3 * 3 * 8 * 32 * 32  # k*k*cin*cout*H*W
    bn = 2 * 8 * 32 * 32  # fvcore: 2 per element in eval mode with affine
    assert fc.by_operator == {"conv": conv, "batch_norm": bn}
    assert fc.macs == conv + bn == fc.by_row[0]
    assert fc.gflops == pytest.approx(2 * fc.macs / 1e9)
    assert fc.gmacs == pytest.approx(fc.macs / 1e9)
    assert fc.uncounted == {"aten::silu": 1}


def test_rows_sum_to_total_and_uncounted_listed(yolov5n) -> None:
    fc = count_flops(yolov5n, imgsz=128)
    assert sum(fc.by_row.values()) == fc.macs
    assert set(fc.by_row) == set(range(len(yolov5n.layers)))
    n_conv = sum(type(m).__name__ == "Conv" for m in yolov5n.modules())
    assert fc.uncounted["aten::silu"] == n_conv == 57
    assert fc.uncounted["aten::add"] == 10  # 7 shortcut adds + 3 box decodes
    assert fc.uncounted["aten::max_pool2d"] == 3  # SPPF
    assert fc.uncounted["aten::sigmoid"] == 3  # Detect
    assert not set(fc.uncounted) & DATA_MOVEMENT_OPS
    for op in ("aten::cat", "aten::view", "aten::reshape", "aten::slice", "aten::permute"):
        assert op not in fc.uncounted
    # per-row uncounted add up to the totals
    summed: dict[str, int] = {}
    for ops in fc.uncounted_by_row.values():
        for op, n in ops.items():
            summed[op] = summed.get(op, 0) + n
    assert summed == fc.uncounted
    assert fc.uncounted_by_row[9] == {"aten::silu": 2, "aten::max_pool2d": 3}


def test_costly_ops_fvcore_ignores_are_recorded_per_row() -> None:
    fc = count_flops(build_model(RELU_NET), imgsz=64)
    assert fc.uncounted_by_row[0] == {"aten::relu": 1}
    assert fc.uncounted_by_row[2] == {"aten::max_pool2d": 1}
    assert set(fc.uncounted_by_row[1]) <= {"aten::pad", "aten::constant_pad_nd"}
    assert fc.uncounted_by_row[3] == {"aten::relu": 5, "aten::add": 1}
    assert 4 not in fc.uncounted_by_row  # Concat: data movement only
    assert fc.by_row[1] == fc.by_row[2] == fc.by_row[4] == 0


@pytest.fixture(scope="module")
def yolov5n_640(yolov5n):
    return count_flops(yolov5n, imgsz=640)


def test_yolov5n_gflops_at_640(yolov5n_640) -> None:
    gflops = yolov5n_640.gflops
    assert gflops == pytest.approx(4.56, rel=0.02)
    assert gflops == pytest.approx(4.52, abs=0.005)  # SPEC §4: fvcore's own figure


# YOLOv5 v7.0's printed GFLOPs at 640 (thop at 32 px x 400), issue 2's reference figures.
YOLOV5_GFLOPS_640 = {"yolov5s": 16.62, "yolov5m": 49.23, "yolov5l": 109.58, "yolov5x": 206.31}


def test_yolov5_counts_scale_exactly_with_area(yolov5n, yolov5n_640) -> None:
    """Every YOLOv5 scale has n's topology (same kernels, strides, paddings; only widths and depths
    differ), and at sizes that are multiples of 32 every map scales with the image side, so each
    counted op scales with the image area. Checked here exactly, per row, so the next test may count
    at 128 px and multiply by (640/128)**2 = 25."""
    big, small = yolov5n_640, count_flops(yolov5n, imgsz=128)
    assert big.macs == 25 * small.macs
    assert big.by_row == {i: 25 * m for i, m in small.by_row.items()}
    assert big.by_operator == {op: 25 * m for op, m in small.by_operator.items()}


@pytest.mark.parametrize("name", sorted(YOLOV5_GFLOPS_640))
def test_yolov5_gflops_at_640_match_reference(name: str) -> None:
    gflops_640 = 25 * count_flops(build_model(name), imgsz=128).gflops  # exact: see the test above
    assert gflops_640 == pytest.approx(YOLOV5_GFLOPS_640[name], rel=0.02)


def test_counting_leaves_model_untouched(yolov5n) -> None:
    keys = list(yolov5n.state_dict())
    yolov5n.train()
    count_flops(yolov5n, imgsz=64)
    cross_check(yolov5n, 64)
    assert yolov5n.training
    yolov5n.eval()
    assert list(yolov5n.state_dict()) == keys


def test_cross_check_counters_agree_on_conv(yolov5n) -> None:
    cc = cross_check(yolov5n, 64)
    fam = {f.family: f for f in cc.families}
    assert fam["conv"].fvcore == fam["conv"].thop == fam["conv"].torch > 0
    bn_elements = fam["batch_norm"].fvcore // 2
    assert fam["batch_norm"].thop == 4 * bn_elements
    assert fam["batch_norm"].torch == 0
    assert fam["upsample"].fvcore == fam["upsample"].thop > 0
    assert cc.fvcore_macs == count_flops(yolov5n, imgsz=64).macs
    assert cc.thop_macs == sum(f.thop for f in cc.families)
    assert cc.torch_macs == fam["conv"].torch
    assert fam["conv"].agree and not fam["batch_norm"].agree and fam["batch_norm"].why


def test_op_family_names_match_across_counters() -> None:
    assert {op_family(o) for o in ("aten::_convolution", "aten.convolution", "Conv2d")} == {"conv"}
    assert {op_family(o) for o in ("aten::batch_norm", "BatchNorm2d")} == {"batch_norm"}
    assert {op_family(o) for o in ("aten::layer_norm", "LayerNorm")} == {"layer_norm"}
    assert {op_family(o) for o in ("aten::linear", "Linear", "aten.addmm", "aten.bmm")} == {"matmul"}
    assert {op_family(o) for o in ("aten::upsample_nearest2d", "Upsample")} == {"upsample"}


def test_memory_walk_by_hand() -> None:
    model = build_model(ONE_CONV, imgsz=64)
    plan = plan_config(ONE_CONV, imgsz=64)
    assert plan.rows[0].out_shape == (1, 8, 32, 32)
    image, out = 3 * 64 * 64, 8 * 32 * 32
    peak = plan_peak(plan)
    assert (peak.peak_numel, peak.peak_row) == (image + image + out, 0)  # the caller's image + the row's in and out
    assert param_bytes(model) == (3 * 3 * 3 * 8 + 2 * 8) * 4
