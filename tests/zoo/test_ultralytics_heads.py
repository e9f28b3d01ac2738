"""Ultralytics' task heads (segment, pose, OBB, classify) and YOLO26 (end2end, reg_max 1, Segment26, Pose26,
OBB26, Depth, SemanticSegment) build exactly what Ultralytics 8.4 builds.

- every scale of the model YAMLs Ultralytics ships for these tasks: total and per-row params equal
  tests/data/ultralytics_reference.json (written by bench/ultralytics_reference.py);
- Ultralytics' own weights load strictly into zoo's model and give its eval outputs (<= 1e-5 relative):
  Ultralytics runs in a separate interpreter (ZOO_REF_PYTHON, ZOO_REF_PYTHONPATH; it is no dependency);
- deploy keeps the eval outputs; per-row plan sums equal the built model; bad head keys are one-line errors.

The YAML files are Ultralytics' (AGPL) and are not in this repository: they are read from ZOO_ULTRALYTICS_MODELS,
../shared/reference/ultralytics/models, or the cfg/models folder of the Ultralytics that ZOO_REF_PYTHON has.
"""
from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

import zoo
from zoo import ConfigError, build_model, deploy
from zoo.modules.heads import OBB26, Classify, Depth, Pose, Pose26, Segment, Segment26, SemanticSegment
from zoo.modules.ultralytics import C3k2, Detect, PSABlock

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = json.loads((ROOT / "tests" / "data" / "ultralytics_reference.json").read_text())["files"]
REF_PYTHON = os.environ.get("ZOO_REF_PYTHON")
FILES = ["v8/yolov8-seg.yaml", "v8/yolov8-pose.yaml", "v8/yolov8-obb.yaml", "v8/yolov8-cls.yaml",
         "11/yolo11-seg.yaml", "11/yolo11-pose.yaml", "11/yolo11-obb.yaml", "11/yolo11-cls.yaml",
         *(f"26/yolo26{s}.yaml" for s in ("", "-p2", "-p6", "-seg", "-pose", "-obb", "-cls", "-depth", "-sem"))]
CASES = [(f, s) for f in FILES for s in REFERENCE[f]]


def _ref_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.environ.get("ZOO_REF_PYTHONPATH", "")}


@functools.lru_cache(maxsize=1)
def models_dir() -> Path | None:
    """Where Ultralytics' model YAMLs are (see the module docstring), or None."""
    env = os.environ.get("ZOO_ULTRALYTICS_MODELS")
    if env:
        return Path(env)
    shared = ROOT.parent / "shared" / "reference" / "ultralytics" / "models"
    if shared.is_dir():
        return shared
    if REF_PYTHON:
        code = "import importlib.util; print(importlib.util.find_spec('ultralytics').origin)"
        out = subprocess.run([REF_PYTHON, "-c", code], env=_ref_env(), capture_output=True, text=True, timeout=60)
        if out.returncode == 0:
            return Path(out.stdout.strip()).parent / "cfg" / "models"
    return ROOT / "tests" / "data" / "ultralytics_cfg"  # the rows as data (test fixtures)


def yaml_path(rel: str) -> Path:
    root = models_dir()
    if root is None or not (root / rel).is_file():
        pytest.skip(f"Ultralytics' {rel} is not available (set ZOO_REF_PYTHON or ZOO_ULTRALYTICS_MODELS)")
    return root / rel


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# -- params, per row, against the reference figures -----------------------------------------------------

@pytest.mark.parametrize("rel,scale", CASES, ids=[f"{f}:{s}" for f, s in CASES])
def test_params_per_row_equal_ultralytics(rel: str, scale: str) -> None:
    expected = REFERENCE[rel][scale]
    m = build_model(yaml_path(rel), scale=scale, device="meta")
    assert [n_params(row) for row in m.model] == expected["rows"]
    assert n_params(m) == expected["params"]


def test_yolo26n_is_ultralytics_figure(helpers) -> None:
    """end2end doubles the head, reg_max 1 drops the DFL, SPPF's 4th arg is a residual, C3k2's 4th attention."""
    m = build_model(yaml_path("26/yolo26.yaml"), scale="n", device="meta")
    assert n_params(m) == 2_572_280
    head = m.model[-1]
    assert head.one2one and not head.end2end and head.reg_max == 1 and isinstance(head.dfl, torch.nn.Identity)
    assert n_params(head.one2one_cv2) == n_params(head.cv2) and n_params(head.one2one_cv3) == n_params(head.cv3)
    assert m.model[9].add and isinstance(m.model[9].cv1.act, torch.nn.Identity)  # SPPF [1024, 5, 3, True]
    c3k2 = m.model[22]
    assert isinstance(c3k2, C3k2) and isinstance(c3k2.m[0][1], PSABlock)
    large = build_model(yaml_path("26/yolo26.yaml"), scale="m", device="meta")
    assert isinstance(large.model[22].m[0][1], PSABlock)  # attention wins over the c3k forced at m/l/x


def test_kpt_shape_key_feeds_pose(tmp_path: Path) -> None:
    text = yaml_path("11/yolo11-pose.yaml").read_text().replace("kpt_shape: [17, 3]", "kpt_shape: [5, 2]")
    path = tmp_path / "yolo11n-pose.yaml"
    path.write_text(text)
    head = build_model(path, device="meta").model[-1]
    assert isinstance(head, Pose) and head.kpt_shape == (5, 2) and head.cv4[0][-1].out_channels == 10


@pytest.mark.parametrize("key,value,message", [
    ("reg_max", 0, "reg_max: must be an integer from 1"), ("reg_max", True, "reg_max: must be an integer"),
    ("end2end", "yes", "end2end: must be true or false"), ("kpt_shape", [17, 4], r"kpt_shape: must be \[keypoints"),
    ("kpt_shape", 17, r"kpt_shape: must be \[keypoints")])
def test_bad_head_keys_are_one_line_errors(key: str, value: Any, message: str) -> None:
    cfg = {"nc": 2, "scales": {"n": [1.0, 0.25, 1024]}, key: value,
           "backbone": [[-1, 1, "Conv", [64, 3, 2]], [-1, 1, "Conv", [64, 3, 2]]],
           "head": [[[0, 1], 1, "Detect", ["nc"]]]}
    with pytest.raises(ConfigError, match=message) as e:
        build_model(cfg, device="meta")
    assert "\n" not in str(e.value)


def test_bad_head_row_names_the_row() -> None:
    cfg = {"nc": 2, "scales": {"n": [1.0, 0.25, 1024]},
           "backbone": [[-1, 1, "Conv", [64, 3, 2]], [-1, 1, "Conv", [64, 3, 2]]],
           "head": [[[0, 1], 1, "Pose", ["nc", [17, 5]]]]}
    with pytest.raises(ConfigError, match=r"row 2.*kpt_shape must be") as e:
        build_model(cfg, device="meta")
    assert "\n" not in str(e.value)


def test_ultralytics_configs_get_ultralytics_heads() -> None:
    """YOLOv5 registers its own Segment; an Ultralytics config must resolve to Ultralytics' (ConvTranspose proto)."""
    assert zoo.REGISTRY.lookup("Segment", "ultralytics").cls is Segment
    assert zoo.REGISTRY.lookup("Segment", "yolov5").cls is not Segment
    seg = build_model(yaml_path("v8/yolov8-seg.yaml"), scale="n", device="meta").model[-1]
    assert isinstance(seg.proto.upsample, torch.nn.ConvTranspose2d) and seg.legacy


# -- outputs: the same weights give the same eval outputs -----------------------------------------------

IMGSZ = 128
OUTPUT_CASES = {  # name: (file, scale, Ultralytics model class)
    "yolo26n": ("26/yolo26.yaml", "n", "DetectionModel"),
    "yolo11n-pose": ("11/yolo11-pose.yaml", "n", "PoseModel"),
    "yolo11n-obb": ("11/yolo11-obb.yaml", "n", "OBBModel"),
    "yolo11n-cls": ("11/yolo11-cls.yaml", "n", "ClassificationModel"),
    "yolo26n-seg": ("26/yolo26-seg.yaml", "n", "SegmentationModel"),
    "yolo26n-pose": ("26/yolo26-pose.yaml", "n", "PoseModel"),
    "yolo26n-obb": ("26/yolo26-obb.yaml", "n", "OBBModel"),
    "yolov8n-seg": ("v8/yolov8-seg.yaml", "n", "SegmentationModel"),
    "yolo26n-depth": ("26/yolo26-depth.yaml", "n", "DepthModel"),
    "yolo26n-sem": ("26/yolo26-sem.yaml", "n", "SemanticSegmentationModel"),
}

# Runs in the reference interpreter: build, perturb every weight and BN statistic (so that loading is really
# checked), eval forward on a seeded input; save state dict, input and the outputs that are predictions.
REFERENCE_RUN = """
import sys, contextlib, io, torch
import ultralytics.nn.tasks as tasks
path, scale, cls, out, imgsz = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
d = tasks.yaml_model_load(path)
d["scale"] = scale
with contextlib.redirect_stdout(io.StringIO()):
    m = getattr(tasks, cls)(d, verbose=False)
g = torch.Generator().manual_seed(0)
with torch.no_grad():
    for name, t in m.state_dict().items():
        if not t.is_floating_point():
            continue
        if name.endswith("running_var"):
            t.copy_(torch.rand(t.shape, generator=g) * 1.5 + 0.5)
        else:
            t.add_(torch.randn(t.shape, generator=g) * 0.05)
m.eval()
x = torch.rand(2, 3, imgsz, imgsz, generator=g)
with torch.no_grad():
    y = m(x)
def primary(y):
    if isinstance(y, torch.Tensor):
        return [y]
    if cls == "ClassificationModel":
        return list(y)
    first = y[0]
    return [first] if isinstance(first, torch.Tensor) else list(first)
torch.save({"state_dict": m.state_dict(), "x": x, "outputs": primary(y)}, out)
"""


def primary_outputs(name: str, y: Any) -> list[torch.Tensor]:
    """The prediction tensors of zoo's eval output (not the raw branch outputs that come beside them)."""
    if isinstance(y, torch.Tensor):
        return [y]
    if OUTPUT_CASES[name][2] == "ClassificationModel":
        return list(y)
    first = y[0]
    return [first] if isinstance(first, torch.Tensor) else list(first)


@functools.lru_cache(maxsize=None)
def reference_run(name: str, tmp: str) -> dict[str, Any]:
    rel, scale, cls = OUTPUT_CASES[name]
    out = Path(tmp) / f"{name}.pt"
    subprocess.run([REF_PYTHON, "-c", REFERENCE_RUN, str(yaml_path(rel)), scale, cls, str(out), str(IMGSZ)],
                   env=_ref_env(), capture_output=True, text=True, timeout=300, check=True)
    return torch.load(out, weights_only=True)


@pytest.mark.skipif(not REF_PYTHON, reason="ZOO_REF_PYTHON (a Python with ultralytics 8.4) is not set")
@pytest.mark.parametrize("name", list(OUTPUT_CASES))
def test_ultralytics_weights_give_ultralytics_outputs(name: str, tmp_path: Path, helpers) -> None:
    ref = reference_run(name, str(tmp_path))
    rel, scale, _ = OUTPUT_CASES[name]
    model = build_model(yaml_path(rel), scale=scale, imgsz=IMGSZ).eval()
    model.load_state_dict(ref["state_dict"], strict=True)
    with torch.no_grad():
        outs = primary_outputs(name, model(ref["x"]))
    assert [tuple(t.shape) for t in outs] == [tuple(t.shape) for t in ref["outputs"]]
    for got, want in zip(outs, ref["outputs"]):
        assert helpers.rel_diff(want.double(), got.double()) <= 1e-5


# -- deploy, end-to-end inference, plan sums ------------------------------------------------------------

DEPLOY_FILES = [f for f in FILES if f != "26/yolo26-p6.yaml"]  # p6 is yolo26 with a fourth level: same blocks


@pytest.mark.parametrize("rel", DEPLOY_FILES)
def test_deploy_keeps_eval_outputs(rel: str, helpers) -> None:
    m = build_model(yaml_path(rel), scale="n", imgsz=64)
    helpers.randomise_bn(m)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = m.eval()(x)
        after = deploy(copy.deepcopy(m))(x)
    assert helpers.outputs_gap(before, after) <= 1e-4


def test_end2end_inference_picks_top_detections() -> None:
    """With end2end set, eval returns the max_det best (anchor, class) pairs of the one-to-one branches:
    xyxy box, score, class index (Ultralytics' NMS-free output)."""
    m = build_model(yaml_path("26/yolo26.yaml"), scale="n", imgsz=64).eval()
    head: Detect = m.model[-1]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        # The head alone, on unit features, with weights that keep the variance: at default init activations
        # shrink about 3x a layer, and both a whole model's features and a head with small weights left the
        # cells of a level tied in float32. Noise on the biases and norm scales parts the classes, which an
        # untrained head's one bias ties. Everything is drawn from g: the same every run.
        for p in head.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) * (2 / p[0].numel()) ** 0.5)
            else:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
        widths = [branch[0].conv.in_channels for branch in head.cv2]
        feats = [torch.randn(1, c, s, s, generator=g) for c, s in zip(widths, (8, 4, 2))]
        _, raw = head(feats)
        head.end2end = True
        y, _ = head(feats)
    anchors = 8 * 8 + 4 * 4 + 2 * 2
    assert y.shape == (1, anchors, 6)  # fewer anchors than max_det: all of them
    scores = raw["one2one"]["scores"].sigmoid()[0].T  # (anchors, nc)
    best = scores.flatten().topk(anchors)
    assert torch.equal(y[0, :, 4], best.values)
    assert torch.equal(y[0, :, 5], (best.indices % head.nc).float())
    anchor = best.indices // head.nc
    points, strides = head._anchors(raw["one2one"]["feats"])  # cell centres (2, A), strides (1, A)
    lt, rb = raw["one2one"]["boxes"][0].chunk(2, 0)  # reg_max 1: the distances themselves
    xyxy = torch.cat((points - lt, points + rb), 0) * strides
    top = 10  # the best pairs have distinct scores (ties further down may come in either order)
    assert (best.values[:top] > best.values[1:top + 1]).all()
    assert torch.allclose(y[0, :top, :4], xyxy[:, anchor[:top]].T)
    no_e2e = build_model(yaml_path("11/yolo11-obb.yaml"), scale="n", device="meta").model[-1]
    with pytest.raises(ValueError, match="no one-to-one"):
        no_e2e.end2end = True


@pytest.mark.parametrize("rel", ["11/yolo11-seg.yaml", "11/yolo11-pose.yaml", "26/yolo26.yaml", "26/yolo26-seg.yaml"])
def test_plan_sums_equal_the_built_model(rel: str, test_module) -> None:
    check_sums = test_module("zoo/test_plan.py")._check_sums
    check_sums(zoo.load_config(yaml_path(rel), scale="n"), 64)


def test_head_kinds() -> None:
    """The YOLO26 variants use YOLO26's heads, with the one-to-one copies end2end asks for."""
    kinds = {"26/yolo26-seg.yaml": Segment26, "26/yolo26-pose.yaml": Pose26, "26/yolo26-obb.yaml": OBB26,
             "26/yolo26-cls.yaml": Classify, "26/yolo26-depth.yaml": Depth, "26/yolo26-sem.yaml": SemanticSegment}
    for rel, cls in kinds.items():
        head = build_model(yaml_path(rel), scale="n", device="meta").model[-1]
        assert type(head) is cls, rel
    pose = build_model(yaml_path("26/yolo26-pose.yaml"), scale="n", device="meta").model[-1]
    assert {"one2one_cv4", "one2one_cv4_kpts", "one2one_cv4_sigma"} <= set(dict(pose.named_children()))
