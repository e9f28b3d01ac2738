"""Ultralytics' v3, v6, YOLO12, YOLO-World and YOLOE files: every scale builds with the total and per-row
parameters Ultralytics 8.4.190 gives (tests/data/ultralytics_reference.json, written by
bench/ultralytics_reference.py; the YAML rows are in tests/data/ultralytics_cfg/ as plain data)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.builder import build_model
from zoo.config import load_config

DATA = Path(__file__).resolve().parents[1] / "data"
REFERENCE = json.loads((DATA / "ultralytics_reference.json").read_text())["files"]
FILES = ["v3/yolov3.yaml", "v3/yolov3-spp.yaml", "v3/yolov3-tiny.yaml", "v6/yolov6.yaml", "12/yolo12.yaml",
         "v8/yolov8-world.yaml", "v8/yolov8-worldv2.yaml", "v8/yoloe-v8.yaml", "11/yoloe-11.yaml"]
CASES = [(f, s) for f in FILES for s in REFERENCE[f]]


def row_params(rel: str, scale: str) -> list[int]:
    cfg = load_config(DATA / "ultralytics_cfg" / rel, scale=scale or None)
    model = build_model(cfg, device="meta")
    return [sum(p.numel() for p in layer.parameters()) for layer in model.model]


@pytest.mark.parametrize("rel,scale", CASES, ids=[f"{f}:{s or '-'}" for f, s in CASES])
def test_params_per_row_equal_ultralytics(rel: str, scale: str) -> None:
    want = REFERENCE[rel][scale]
    got = row_params(rel, scale)
    assert got == want["rows"]
    assert sum(got) == want["params"]
