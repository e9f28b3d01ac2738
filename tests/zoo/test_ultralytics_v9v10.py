"""YOLOv9, YOLOv10, YOLOv8-P6 and RT-DETR-ResNet as Ultralytics ships them: every scale's params, per row and
in total, equal Ultralytics 8.4's (tests/data/ultralytics_reference.json), Ultralytics' own weights load
strictly and give its outputs, deploy keeps the outputs, and the plan's sums equal the built model.

The YAML files are Ultralytics' (AGPL: read as test inputs, never shipped or imported). They are found in
ZOO_ULTRALYTICS_MODELS (a cfg/models folder), else in the Ultralytics that ZOO_REF_PYTHON has installed;
without either the tests skip. The weights check runs Ultralytics in that interpreter (with
ZOO_REF_PYTHONPATH on its path, e.g. a torchvision stub), never in this one.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

import cli
import zoo
from zoo import ConfigError
from zoo.modules.resnet import ResNetLayer
from zoo.modules.ultralytics import C2, Attention
from zoo.modules.yolov9 import ELAN1, SPPELAN, AConv, ADown, CBFuse, CBLinear, RepNCSPELAN4
from zoo.modules.yolov10 import PSA, C2fCIB, RepVGGDW, SCDown, v10Detect

REF_PYTHON = os.environ.get("ZOO_REF_PYTHON")
REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "ultralytics_reference.json").read_text())["files"]
FILES = ["v9/yolov9t.yaml", "v9/yolov9s.yaml", "v9/yolov9m.yaml", "v9/yolov9c.yaml", "v9/yolov9e.yaml",
         "v10/yolov10n.yaml", "v10/yolov10s.yaml", "v10/yolov10m.yaml", "v10/yolov10b.yaml", "v10/yolov10l.yaml",
         "v10/yolov10x.yaml", "v8/yolov8-p6.yaml", "rt-detr/rtdetr-resnet50.yaml", "rt-detr/rtdetr-resnet101.yaml",
         "v9/yolov9c-seg.yaml", "v9/yolov9e-seg.yaml"]
CASES = [(rel, scale) for rel in FILES for scale in REFERENCE[rel]]


def _models_dir() -> Path | None:
    if os.environ.get("ZOO_ULTRALYTICS_MODELS"):
        return Path(os.environ["ZOO_ULTRALYTICS_MODELS"])
    if not REF_PYTHON:
        return Path(__file__).parents[1] / "data" / "ultralytics_cfg"  # the rows as data (test fixtures)
    code = "import importlib.util as u; print(u.find_spec('ultralytics').submodule_search_locations[0])"
    out = subprocess.run([REF_PYTHON, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return Path(out.stdout.strip()) / "cfg" / "models"


@pytest.fixture(scope="session")
def models() -> Path:
    found = _models_dir()
    if found is None or not found.is_dir():
        pytest.skip("Ultralytics' cfg/models not found (set ZOO_ULTRALYTICS_MODELS or ZOO_REF_PYTHON)")
    return found


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("rel,scale", CASES, ids=[f"{r}:{s}" if s else r for r, s in CASES])
def test_params_per_row_equal_ultralytics(models: Path, rel: str, scale: str) -> None:
    ref = REFERENCE[rel][scale]
    m = zoo.build_model(models / rel, scale=scale or None, device="meta")
    assert [n_params(layer) for layer in m.model] == ref["rows"]
    assert n_params(m) == ref["params"]


def test_validate_every_file(models: Path, capsys) -> None:
    """`zoo validate` at 640 px: each file at its default scale (the stem's letter, else the first key)."""
    assert cli.main(["validate", *(str(models / rel) for rel in FILES), "--imgsz", "640"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(FILES)
    for rel, line in zip(FILES, lines):
        first = REFERENCE[rel][next(iter(REFERENCE[rel]))]
        assert line.startswith(f"{models / rel}: ok at 640 px: {len(first['rows'])} rows, {first['params']:,} params")


def test_scale_and_heads(models: Path) -> None:
    v9e = zoo.build_model(models / "v9/yolov9e.yaml", device="meta")
    assert v9e.config.family == "ultralytics"  # no scales, no anchors: an anchor-free [nc] Detect row
    assert v9e.stride.tolist() == [8.0, 16.0, 32.0]
    assert isinstance(v9e.model[10], CBLinear) and v9e.layers[14].out_channels == 64 + 128 + 256 + 512 + 1024
    fuse = v9e.model[18]
    assert isinstance(fuse, CBFuse) and fuse.slices == [(64, 128), (64, 128), (64, 128), (64, 128)]
    assert v9e.layers[18].out_channels == 128
    v10 = zoo.build_model(models / "v10/yolov10n.yaml", device="meta")
    head = v10.model[-1]
    assert isinstance(head, v10Detect) and head.reg_max == 16
    assert n_params(head.one2one_cv2) == n_params(head.cv2) and n_params(head.one2one_cv3) == n_params(head.cv3)
    assert isinstance(v10.model[22].m[0].cv1[2], RepVGGDW)  # lk=True
    assert zoo.build_model(models / "rt-detr/rtdetr-resnet50.yaml", device="meta").layers[4].out_channels == 2048


def test_eval_and_train_outputs(models: Path) -> None:
    v10 = zoo.build_model(models / "v10/yolov10n.yaml", imgsz=64).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        y, raw = v10(x)
        assert y.shape == (1, 84, 84) and set(raw) == {"one2many", "one2one"}
        v10.model[-1].end2end = True
        top, _ = v10(x)
    assert top.shape == (1, 84, 6)  # min(max_det, anchors) rows of x1, y1, x2, y2, score, class
    assert torch.equal(top[0, :, 4], top[0, :, 4].sort(descending=True).values)
    assert top[0, 0, 4] == raw["one2one"]["scores"].sigmoid().max()
    v10.train()
    out = v10(torch.rand(2, 3, 64, 64))
    assert set(out) == {"one2many", "one2one"} and out["one2one"]["scores"].shape == (2, 80, 84)


DEPLOYED = [("v9/yolov9t.yaml", torch.float32), ("v9/yolov9e.yaml", torch.float32),
            ("v10/yolov10n.yaml", torch.float32), ("v8/yolov8-p6.yaml", torch.float32),
            ("rt-detr/rtdetr-resnet50.yaml", torch.float64)]  # float64: top-k query order (see test_rtdetr)


@pytest.mark.parametrize("rel,dtype", DEPLOYED, ids=[r for r, _ in DEPLOYED])
def test_deploy_keeps_outputs(models: Path, helpers, rel: str, dtype: torch.dtype) -> None:
    m = zoo.build_model(models / rel, imgsz=128).to(dtype)
    d = copy.deepcopy(m)
    gap = helpers.deploy_gap(d, torch.rand(1, 3, 128, 128, dtype=dtype))
    assert gap <= 1e-4
    assert not any(isinstance(b, torch.nn.BatchNorm2d) for b in d.model[:-1].modules())
    assert not any(isinstance(b, RepVGGDW) and hasattr(b, "conv1") for b in d.modules())


@pytest.mark.parametrize("rel", ["v9/yolov9t.yaml", "v10/yolov10n.yaml"])
def test_plan_sums_equal_the_built_model(models: Path, test_module, rel: str) -> None:
    test_module("zoo/test_plan.py")._check_sums(models / rel, 64)


# -- bad input ------------------------------------------------------------------------------------------

HEAD = {"nc": 80, "family": "ultralytics", "backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [32, 3, 2]]]}


@pytest.mark.parametrize("rows,expected", [
    ([[0, 1, "CBLinear", [[16, 32]]], [[-1, 1], 1, "CBFuse", [[0]]]], "row 3 (CBFuse): group 0 of row 2 has 16 "
                                                                                "channels, the target row 1 has 32"),
    ([[0, 1, "CBLinear", [[16]]], [[-1, 1], 1, "CBFuse", [[2]]]], "row 3 (CBFuse): group index 2 for row 2"),
    ([[0, 1, "CBLinear", [[16]]], [[-1, 1], 1, "CBFuse", [[0, 0]]]], "row 3 (CBFuse): CBFuse reads 2 rows"),
    ([[0, 1, "CBLinear", [[16, 0]]]], "row 2 (CBLinear): CBLinear's first argument is a list"),
    ([[-1, 1, "ResNetLayer", [64, 16, 1, False, 2]]], "row 2 (ResNetLayer): ResNetLayer's first argument "
                                                      "(input width 64) differs from its input's 32"),
    ([[-1, 1, "PSA", [64]]], "row 2 (PSA): PSA keeps its width"),
    ([[[0, 1], 1, "v10Detect", ["nc", 16]]], "row 2 (v10Detect): v10Detect takes [nc], got 2"),
])
def test_bad_rows_are_one_line_config_errors(rows: list, expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        zoo.build_model({**HEAD, "head": rows}, device="meta")
    assert expected in str(e.value) and "\n" not in str(e.value)


# -- Ultralytics' weights -------------------------------------------------------------------------------

REFERENCE_RUN = """
import sys, torch
from torch import nn
from ultralytics.nn.tasks import DetectionModel, RTDETRDetectionModel
path, out, size, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3]), getattr(torch, sys.argv[4])
torch.manual_seed(0)
m = (RTDETRDetectionModel if "rtdetr" in path else DetectionModel)(path, verbose=False).to(dtype)
g = torch.Generator().manual_seed(1)
with torch.no_grad():
    for b in m.modules():  # non-trivial statistics, so that every BN is really exercised
        if isinstance(b, nn.BatchNorm2d):
            b.running_mean.copy_(torch.rand(b.num_features, generator=g) - 0.5)
            b.running_var.copy_(torch.rand(b.num_features, generator=g) * 1.5 + 0.5)
            b.weight.copy_(torch.rand(b.num_features, generator=g) + 0.5)
            b.bias.copy_(torch.rand(b.num_features, generator=g) - 0.5)
m.eval()
x = torch.rand(1, 3, size, size, generator=g).to(dtype)
with torch.no_grad():
    y, raw = m(x)
extra = {k: v for k, v in raw["one2one"].items() if k != "feats"} if "one2one" in raw else {}
torch.save({"state": m.state_dict(), "x": x, "y": y, "one2one": extra}, out)
"""
WEIGHTS = [("v9/yolov9t.yaml", "float32"), ("v9/yolov9c.yaml", "float32"), ("v10/yolov10n.yaml", "float32"),
           ("rt-detr/rtdetr-resnet50.yaml", "float64")]


@pytest.mark.skipif(not REF_PYTHON, reason="ZOO_REF_PYTHON (a Python with ultralytics 8.x) is not set")
@pytest.mark.parametrize("rel,dtype", WEIGHTS, ids=[r for r, _ in WEIGHTS])
def test_ultralytics_weights_load_strictly_and_agree(models: Path, helpers, tmp_path: Path, rel: str,
                                                     dtype: str) -> None:
    size, out = 128, tmp_path / "ref.pt"
    env = {**os.environ, "PYTHONPATH": os.environ.get("ZOO_REF_PYTHONPATH", "")}
    subprocess.run([REF_PYTHON, "-c", REFERENCE_RUN, str(models / rel), str(out), str(size), dtype],
                   env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=True)
    ref = torch.load(out, weights_only=True)
    m = zoo.build_model(models / rel, imgsz=size).to(getattr(torch, dtype)).eval()
    m.load_state_dict(ref["state"], strict=True)
    with torch.no_grad():
        y, raw = m(ref["x"])
    assert y.shape == ref["y"].shape
    assert helpers.rel_diff(ref["y"], y) <= 1e-5
    for k, v in ref["one2one"].items():  # YOLOv10's one-to-one branch, which eval does not decode
        assert helpers.rel_diff(v, raw["one2one"][k]) <= 1e-5


# -- the blocks alone: closed-form params, folds and semantics (no Ultralytics needed) --------------------

def K(c1: int, c2: int, k: int = 1, g: int = 1) -> int:
    """One Ultralytics Conv: bias-free conv + BN weight/bias."""
    return (c1 // g) * c2 * k * k + 2 * c2


def rep_csp(a: int, b: int, n: int) -> int:
    """RepCSP(a, b, n): a C3 (e 0.5) of n RepBottlenecks, each a RepConv (10c^2 + 4c) and a 3x3 Conv."""
    c = b // 2
    return 2 * K(a, c) + K(2 * c, b) + n * (10 * c * c + 4 * c + K(c, c, 3))


@pytest.mark.parametrize("c1,c2,c3,c4,n", [(64, 64, 32, 16, 1), (96, 128, 64, 32, 3)])
def test_gelan_blocks(helpers, c1: int, c2: int, c3: int, c4: int, n: int) -> None:
    m = RepNCSPELAN4(c1, c2, c3, c4, n)
    assert helpers.params(m) == (K(c1, c3) + rep_csp(c3 // 2, c4, n) + rep_csp(c4, c4, n) + 2 * K(c4, c4, 3)
                                 + K(c3 + 2 * c4, c2))
    assert helpers.params(ELAN1(c1, c2, c3, c4)) == K(c1, c3) + K(c3 // 2, c4, 3) + K(c4, c4, 3) + K(c3 + 2 * c4, c2)
    x = torch.rand(1, c1, 12, 10)
    assert helpers.deploy_gap(m, x) <= 1e-5  # the RepConvs fold
    assert m(x).shape == (1, c2, 12, 10)


@pytest.mark.parametrize("c1,c2", [(64, 128), (32, 48)])
def test_downsamplers_and_sppelan(helpers, c1: int, c2: int) -> None:
    x = torch.rand(1, c1, 16, 16)
    for m, params in ((ADown(c1, c2), K(c1 // 2, c2 // 2, 3) + K(c1 // 2, c2 // 2, 1)), (AConv(c1, c2), K(c1, c2, 3)),
                      (SCDown(c1, c2, 3, 2), K(c1, c2) + K(c2, c2, 3, g=c2))):
        assert helpers.params(m) == params
        assert m(x).shape == (1, c2, 8, 8)  # 2x2 average at stride 1 (15x15), then stride 2 with padding 1
    assert helpers.params(SPPELAN(c1, c2, 16)) == K(c1, 16) + K(64, c2)


def test_cblinear_groups_feed_cbfuse() -> None:
    """CBFuse adds group i of each CBLinear, resized (nearest) to the last input, to that input."""
    cfg = {"nc": 80, "backbone": [[-1, 1, "Conv", [8, 3, 2]], [-1, 1, "CBLinear", [[4, 8]]],
                                  [0, 1, "Conv", [8, 3, 2]], [[1, -1], 1, "CBFuse", [[1]]]],
           "head": [[[3, 3], 1, "Detect", ["nc"]]]}
    m = zoo.build_model(cfg, imgsz=32).eval()
    assert m.config.family == "ultralytics"
    assert sum(p.numel() for p in m.model[1].parameters()) == 8 * 12 + 12  # one biased 1x1 conv to 4 + 8
    assert m.layers[1].out_channels == 12 and m.model[3].slices == [(4, 8)]
    seen = {}
    with torch.no_grad():
        m.run(torch.rand(1, 3, 32, 32), lambda i, mod, inp: seen.setdefault(i, (inp, mod(inp)))[1])
    group = seen[1][1][:, 4:12]  # 8 channels at 16x16
    expected = seen[2][1] + group[:, :, ::2, ::2]  # nearest to 8x8 takes every second pixel
    assert torch.allclose(seen[3][1], expected)


def test_repvggdw_folds(helpers) -> None:
    m = RepVGGDW(16).eval()
    assert helpers.params(m) == K(16, 16, 7, 16) + K(16, 16, 3, 16)
    x = torch.rand(1, 16, 9, 9)
    assert helpers.deploy_gap(m, x) <= 1e-5
    assert not hasattr(m, "conv1") and helpers.params(m) == 16 * 49 + 16


@pytest.mark.parametrize("lk", [False, True])
def test_c2fcib_and_psa(helpers, lk: bool) -> None:
    c1, c2, n = 64, 128, 2
    c = c2 // 2
    mid = K(2 * c, 2 * c, 7, 2 * c) + K(2 * c, 2 * c, 3, 2 * c) if lk else K(2 * c, 2 * c, 3, 2 * c)
    cib = K(c, c, 3, c) + K(c, 2 * c) + mid + K(2 * c, c) + K(c, c, 3, c)
    assert helpers.params(C2fCIB(c1, c2, n, True, lk)) == K(c1, 2 * c) + K((2 + n) * c, c2) + n * cib
    h = 64
    assert helpers.params(PSA(128, 128)) == (K(128, 2 * h) + K(2 * h, 128) + helpers.params(Attention(h, 1))
                                            + K(h, 2 * h) + K(2 * h, h))


@pytest.mark.parametrize("ch,nc", [((64, 128, 256), 80), ((32, 64, 128), 3)])
def test_v10detect_params(helpers, ch: tuple[int, ...], nc: int) -> None:
    c2, c3 = max(16, ch[0] // 4, 64), max(ch[0], min(nc, 100))
    box = sum(9 * x * c2 + 9 * c2 * c2 + 4 * c2 + 64 * (c2 + 1) for x in ch)
    cls = sum(11 * x + x * c3 + c3 * c3 + 15 * c3 + nc * (c3 + 1) for x in ch)
    head = v10Detect(nc, ch)
    assert helpers.params(head) == 2 * (box + cls) + 16  # both branch sets and the frozen DFL
    assert helpers.params(head.one2one_cv3) == cls


@pytest.mark.parametrize("c1,c2,s,n", [(64, 64, 1, 3), (256, 128, 2, 2)])
def test_resnet_layer(helpers, c1: int, c2: int, s: int, n: int) -> None:
    def block(a: int, stride: int) -> int:
        proj = K(a, 4 * c2) if stride != 1 or a != 4 * c2 else 0
        return K(a, c2) + K(c2, c2, 3) + K(c2, 4 * c2) + proj

    m = ResNetLayer(c1, c2, s, False, n)
    assert helpers.params(m) == block(c1, s) + (n - 1) * block(4 * c2, 1)
    assert m(torch.rand(1, c1, 8, 8)).shape == (1, 4 * c2, 8 // s, 8 // s)
    assert helpers.params(ResNetLayer(3, 64, 1, True, 1)) == K(3, 64, 7)


@pytest.mark.parametrize("n", [1, 3])
def test_c2(helpers, n: int) -> None:
    c1, c2 = 96, 64
    c = c2 // 2
    assert helpers.params(C2(c1, c2, n, False)) == K(c1, 2 * c) + K(2 * c, c2) + n * 2 * K(c, c, 3)
