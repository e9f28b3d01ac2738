"""Search space: derived stages and depths, explicit candidates, settings precedence."""
from __future__ import annotations

import pytest
import yaml

import zoo
from search.space import build_space, load_settings


def _params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_yolov5s_space_and_explicit_base() -> None:
    space = build_space("yolov5s")
    assert [s.name for s in space.stages] == ["backbone/2", "backbone/4", "backbone/8", "backbone/16",
                                              "backbone/32", "head/32", "head/16", "head/8"]
    assert {d.row: d.base for d in space.depths} == {2: 1, 4: 2, 6: 3, 8: 1, 13: 1, 17: 1, 20: 1, 23: 1}
    assert space.depths[2].choices == (1, 2, 3, 4, 5, 6)
    base = space.resolve(space.uniform_params(1.0))
    assert (base["depth_multiple"], base["width_multiple"]) == (1.0, 1.0)
    assert base["backbone"][4] == [-1, 2, "C3", [128]]
    assert _params(zoo.build_model(base)) == 7_235_389


@pytest.mark.parametrize("m,depth,width", [(0.6, 0.33, 0.30), (0.8, 0.33, 0.40), (0.5, 0.33, 0.25)])
def test_uniform_width_equals_yolov5_scaling(m: float, depth: float, width: float) -> None:
    space = build_space("yolov5s")
    cand = zoo.build_model(space.resolve(space.uniform_params(m)))
    ref = zoo.build_model({**yaml.safe_load(open(zoo.config.CONFIG_DIR / "yolov5.yaml")), "scales": None,
                           "depth_multiple": depth, "width_multiple": width})
    assert _params(cand) == _params(ref)


def test_space_file_overrides_block_and_tinynas_btn_scales(tmp_path) -> None:
    cfg = {"family": "damo", "search": {"widths": [0.5, 1.0], "stage_weights": [0, 0, 1, 1, 16]},
           "backbone": [[-1, 1, "Focus", [32, 3]], [-1, 3, "ResK1KX", [64, 32, 3, 2]]]}
    f = tmp_path / "space.yaml"
    f.write_text(yaml.safe_dump({"search": {"widths": {"backbone/4": [0.5, 0.75]}, "depths": {1: [1, 3]}}}))
    c = zoo.load_config(cfg)
    s = load_settings(c, space_file=f, scope="backbone")
    assert s.stage_weights == (0, 0, 1, 1, 16) and s.scope == "backbone"
    space = build_space(c, s)
    assert {st.name: st.choices for st in space.stages} == {"backbone/2": (1.0,), "backbone/4": (0.5, 0.75)}
    assert space.depths[0].choices == (1, 3)
    out = space.resolve({"w:backbone/4": 0, "d:1": 1})
    assert out["backbone"][1] == [-1, 3, "ResK1KX", [32, 16, 3, 2]]  # out and btn both halved
    assert out["search"]["stage_weights"] == [0, 0, 1, 1, 16]


def test_bad_space_values() -> None:
    c = zoo.load_config({"backbone": [[-1, 1, "Conv", [16, 3, 2]]], "search": {"widths": [0, 1]}})
    with pytest.raises(zoo.ConfigError, match="widths must be"):
        load_settings(c)


@pytest.mark.parametrize(("search", "message"), [
    ({"widths": [2 ** 1024]}, "widths must be a list of multiples in (0, 16.0]"),
    ({"widths": {"backbone/2": [float("inf")]}}, "widths must be"),
    ({"depths": [1e300]}, "depths must be"),
    ({"depths": {0: [10 ** 9]}}, "row: list of counts 1..1000"),
    ({"stage_weights": [0, float("nan")]}, "stage_weights must be a non-empty list of numbers up to"),
    ({"stage_weights": [2 ** 1024]}, "stage_weights must be"),
])
def test_space_numbers_are_range_checked(search, message) -> None:
    c = zoo.load_config({"backbone": [[-1, 1, "Conv", [16, 3, 2]]], "search": search})
    with pytest.raises(zoo.ConfigError) as info:
        load_settings(c)
    assert message in info.value.text
