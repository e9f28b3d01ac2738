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
         "v8/yolov8-world.yaml", "v8/yolov8-worldv2.yaml", "v8/yoloe-v8.yaml", "11/yoloe-11.yaml", "v8/yoloe-v8-seg.yaml", "11/yoloe-11-seg.yaml"]
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


def test_a2c2f_refuses_a_hidden_width_not_a_multiple_of_32(tmp_path: Path) -> None:
    from zoo.errors import ConfigError
    from zoo.plan import plan_config
    path = tmp_path / "a2.yaml"  # c2 = 96 -> hidden 48: Ultralytics asserts, we refuse in one line
    path.write_text("scales: {n: [1.0, 1.0, 1024]}\nbackbone:\n  - [-1, 1, Conv, [64, 3, 2]]\n"
                    "  - [-1, 1, A2C2f, [96, True, 1]]\n")
    with pytest.raises(ConfigError) as e:
        plan_config(load_config(path), imgsz=64)
    assert "\n" not in str(e.value) and "row 1" in str(e.value) and "multiple of 32" in str(e.value)


def test_search_offers_only_widths_a2c2f_can_build() -> None:
    from search.space import build_space
    from zoo.plan import plan_config
    space = build_space(DATA / "ultralytics_cfg" / "12" / "yolo12.yaml")
    a2 = {rp_i for rp_i, rp in enumerate(space.base.rows) if rp.module == "A2C2f"}
    limited = [s for s in space.stages if a2 & set(s.rows)]
    assert limited and all(len(s.choices) < 8 for s in limited)  # some default widths are dropped
    assert 0.5 not in next(s for s in space.stages if s.name == "head/8").choices  # 64 * 0.5: hidden 16
    for stage in limited:
        for w in stage.choices:  # every offered width plans (hidden widths multiples of 32)
            plan_config(space.base, imgsz=320, widths={r: w for r in stage.rows})


def test_v3_and_v6_files_are_ultralytics_and_torch_prefix_is_a_word() -> None:
    assert load_config(DATA / "ultralytics_cfg" / "v3" / "yolov3-tiny.yaml").family == "ultralytics"
    cfg = load_config(DATA / "ultralytics_cfg" / "v6" / "yolov6.yaml", scale="n")
    assert cfg.family == "ultralytics" and str(cfg.activation) == "nn.ReLU()"
    # a YOLOv5 file (anchors) stays YOLOv5's, and an anchorless backbone-only file too
    assert load_config({"anchors": 3, "backbone": [[-1, 1, "Conv", [16]]],
                        "head": [[-1, 1, "Detect", ["nc", "anchors"]]]}).family == "yolov5"
    assert load_config({"backbone": [[-1, 1, "Conv", [16]]]}).family == "yolov5"


@pytest.mark.parametrize("act", ["torch.nn.ReLU(", "__import__('os').ReLU()", "torch.ReLU()", "torch.nn.Foo()"])
def test_other_activation_text_is_refused(act: str) -> None:
    from zoo.errors import ConfigError
    with pytest.raises(ConfigError, match="activation"):
        load_config({"scales": {"n": [1.0, 1.0, 64]}, "activation": act, "backbone": [[-1, 1, "Conv", [16]]]})


def test_head_keys_zoo_does_not_build_are_refused_text_model_is_ignored(tmp_path: Path) -> None:
    from profiles import build_checked
    from zoo.errors import ConfigError
    with pytest.raises(ConfigError) as e:  # YOLOE-26: end-to-end heads with reg_max 1 are not built yet
        build_checked(DATA / "ultralytics_cfg" / "26" / "yoloe-26.yaml", scale="n", device="meta")
    assert "\n" not in str(e.value) and "end2end" in str(e.value)
    base = (DATA / "ultralytics_cfg" / "v8" / "yolov8-worldv2.yaml").read_text()
    path = tmp_path / "with-text-model.yaml"
    path.write_text("text_model: mobileclip2:b\n" + base)
    assert row_params(str(path), "n") == REFERENCE["v8/yolov8-worldv2.yaml"]["n"]["rows"]
