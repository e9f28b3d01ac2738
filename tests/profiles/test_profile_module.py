"""profile_model on any nn.Module (per top-level child: fvcore counts, params, latency, no plan), and a
ModelProfile that reads well: to_dict() and a one-line repr."""
from __future__ import annotations

import io
import json

import pytest
import torch
from rich.console import Console
from torch import nn

from profiles import profile_model
from profiles.formats import to_csv, to_json, to_markdown
from zoo import ConfigError
from face.render_profile import render_table


class Tiny(nn.Module):
    """No torchvision, not a Sequential: a stem, a residual body read twice, a pooled linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1), nn.ReLU())
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        y = y + self.body(self.body(y))  # the body runs twice per pass
        return self.head(y.mean((2, 3)))


def test_sequential_per_child_counts() -> None:
    seq = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 32, 1))
    p = profile_model(seq, input_shape=(2, 3, 32, 32), latency=False)
    conv1, conv2 = 3 * 16 * 9 * 16 * 16 * 2, 16 * 32 * 16 * 16 * 2  # MACs: weights x output pixels x batch
    assert [lay.macs for lay in p.layers] == [conv1, 2 * 16 * 16 * 16 * 2, 0, conv2]  # BN: 2 per element
    assert p.macs == sum(lay.macs for lay in p.layers) and p.gflops == pytest.approx(2 * p.macs / 1e9)
    assert [lay.params for lay in p.layers] == [3 * 16 * 9 + 16, 32, 0, 16 * 32 + 32] and p.params == 1_024
    assert [lay.module for lay in p.layers] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d"]
    assert [lay.out_shape for lay in p.layers] == [(2, 16, 16, 16)] * 3 + [(2, 32, 16, 16)]
    assert [lay.stride for lay in p.layers] == [2.0] * 4 and p.layers[2].uncounted == {"aten::relu": 1}
    assert (p.batch, p.imgsz, p.input_shape, p.lint) == (2, 32, (2, 3, 32, 32), ())
    assert p.memory.param_bytes == 4 * p.params
    assert p.memory.peak_activation_bytes == 4 * (2 * 16 * 16 * 16 + 2 * 32 * 16 * 16)  # the 1x1 conv's in + out


def test_any_module_with_latency_and_reports() -> None:
    p = profile_model(Tiny(), input_shape=(1, 3, 16, 16), runs=3, warmup_s=0.0)
    body = 8 * 8 * 9 * 8 * 8
    assert [lay.module for lay in p.layers] == ["stem: Conv2d", "body: Sequential", "head: Linear"]
    assert [lay.macs for lay in p.layers] == [3 * 8 * 9 * 8 * 8, 2 * body, 8 * 5]  # body counted on both calls
    assert p.layers[1].uncounted == {"aten::relu": 2} and p.layers[2].out_shape == (1, 5)
    assert p.params == 3 * 8 * 9 + (8 * 8 * 9 + 8) + (8 * 5 + 5)
    assert p.latency is not None and all(lay.latency is not None and lay.latency.runs == 3 for lay in p.layers)
    assert sum(lay.share for lay in p.layers) == pytest.approx(1.0)
    [data] = json.loads(to_json([p]))
    assert data["input_shape"] == [1, 3, 16, 16] and data["layers"][0]["from"] is None
    assert data["source"] == "<Tiny>" and data["macs"] == p.macs
    assert "| 1 | - | 1 |" in to_markdown([p]) and to_csv([p]).splitlines()[1].startswith("Tiny,0,-,1,stem: Conv2d")
    buf = io.StringIO()
    render_table([p], Console(file=buf, width=100, color_system=None))
    text = buf.getvalue()
    assert "Tiny  (<Tiny>, input 1x3x16x16)" in text and "body: Sequential" in text
    assert "2 x fvcore MACs, eval, 1x3x16x16" in text


def test_plain_module_needs_an_input_shape() -> None:
    with pytest.raises(ConfigError, match=r"^<Tiny>: input_shape=None is needed to profile a plain nn.Module"):
        profile_model(Tiny(), latency=False)
    with pytest.raises(ConfigError, match=r"input_shape=\(1, 0, 8\) must be a tuple of positive integers"):
        profile_model(Tiny(), input_shape=(1, 0, 8), latency=False)
    with pytest.raises(ConfigError, match=r"crosscheck apply to zoo models"):
        profile_model(Tiny(), input_shape=(1, 3, 8, 8), crosscheck=True, latency=False)
    with pytest.raises(ConfigError, match=r"^<Tiny>: input_shape=\(1, 4, 8, 8\): forward pass failed"):
        profile_model(Tiny(), input_shape=(1, 4, 8, 8), latency=False)


def test_input_shape_for_a_zoo_model() -> None:
    by_shape = profile_model("yolov5n", input_shape=(2, 3, 64, 64), latency=False)
    by_size = profile_model("yolov5n", imgsz=64, batch=2, latency=False)
    assert (by_shape.batch, by_shape.imgsz, by_shape.macs) == (2, 64, by_size.macs)
    with pytest.raises(ConfigError, match=r"input_shape=\(1, 3, 64, 32\) must be \(batch, channels, size, size\)"):
        profile_model("yolov5n", input_shape=(1, 3, 64, 32), latency=False)
    with pytest.raises(ConfigError, match=r"input_shape=\(1, 4, 64, 64\) has 4 channels, the config 3"):
        profile_model("yolov5n", input_shape=(1, 4, 64, 64), latency=False)


def test_readable_repr_and_to_dict() -> None:
    p = profile_model("yolov5n", imgsz=64, latency=False)
    assert repr(p) == "ModelProfile(yolov5n: 1,872,157 params, 0.05 GFLOPs at 1x64x64, 25 rows, cpu float32)"
    assert "\n" not in repr(p) and len(repr(p)) < 120
    assert p.to_dict() == p.as_dict()
    assert repr(p.layers[0]) == "LayerProfile(0 Conv: 1,760 params, 0.004 GFLOPs)"
    assert p.layers[0].to_dict() == p.layers[0].as_dict()
