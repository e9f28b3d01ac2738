"""Every built-in config, found automatically, builds at every scale."""
from __future__ import annotations

import pytest

import zoo
from zoo.config import builtin_names

NAMES = sorted(builtin_names())


def test_builtins_are_found() -> None:
    assert {"yolov5s", "yolov5x-seg"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_builds_on_meta_at_its_scale(name: str) -> None:
    model = zoo.build_model(name, device="meta")
    assert model.config.scale.name == builtin_names()[name][1]
    assert sum(p.numel() for p in model.parameters()) > 0
    assert model.layers[-1].index == len(model.config.rows) - 1


# A real CPU forward of every file's first scale (finite outputs, every row's shape as planned) is
# test_registry_contract.py::test_meta_build_equals_cpu_build.
