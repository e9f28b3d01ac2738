"""YOLOv8 / YOLO11 blocks: params against MODULES-ultralytics.md's closed forms, parse_model's by-scale
rules, the published totals and the deploy form."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import zoo
from zoo import ConfigError, build_model, deploy
from zoo.modules.ultralytics import (C2PSA, DFL, SPPF, Attention, Bottleneck, C2f, C3k, C3k2, Detect, LightConv,
                                     PSABlock, RepConv)


def K(c1: int, c2: int, k: int = 1, g: int = 1) -> int:
    """One Ultralytics Conv: bias-free conv + BN weight/bias."""
    return (c1 // g) * c2 * k * k + 2 * c2


@pytest.mark.parametrize("c1,c2,g", [(16, 32, 1), (64, 64, 4)])
def test_repconv_params_and_fold(helpers, c1: int, c2: int, g: int) -> None:
    m = RepConv(c1, c2, g=g).eval()
    assert helpers.params(m) == 10 * c1 * c2 // g + 4 * c2
    helpers.randomise_bn(m)
    x = torch.randn(2, c1, 9, 9)
    y = m(x)
    m.reparameterize()
    assert helpers.params(m) == 9 * c1 * c2 // g + c2
    assert torch.allclose(m(x), y, atol=1e-5)


def test_repconv_identity_branch_folds(helpers) -> None:
    m = RepConv(8, 8, bn=True).eval()
    assert helpers.params(m) == 10 * 64 + 4 * 8 + 2 * 8
    helpers.randomise_bn(m)
    x = torch.randn(1, 8, 7, 7)
    y = m(x)
    m.reparameterize()
    assert torch.allclose(m(x), y, atol=1e-5)


@pytest.mark.parametrize("c1,c2,k", [(48, 96, 5), (192, 192, 3)])
def test_lightconv(helpers, c1: int, c2: int, k: int) -> None:
    assert helpers.params(LightConv(c1, c2, k)) == c1 * c2 + 2 * c2 + k * k * c2 + 2 * c2


@pytest.mark.parametrize("c1,c2,k,e", [(32, 32, (3, 3), 0.5), (24, 40, (1, 3), 1.0)])
def test_bottleneck_kernel_tuple(helpers, c1: int, c2: int, k: tuple[int, int], e: float) -> None:
    c_ = int(c2 * e)
    assert helpers.params(Bottleneck(c1, c2, True, 1, k, e)) == K(c1, c_, k[0]) + K(c_, c2, k[1])


@pytest.mark.parametrize("c1,c2,n", [(32, 32, 1), (96, 128, 3)])
def test_c2f(helpers, c1: int, c2: int, n: int) -> None:
    c = c2 // 2
    expected = 2 * c * c1 + 4 * c + (2 + n) * c * c2 + 2 * c2 + n * (18 * c * c + 4 * c)
    m = C2f(c1, c2, n, True)
    assert helpers.params(m) == expected
    assert m(torch.randn(1, c1, 8, 8)).shape == (1, c2, 8, 8)


@pytest.mark.parametrize("c", [32, 48])
def test_c3k_inside_c3k2(helpers, c: int) -> None:
    h = c // 2
    assert helpers.params(C3k(c, c, 2)) == 4 * c * h + 36 * h * h + 12 * h + 2 * c == 11 * c * c + 8 * c


@pytest.mark.parametrize("c1,c2,n,c3k,e", [(32, 64, 1, False, 0.25), (64, 128, 2, True, 0.5),
                                           (128, 128, 2, False, 0.5)])
def test_c3k2(helpers, c1: int, c2: int, n: int, c3k: bool, e: float) -> None:
    c = int(c2 * e)
    h = c // 2
    inner = (4 * c * h + 36 * h * h + 12 * h + 2 * c) if c3k else (18 * c * h + 2 * h + 2 * c)
    m = C3k2(c1, c2, n, c3k, e)
    assert helpers.params(m) == K(c1, 2 * c, 1) + K((2 + n) * c, c2, 1) + n * inner
    assert all(isinstance(b, C3k if c3k else Bottleneck) for b in m.m)
    assert all(b.add for b in (m.m if not c3k else [x for blk in m.m for x in blk.m]))  # shortcut default


@pytest.mark.parametrize("c1,c2", [(256, 256), (128, 64)])
def test_sppf(helpers, c1: int, c2: int) -> None:
    c_ = c1 // 2
    assert helpers.params(SPPF(c1, c2)) == c1 * c_ + 2 * c_ + 4 * c_ * c2 + 2 * c2


def test_sppf_legacy_rows_keep_activation(helpers) -> None:
    cfg = {"nc": 80, "scales": {"n": [1.0, 0.25, 1024]},
           "backbone": [[-1, 1, "Conv", [64, 3, 2]], [-1, 1, "SPPF", [64, 5]], [-1, 1, "SPPF", [64, 5, 3, False]]]}
    m = build_model(cfg, device="meta")
    assert isinstance(m.model[1].cv1.act, nn.SiLU)
    assert isinstance(m.model[2].cv1.act, nn.Identity)
    assert helpers.params(m.model[1]) == helpers.params(m.model[2])


@pytest.mark.parametrize("dim,nh", [(128, 2), (256, 4)])
def test_attention_and_psablock(helpers, dim: int, nh: int) -> None:
    kd = int(dim // nh * 0.5)
    hq = dim + 2 * kd * nh
    a = helpers.params(Attention(dim, nh))
    assert a == K(dim, hq) + K(dim, dim) + 11 * dim
    assert helpers.params(PSABlock(dim, 0.5, nh)) == a + K(dim, 2 * dim) + K(2 * dim, dim) == 7 * dim * dim + 23 * dim
    y = Attention(dim, nh)(torch.randn(1, dim, 4, 5))
    assert y.shape == (1, dim, 4, 5)


@pytest.mark.parametrize("c1,n", [(256, 1), (512, 2)])
def test_c2psa(helpers, c1: int, n: int) -> None:
    c = c1 // 2
    assert helpers.params(C2PSA(c1, c1, n)) == 4 * c * c1 + 4 * c + 2 * c1 + n * (7 * c * c + 23 * c)


def test_dfl_is_frozen(helpers) -> None:
    d = DFL(16)
    assert helpers.params(d) == 16 and not any(p.requires_grad for p in d.parameters())
    x = torch.zeros(1, 64, 5)
    assert torch.allclose(d(x), torch.full((1, 4, 5), 7.5))  # uniform bins: the mean of 0..15


@pytest.mark.parametrize("ch,nc", [((64, 128, 256), 80), ((128, 256, 512), 3)])
@pytest.mark.parametrize("legacy", [True, False])
def test_detect(helpers, ch: tuple[int, ...], nc: int, legacy: bool) -> None:
    rm = 16
    c2, c3 = max(16, ch[0] // 4, 4 * rm), max(ch[0], min(nc, 100))
    box = sum(9 * x * c2 + 9 * c2 * c2 + 4 * c2 + 4 * rm * (c2 + 1) for x in ch)
    if legacy:
        cls = sum(9 * x * c3 + 9 * c3 * c3 + 4 * c3 + nc * (c3 + 1) for x in ch)
    else:
        cls = sum(11 * x + x * c3 + c3 * c3 + 15 * c3 + nc * (c3 + 1) for x in ch)
    assert helpers.params(Detect(nc, rm, False, ch, legacy=legacy)) == box + cls + rm


def test_detect_published_head_sizes(helpers) -> None:
    v8 = build_model("yolov8n", device="meta")
    v11 = build_model("yolo11n", device="meta")
    assert v8.model[-1].legacy and not v11.model[-1].legacy  # legacy unless a C3k2 row came before
    assert helpers.params(v8.model[-1]) == 897_664
    assert helpers.params(v11.model[-1]) == 464_912


@pytest.mark.parametrize("scale,c3k", [("n", False), ("s", False), ("m", True), ("l", True), ("x", True)])
def test_c3k_forced_at_large_scales(scale: str, c3k: bool) -> None:
    m = build_model("yolo11n", scale=scale, device="meta")  # --scale overrides the name's letter
    for i in (2, 4, 13, 16, 19):  # rows whose YAML says c3k=False (or nothing)
        assert isinstance(m.model[i].m[0], C3k) is c3k, i
    for i in (6, 8, 22):  # rows with c3k=True in the YAML
        assert isinstance(m.model[i].m[0], C3k)


@pytest.mark.parametrize("name,p5", [("yolov8n", 256), ("yolov8s", 512), ("yolov8m", 576), ("yolov8l", 512),
                                     ("yolov8x", 640), ("yolo11m", 512), ("yolo11x", 768)])
def test_max_channels_cap(name: str, p5: int) -> None:
    """P5 width = make_divisible(min(1024, max_channels) * width, 8)."""
    m = build_model(name, device="meta")
    assert m.layers[7].out_channels == p5
    assert m.layers[9].out_channels == p5


PUBLISHED = {  # Ultralytics 8.4 model summaries (train form) and fused (every Conv BN folded)
    "yolov8n": (3_157_200, 3_151_904), "yolov8s": (11_166_560, 11_156_544), "yolov8m": (25_902_640, None),
    "yolov8l": (43_691_520, None), "yolov8x": (68_229_648, None), "yolo11n": (2_624_080, 2_616_248),
    "yolo11s": (9_458_752, None), "yolo11m": (20_114_688, None), "yolo11l": (25_372_160, None),
    "yolo11x": (56_966_176, None),
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_totals(helpers, name: str) -> None:
    train, fused = PUBLISHED[name]
    m = build_model(name, device="meta")
    assert helpers.params(m) == train
    assert sum(p.numel() for p in m.parameters() if p.requires_grad) == train - 16  # frozen DFL
    if fused is not None:
        assert helpers.params(deploy(m)) == fused


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_every_scale_runs(name: str) -> None:
    """Shapes through every row on the meta device (no weights); real numbers for n in the deploy tests."""
    m = build_model(name, imgsz=64, device="meta").eval()
    with torch.no_grad():
        y, raw = m(torch.zeros(1, 3, 64, 64, device="meta"))
    assert y.shape == (1, 84, 8 * 8 + 4 * 4 + 2 * 2)
    assert raw["boxes"].shape == (1, 64, 84) and raw["scores"].shape == (1, 80, 84)


def test_reference_files_build_unchanged(helpers, shared_dir) -> None:
    ref = shared_dir / "reference" / "ultralytics"
    assert helpers.params(build_model(ref / "yolov8.yaml", device="meta")) == 3_157_200  # scale n: the first key
    assert helpers.params(build_model(ref / "yolov8.yaml", scale="s", device="meta")) == 11_166_560
    assert helpers.params(build_model(ref / "yolo11.yaml", device="meta")) == 2_624_080
    assert build_model(ref / "yolo11.yaml", device="meta").config.family == "ultralytics"


def test_scale_from_file_name(helpers, tmp_path, shared_dir) -> None:
    path = tmp_path / "yolov8s.yaml"
    path.write_text((shared_dir / "reference" / "ultralytics" / "yolov8.yaml").read_text())
    assert helpers.params(build_model(path, device="meta")) == 11_166_560


def test_eval_output_at_640_and_train_output() -> None:
    m = build_model("yolov8n", imgsz=64).eval()
    with torch.no_grad():
        y, _ = m(torch.zeros(1, 3, 640, 640))
    assert y.shape == (1, 84, 8400)
    assert m.stride.tolist() == [8.0, 16.0, 32.0]
    m.train()
    raw = m(torch.zeros(2, 3, 64, 64))
    assert set(raw) == {"boxes", "scores", "feats"} and raw["scores"].shape == (2, 80, 84)


@pytest.mark.parametrize("name", ["yolov8n", "yolo11n"])
def test_deploy_keeps_outputs(helpers, name: str) -> None:
    m = build_model(name, imgsz=64).eval()
    helpers.randomise_bn(m)
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        y = m(x)[0]
        d = deploy(copy.deepcopy(m))
        y2 = d(x)[0]
    assert not any(isinstance(b, nn.BatchNorm2d) for b in d.modules())
    assert helpers.rel_diff(y, y2) <= 1e-4


def test_c2psa_width_mismatch_is_a_config_error() -> None:
    cfg = {"nc": 80, "scales": {"n": [1.0, 1.0, 1024]},
           "backbone": [[-1, 1, "Conv", [64, 3, 2]], [-1, 1, "C2PSA", [128]]]}
    with pytest.raises(ConfigError, match="C2PSA keeps its width"):
        build_model(cfg, device="meta")


@pytest.mark.parametrize("row,keys", [(["nc", 16, True], {}), (["nc"], {"end2end": True})])
def test_end2end_detect_copies_its_branches(helpers, row: list, keys: dict) -> None:
    """end2end (the row's third value or the config's key) adds one-to-one copies of cv2 and cv3."""
    base = {"nc": 80, "scales": {"n": [1.0, 1.0, 1024]},
            "backbone": [[-1, 1, "Conv", [64, 3, 2]], [-1, 1, "Conv", [64, 3, 2]]]}
    plain = build_model({**base, "head": [[[0, 1], 1, "Detect", ["nc"]]]}, device="meta").model[-1]
    e2e = build_model({**base, **keys, "head": [[[0, 1], 1, "Detect", row]]}, device="meta").model[-1]
    assert e2e.one2one and not plain.one2one
    assert helpers.params(e2e) == 2 * helpers.params(plain) - 16  # the frozen DFL is not copied
    assert helpers.params(e2e.one2one_cv2) == helpers.params(plain.cv2)


def test_names_resolve_to_ultralytics_blocks() -> None:
    spec = zoo.REGISTRY.lookup("Detect", "ultralytics")
    assert spec.cls is Detect and zoo.REGISTRY.lookup("Detect", "yolov5").cls is not Detect
    assert zoo.REGISTRY.lookup("Bottleneck", "ultralytics").cls is Bottleneck
