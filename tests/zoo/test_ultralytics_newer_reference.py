"""YOLO12, YOLO-World v2 and YOLOE against Ultralytics itself: its weights load strictly into zoo's model
and the eval outputs on one fixed input agree to 1e-5 (relative to the largest output).

Ultralytics is never a dependency: it runs in a separate interpreter named by ZOO_REF_PYTHON (with
ZOO_REF_PYTHONPATH prepended to its path, e.g. a torchvision stub); without it these tests skip.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

import zoo
from zoo.modules.world import set_text_embeddings

REF_PYTHON = os.environ.get("ZOO_REF_PYTHON")
CFG = Path(__file__).resolve().parents[1] / "data" / "ultralytics_cfg"
IMGSZ = 256  # A2C2f's 4 areas split the 16x16 stride-16 map evenly

REFERENCE = """
import sys, torch
from ultralytics.nn import tasks
name, kind, out = sys.argv[1], sys.argv[2], sys.argv[3]
torch.manual_seed(0)
cls = {"detect": tasks.DetectionModel, "world": tasks.WorldModel, "yoloe": tasks.YOLOEModel,
       "yoloe-seg": tasks.YOLOESegModel}[kind]
m = cls(name, verbose=False).eval()
g = torch.Generator().manual_seed(1)
with torch.no_grad():
    for mod in m.modules():  # non-trivial BN statistics and residual scales, so a misplaced one shows
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
        if getattr(mod, "gamma", None) is not None:
            mod.gamma.copy_(torch.randn(mod.gamma.shape, generator=g))
text = torch.randn(1, 80, 512, generator=g)
x = torch.rand(2, 3, %d, %d, generator=g)
if kind == "world":
    m.txt_feats = text
    y = m(x, txt_feats=text)
elif kind.startswith("yoloe"):
    m.pe = text
    y = m(x)
else:
    y = m(x)
y = y[0] if isinstance(y, (tuple, list)) else y
y = list(y) if isinstance(y, (tuple, list)) else [y]  # a segment head: (detections, protos)
torch.save({"state": m.state_dict(), "x": x, "text": text, "y": y}, out)
""" % (IMGSZ, IMGSZ)


def _reference(name: str, kind: str, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.environ.get("ZOO_REF_PYTHONPATH", "")}
    run = subprocess.run([REF_PYTHON, "-c", REFERENCE, name, kind, str(out)], env=env, capture_output=True,
                         text=True, timeout=280, cwd=out.parent)
    assert run.returncode == 0, run.stderr[-2000:]
    return torch.load(out, weights_only=True)


@pytest.mark.skipif(not REF_PYTHON, reason="ZOO_REF_PYTHON (a Python with ultralytics 8.x) is not set")
@pytest.mark.parametrize("name,rel,scale,kind", [
    ("yolo12n.yaml", "12/yolo12.yaml", "n", "detect"),
    ("yolov8s-worldv2.yaml", "v8/yolov8-worldv2.yaml", "s", "world"),
    ("yolov8n-world.yaml", "v8/yolov8-world.yaml", "n", "world"),  # ImagePoolingAttn's refined text flows on
    ("yoloe-11s.yaml", "11/yoloe-11.yaml", "s", "yoloe"),
    ("yoloe-v8s-seg.yaml", "v8/yoloe-v8-seg.yaml", "s", "yoloe-seg"),
])
def test_weights_load_strictly_and_outputs_match(name: str, rel: str, scale: str, kind: str,
                                                 tmp_path: Path) -> None:
    ref = _reference(name, kind, tmp_path / "ref.pt")
    model = zoo.build_model(CFG / rel, scale=scale, imgsz=IMGSZ)
    model.load_state_dict(ref["state"], strict=True)
    set_text_embeddings(model, ref["text"])
    model.eval()
    with torch.no_grad():
        got = _tensors(model(ref["x"])[0])
        assert [t.shape for t in got] == [t.shape for t in ref["y"]]
        for y, want in zip(got, ref["y"]):
            assert ((y - want).abs().max() / want.abs().max()).item() <= 1e-5
        for y, want in zip(_tensors(zoo.deploy(model)(ref["x"])[0]), ref["y"]):
            assert ((y - want).abs().max() / want.abs().max()).item() <= 1e-4


def _tensors(y: object) -> list[torch.Tensor]:
    return list(y) if isinstance(y, (tuple, list)) else [y]  # type: ignore[arg-type]
