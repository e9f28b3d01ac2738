"""Shape lint: disabled shortcuts and anchor/stride mismatches are warned about, nothing else."""
from __future__ import annotations

import dataclasses

import pytest

import zoo
from zoo.lint import LintWarning, lint_model
from torch import nn

from zoo.registry import REGISTRY


def codes(model) -> list[tuple[int | None, str]]:
    return [(w.row, w.code) for w in lint_model(model)]


def test_effnetv2_head_strides_are_flagged() -> None:
    warnings = lint_model(zoo.build_model("yolov5s-effnetv2", device="meta"))
    assert [(w.row, w.code) for w in warnings] == [(27, "anchor-strides")]
    assert "16/32/64" in warnings[0].text and "8/16/32" in warnings[0].text


def test_published_effnetv2_is_flagged(shared_dir) -> None:
    model = zoo.build_model(shared_dir / "configs" / "yolov5s_EfficientNetv2.yaml", device="meta")
    assert codes(model) == [(27, "anchor-strides")]


@pytest.mark.parametrize("name", ["yolov5s", "yolov5n-seg", "yolov5s-gfpn", "yolov5l-gfpn", "yolov5l-ghostdynamic",
                                  "yolov5l-ghostdynamic-seg"])
def test_other_builtins_are_clean(name: str) -> None:
    assert lint_model(zoo.build_model(name, device="meta")) == ()


def test_evolved_anchors_are_not_checked() -> None:
    cfg = {"nc": 3, "anchors": 3, "backbone": [[-1, 1, "Conv", [16, 3, 8]], [-1, 1, "Conv", [32, 3, 2]],
                                               [-1, 1, "Conv", [64, 3, 2]], [-1, 1, "Conv", [64, 3, 2]]],
           "head": [[[1, 2, 3], 1, "Detect", ["nc", "anchors"]]]}
    assert lint_model(zoo.build_model(cfg, device="meta")) == ()
    cfg["anchors"] = [[10, 13, 16, 30], [30, 61, 62, 45], [116, 90, 156, 198]]
    assert codes(zoo.build_model(cfg, device="meta")) == [(4, "anchor-strides")]


@pytest.mark.parametrize("device", [None, "meta"])
def test_disabled_shortcut_is_flagged_only_when_asked_for(device: str | None) -> None:
    cfg = {"nc": 3, "backbone": [
        [-1, 1, "Conv", [32, 3, 2]],
        [-1, 1, "Bottleneck", [64]],                    # 1: shortcut by default, 32 -> 64: dropped
        [-1, 1, "Bottleneck", [32, False]],             # 2: no shortcut asked for
        [-1, 1, "C3", [128]],                           # 3: C3's bottlenecks are c_ -> c_: kept
        [-1, 1, "BasicBlock_3x3_Reverse", [96]],        # 4: 128 -> 96 with shortcut=True
        [-1, 1, "Bottleneck", [96]],                    # 5: 96 -> 96: kept
    ]}
    warnings = lint_model(zoo.build_model(cfg, device=device))
    assert [(w.row, w.code) for w in warnings] == [(1, "shortcut-disabled"), (4, "shortcut-disabled")]
    assert "32 channels, output 64" in warnings[0].text


def test_hgblock_widening_its_input(shared_dir) -> None:
    if "HGBlock" not in REGISTRY.names():
        pytest.skip("the Ultralytics family is not registered in this checkout")
    model = zoo.build_model(shared_dir / "configs" / "rtdetr-l-GhostModuleV3.yaml", device="meta")
    # row 6: HGBlock(512 -> 1024, n=6, shortcut=True) follows a 512-wide row: no residual add
    assert (6, "shortcut-disabled") in codes(model)


def test_warning_is_frozen() -> None:
    w = LintWarning(1, "x", "anchor-strides")
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.row = 2  # type: ignore[misc]


class _Raises(nn.Module):
    """Stands in for a conv whose forward fails, as a row that lint cannot probe would."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def forward(self, x):  # noqa: ANN001, ANN201
        raise self.error


SHORTCUT_ROWS = {"nc": 3, "backbone": [[-1, 1, "Conv", [32, 3, 2]], [-1, 1, "Bottleneck", [64]]]}


@pytest.mark.parametrize("error", [RuntimeError("mat1 and mat2 shapes cannot be multiplied"),
                                   NotImplementedError("no meta kernel"), ValueError("bad value")])
def test_a_row_whose_probe_raises_is_reported_not_hidden(error: Exception) -> None:
    model = zoo.build_model(SHORTCUT_ROWS, device="meta")
    model.model[1].cv1 = _Raises(error)
    warnings = lint_model(model)
    assert [(w.row, w.code) for w in warnings] == [(1, "not-checked")]
    assert warnings[0].text.startswith("row 1 not checked: Bottleneck")
    assert f"{type(error).__name__}: {error}" in warnings[0].text


def test_a_bug_in_a_probe_is_not_swallowed() -> None:
    model = zoo.build_model(SHORTCUT_ROWS, device="meta")
    model.model[1].cv1 = _Raises(KeyError("bug"))
    with pytest.raises(KeyError):
        lint_model(model)


def test_arguments_that_do_not_bind_are_reported() -> None:
    model = zoo.build_model(SHORTCUT_ROWS, device="meta")
    info = model.layers[1]
    layers = list(model.layers)
    layers[1] = dataclasses.replace(info, args=(*info.args, "extra", "args", "too", "many"))
    model.layers = tuple(layers)
    warnings = lint_model(model)
    assert [(w.row, w.code) for w in warnings] == [(1, "not-checked")]
    assert "do not fit Bottleneck's signature" in warnings[0].text
