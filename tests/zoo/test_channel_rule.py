"""The one channel rule (zoo.rules.scale_channels) against values worked out by hand from the reference
rule, `make_divisible(min(c2, max_channels) * width, 8)` with make_divisible = ceil(x / 8) * 8 in float
arithmetic (YOLOv5: the same without the cap)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import zoo
from zoo.config import load_config
from zoo.errors import ConfigError
from zoo.plan import plan_config
from zoo.rules import make_divisible, scale_channels
from zoo.schema import Scale

ROOT = Path(__file__).resolve().parents[2]

# (c2, width, max_channels, what the reference rule gives), each worked out by hand
HAND = [
    (16, 1.0, 0.5, 8),          # min(16, 0.5) = 0.5 -> ceil(0.0625) * 8: a fractional cap is no zero
    (16, 1.0, 1024, 16),
    (1024, 0.25, 1024, 256),    # yolov8n P5
    (1024, 0.75, 768, 576),     # yolov8m P5
    (1024, 1.25, 512, 640),     # yolov8x P5
    (1024, 1.5, 512, 768),      # yolo11x P5
    (256, 0.5, 100.5, 56),      # 100.5 * 0.5 = 50.25 -> 56
    (64, 0.33, None, 24),       # YOLOv5: 21.12 -> 24
    (100, 0.25, None, 32),      # 25 -> 32
    (3, 0.1, None, 8),          # 0.3 rounds up to one group of 8, never down to 0
    (1, 1e-9, 7, 8),            # a tiny product still rounds up to 8
    (1024, 1.0, 10 ** 30, 1024),  # a huge cap is no cap
    (1 << 20, 16.0, None, 1 << 24),  # the largest argument at the largest multiple
    (400, 1.1, None, 448),      # float: 400 * 1.1 = 440.00000000000006 -> ceil(55.000...) = 56 groups
    (80, 0.3, None, 24),        # float: 80 * 0.3 = 24.0 exactly in doubles -> 24
]


@pytest.mark.parametrize("c,width,cap,want", HAND)
def test_scale_channels_equals_the_reference_rule(c: int, width: float, cap: float | None, want: int) -> None:
    assert scale_channels(c, Scale("n", 1.0, width, cap)) == want


def test_make_divisible_rounds_up() -> None:
    assert [make_divisible(x, 8) for x in (0.5, 8, 8.0001, 15.9, 16)] == [8, 8, 16, 16, 16]


def test_search_multiple_applies_after_the_width() -> None:
    # (min(1024, 512) * 0.5) * 0.75 = 192
    assert scale_channels(1024, Scale("n", 1.0, 0.5, 512), 0.75) == 192


MINIMAL = "scales:\n  n: [1.0, 1.0, 0.5]\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n"


def test_fractional_cap_builds_eight_channels(tmp_path: Path) -> None:
    path = tmp_path / "minimal.yaml"
    path.write_text(MINIMAL)
    cfg = load_config(path)
    assert cfg.scale.max_channels == 0.5  # kept as written, not truncated to 0
    plan = plan_config(cfg, imgsz=640)
    assert plan.rows[0].out.channels == 8
    model = zoo.build_model(str(path))
    assert model.layers[0].out_channels == 8
    assert sum(p.numel() for p in model.parameters()) == 3 * 8 * 9 + 2 * 8


def test_validate_and_profile_agree_on_the_minimal_config(tmp_path: Path) -> None:
    path = tmp_path / "minimal.yaml"
    path.write_text(MINIMAL)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    val = subprocess.run([sys.executable, "cli.py", "validate", str(path), "--imgsz", "640"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=240)
    assert val.returncode == 0, val.stderr
    assert "1 rows, 232 params" in val.stdout + val.stderr  # 3*8*9 + 2*8
    prof = subprocess.run([sys.executable, "cli.py", "profile", str(path), "--imgsz", "64", "--no-latency", "--format", "json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert prof.returncode == 0, prof.stderr
    assert "Traceback" not in prof.stderr and "232" in prof.stdout


def test_a_rule_that_gives_zero_channels_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"  # 1 * 5e-324 / 8 underflows to 0: the reference would build 0 channels
    path.write_text("depth_multiple: 1.0\nwidth_multiple: 5.0e-324\nbackbone:\n  - [-1, 1, Conv, [1, 3, 2]]\n")
    with pytest.raises(ConfigError) as e:
        plan_config(load_config(path), imgsz=64)
    text = str(e.value)
    assert "\n" not in text and "tiny.yaml" in text and "row 0" in text and "at least 1" in text
