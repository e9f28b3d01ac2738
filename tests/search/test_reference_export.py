"""Exported best.yaml files build in their family's reference code with the params zoo reports.

YOLOv5 and Ultralytics are never dependencies: the check runs them in a separate interpreter named by
ZOO_REF_PYTHON (a Python with `ultralytics` 8.x installed) and, for YOLOv5, a v7.0 checkout named by
ZOO_YOLOV5_DIR. Without them the tests skip (see the closing note of issue 8 for how they were run).
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import zoo
from search import Budget, Measure, SearchOptions, SearchSettings, run_search

REF_PYTHON = os.environ.get("ZOO_REF_PYTHON")
YOLOV5_DIR = os.environ.get("ZOO_YOLOV5_DIR")

ULTRALYTICS = """
import sys
from ultralytics.nn.tasks import DetectionModel
m = DetectionModel(sys.argv[1], verbose=False)
print(sum(p.numel() for p in m.parameters()))
"""
YOLOV5 = """
import sys
from models.yolo import Model
m = Model(sys.argv[1])
print(sum(p.numel() for p in m.parameters()))
"""


def _search(name: str, tmp: Path) -> tuple[Path, int]:
    base = sum(p.numel() for p in zoo.build_model(name, device="meta").parameters())
    # gmacs sets no depth budget: uniform narrower scalings are feasible within a dozen trials
    opts = SearchOptions(budget=Budget(params_m=0.9 * base / 1e6), measure=Measure(imgsz=64), trials=12,
                         settings=SearchSettings(objective="gmacs"),
                         storage=str(tmp / "journal.log"), study_name="ref", out=str(tmp / "out"), max_uniform=2)
    result = run_search(name, opts)
    assert result.best is not None
    report = json.loads((tmp / "out" / "report.json").read_text())
    best = tmp / "out" / "best.yaml"
    assert sum(p.numel() for p in zoo.build_model(str(best)).parameters()) == report["best"]["params"]
    return best, report["best"]["params"]


def _reference_params(code: str, path: Path, cwd: str | None = None) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("ZOO_REF_PYTHONPATH"), cwd]))}
    out = subprocess.run([REF_PYTHON, "-c", code, str(path)], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not REF_PYTHON, reason="ZOO_REF_PYTHON (a Python with ultralytics 8.x) is not set")
@pytest.mark.parametrize("name", ["yolov8n", "yolo11n"])
def test_ultralytics_export_builds_in_ultralytics(name: str, tmp_path: Path) -> None:
    best, params = _search(name, tmp_path)
    assert _reference_params(ULTRALYTICS, best) == params


@pytest.mark.skipif(not (REF_PYTHON and YOLOV5_DIR), reason="ZOO_REF_PYTHON and ZOO_YOLOV5_DIR (v7.0) are not set")
def test_yolov5_export_builds_in_yolov5(tmp_path: Path) -> None:
    best, params = _search("yolov5n", tmp_path)
    assert _reference_params(YOLOV5, best, cwd=YOLOV5_DIR) == params
