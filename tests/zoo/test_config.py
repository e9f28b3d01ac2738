"""Config loading: schemas, scales, families, argument resolution and the per-row formulas of the builder."""
from __future__ import annotations

import pytest
import torch

import zoo
from zoo.config import builtin_names, load_config
from zoo.rules import make_divisible, scale_repeats

ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_builtin_names_cover_all_yolov5_scales() -> None:
    names = builtin_names()
    for s in "nsmlx":
        assert f"yolov5{s}" in names and f"yolov5{s}-seg" in names


def test_scale_from_name_flag_and_default(tmp_path) -> None:
    assert load_config("yolov5m").scale.name == "m"
    assert load_config("yolov5m", scale="x").scale.width == 1.25
    path = tmp_path / "mynet-x.yaml"
    path.write_text("scales: {s: [0.33, 0.5], x: [1.33, 1.25]}\nbackbone: [[-1, 1, Conv, [16]]]\n")
    assert load_config(path).scale.name == "s"  # no scale letter after a digit in the name: first scale
    path2 = tmp_path / "mynet2x.yaml"
    path2.write_text(path.read_text())
    assert load_config(path2).scale.name == "x"


def test_family_inference() -> None:
    base = {"backbone": [[-1, 1, "Conv", [16]]]}
    assert load_config(dict(base)).family == "yolov5"
    assert load_config({**base, "scales": {"n": [0.33, 0.25, 1024]}}).family == "ultralytics"
    assert load_config({**base, "scales": {"n": [0.33, 0.25]}, "anchors": 3}).family == "yolov5"
    assert load_config({**base, "family": "damo"}).family == "damo"


def test_max_channels_caps_before_width() -> None:
    cfg = {"scales": {"x": [1.0, 1.25, 512]}, "family": "yolov5", "backbone": [[-1, 1, "Conv", [1024, 3, 2]]]}
    model = zoo.build_model(cfg)
    assert model.layers[0].out_channels == 640  # min(1024, 512) * 1.25


def test_argument_resolution() -> None:
    cfg = load_config({"nc": 7, "anchors": ANCHORS, "backbone": [[-1, 1, "Conv", [16]]],
                       "head": [[-1, 1, "nn.Upsample", ["None", 2, "nearest"]],
                                [-1, 1, "SPP", [16, "[5, 9, 13]"]],
                                [-1, 1, "Conv", [16, 1, 1, "None", 1, 1, "nn.LeakyReLU(0.2)"]],
                                [[-1], 1, "Concat", ["1"]]]})
    up, spp, conv, cat = cfg.head
    assert up.args == (None, 2, "nearest")
    assert spp.args == (16, [5, 9, 13])
    assert conv.args[-1] == zoo.Activation("LeakyReLU", 0.2)
    assert cat.args == (1,)


def test_nc_and_anchors_names_resolve() -> None:
    cfg = load_config({"nc": 7, "anchors": 3, "backbone": [[-1, 1, "Conv", [16]]],
                       "head": [[-1, 1, "Detect", ["nc", "anchors"]]]})
    assert cfg.head[0].args == (7, 3)


@pytest.mark.parametrize("nc", [3, 128, 256])
def test_nc_override_changes_head_only(nc: int) -> None:
    """Only the head changes, even when nc equals a layer width (YOLOv5 exempts `no`, not `nc`)."""
    a = zoo.build_model("yolov5n", device="meta")
    b = zoo.build_model("yolov5n", nc=nc, device="meta")
    ch = [64, 128, 256]  # P3-P5 widths of yolov5n
    assert n_params(b) - n_params(a) == sum(c * 3 * (nc - 80) + 3 * (nc - 80) for c in ch)
    assert [i.out_channels for i in a.layers] == [i.out_channels for i in b.layers]


def test_ultralytics_exempts_nc_from_width_scaling() -> None:
    cfg = {"nc": 64, "scales": {"n": [1.0, 0.5, 1024]},
           "backbone": [[-1, 1, "Conv", [64, 3, 2]], [-1, 1, "Conv", [128, 3, 2]]]}
    assert [i.out_channels for i in zoo.build_model(cfg).layers] == [64, 64]


def test_backbone_only_config() -> None:
    cfg = {"depth_multiple": 0.33, "width_multiple": 0.5,
           "backbone": [[-1, 1, "Conv", [64, 6, 2, 2]], [-1, 1, "Conv", [128, 3, 2]], [-1, 3, "C3", [128]]]}
    model = zoo.build_model(cfg).eval()
    assert model.config.backbone_only
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 64, 16, 16)
    assert [i.stride for i in model.layers] == [2, 4, 4]


def test_scaling_rules() -> None:
    assert scale_repeats(9, 0.33) == 3 and scale_repeats(3, 0.33) == 1 and scale_repeats(1, 0.33) == 1
    assert scale_repeats(3, 1.33) == 4
    assert make_divisible(1024 * 0.25, 8) == 256 and make_divisible(100 * 0.25, 8) == 32


def conv_p(c1: int, c2: int, k: int) -> int:
    return c1 * c2 * k * k + 2 * c2


def c3_p(c1: int, c2: int, n: int) -> int:
    c_ = c2 // 2
    return 2 * conv_p(c1, c_, 1) + conv_p(2 * c_, c2, 1) + n * (conv_p(c_, c_, 1) + conv_p(c_, c_, 3))


@pytest.mark.parametrize("c", [32, 96])
def test_row_params_follow_formulas(c: int) -> None:
    cfg = {"nc": 5, "anchors": 2, "backbone": [
        [-1, 1, "Conv", [c, 3, 2]],            # 0
        [-1, 2, "C3", [c]],                    # 1
        [-1, 1, "SPPF", [2 * c, 5]],           # 2
        [-1, 1, "GhostConv", [c, 3, 2]],       # 3
        [-1, 1, "Conv", [c, 3, 2]],            # 4
        [[3, 4], 1, "Detect", ["nc", "anchors"]]]}
    cfg["backbone"][4] = [-2, 1, "Conv", [c, 3, 2]]
    cfg["backbone"][5] = [[3, 4], 1, "Detect", ["nc", "anchors"]]
    cfg["backbone"][4] = [3, 1, "Conv", [c, 1, 1]]
    model = zoo.build_model(cfg)
    rows = [n_params(m) for m in model.model]
    c_ = c  # SPPF hidden = c1 // 2 = c
    assert rows[0] == conv_p(3, c, 3)
    assert rows[1] == c3_p(c, c, 2)
    assert rows[2] == conv_p(c, c_ // 2 * 1, 1) + conv_p(4 * (c // 2), 2 * c, 1)
    g = c // 2
    assert rows[3] == conv_p(2 * c, g, 3) + (g * 25 + 2 * g)
    assert rows[4] == conv_p(c, c, 1)
    assert rows[5] == 2 * (c * 2 * 10 + 2 * 10)
