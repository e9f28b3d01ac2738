"""Every built-in config, found automatically: builds at every scale, and runs a real forward pass."""
from __future__ import annotations

import pytest
import torch

import zoo
from zoo.config import builtin_names

NAMES = sorted(builtin_names())
_first: dict = {}
for _name, (_path, _) in builtin_names().items():  # file order: a scales file lists n first
    _first.setdefault(_path, _name)
FIRST_OF_EACH_FILE = sorted(_first.values())


def test_builtins_are_found() -> None:
    assert {"yolov5s", "yolov5x-seg"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_builds_on_meta_at_its_scale(name: str) -> None:
    model = zoo.build_model(name, device="meta")
    assert model.config.scale.name == builtin_names()[name][1]
    assert sum(p.numel() for p in model.parameters()) > 0
    assert model.layers[-1].index == len(model.config.rows) - 1


@pytest.mark.parametrize("name", FIRST_OF_EACH_FILE)
def test_real_forward_at_small_size(name: str) -> None:
    torch.manual_seed(0)
    model = zoo.build_model(name).eval()
    size = max(64, int(max(model.stride.tolist())) * 2)
    with torch.no_grad():
        out = model(torch.rand(1, 3, size, size))
    first = out[0] if isinstance(out, (tuple, list)) else out
    assert isinstance(first, torch.Tensor) and first.shape[0] == 1
    assert torch.isfinite(first).all()
