"""MAE score: hand-computed values, analytic vs forward agreement, settings and `zoo score`."""
from __future__ import annotations

import json
import math

import pytest

import cli
import zoo
from search.score import mae_score, trace_convs
from search.space import load_settings

h = lambda x: 0.5 * math.log(x)  # noqa: E731  one conv's term: half the log of its fan-in

CHAIN = {"family": "yolov5", "nc": 1, "backbone": [
    [-1, 1, "Conv", [16, 3, 2]],     # 0 s2, fan-in 3*9
    [-1, 1, "Conv", [32, 3, 2]],     # 1 s4, 16*9
    [-1, 1, "DWConv", [32, 3, 1]],   # 2 s4, depthwise: 9
    [-1, 1, "Conv", [64, 3, 2]],     # 3 s8, 32*9
    [-1, 1, "Conv", [64, 1, 1]],     # 4 s8, 64
    [-1, 1, "Conv", [96, 3, 2]],     # 5 s16, 64*9
    [-1, 1, "Conv", [128, 3, 2]],    # 6 s32, 96*9
]}

TINYNAS = {"family": "damo", "backbone": [
    [-1, 1, "Focus", [24, 3]],             # 0 s2: 12*9, as TinyNAS's stem term
    [-1, 2, "ResK1KX", [32, 16, 3, 2]],    # 1 s4
    [-1, 2, "ResK1KX", [48, 24, 3, 2]],    # 2 s8
    [-1, 1, "ResKXKX", [64, 32, 5, 2]],    # 3 s16
    [-1, 1, "ResK1KX", [64, 40, 3, 1]],    # 4 s16, widths kept: no projection
    [-1, 1, "ResK1KX", [96, 48, 3, 2]],    # 5 s32
]}


def test_plain_chain_hand_computed() -> None:
    s2 = h(27)
    s4 = s2 + h(16 * 9) + h(9)
    s8 = s4 + h(32 * 9) + h(64)
    s16 = s8 + h(64 * 9)
    s32 = s16 + h(96 * 9)
    stages = {2: s2 + math.log(16), 4: s4 + math.log(32), 8: s8 + math.log(64), 16: s16 + math.log(96),
              32: s32 + math.log(128)}
    got = mae_score(zoo.build_model(CHAIN))
    assert {s.stride: s.score for s in got.stages} == pytest.approx(stages, rel=1e-12)
    assert got.score == pytest.approx(stages[8] + stages[16] + 6 * stages[32], rel=1e-12)


def test_tinynas_backbone_is_tinynas_formula() -> None:
    """k1kx: h(C_in) + h(btn k^2); kxkx: h(C_in k^2) + h(btn k^2); first block of a stage takes its input."""
    s2 = h(12 * 9)
    s4 = s2 + h(24) + h(16 * 9) + h(32) + h(16 * 9)
    s8 = s4 + h(32) + h(24 * 9) + h(48) + h(24 * 9)
    s16 = s8 + h(48 * 25) + h(32 * 25) + h(64) + h(40 * 9)
    s32 = s16 + h(64) + h(48 * 9)
    stage = {2: s2 + math.log(24), 4: s4 + math.log(32), 8: s8 + math.log(48), 16: s16 + math.log(64),
             32: s32 + math.log(96)}
    model = zoo.build_model(TINYNAS)
    got = mae_score(model)
    assert {s.stride: s.score for s in got.stages} == pytest.approx(stage, rel=1e-12)
    assert got.score == pytest.approx(stage[8] + stage[16] + 6 * stage[32], rel=1e-12)
    damo = mae_score(model, weights=[0, 0, 1, 1, 16])
    assert damo.score == pytest.approx(stage[8] + stage[16] + 16 * stage[32], rel=1e-12)
    assert sum(1 for c in trace_convs(model) if c.kind == "conv") == 1 + 2 * 7  # layers as TinyNAS counts


@pytest.mark.parametrize("source", [CHAIN, TINYNAS, "yolov5s"], ids=["chain", "tinynas", "yolov5s"])
def test_forward_agrees_with_analytic_at_320(source: object) -> None:
    model = zoo.build_model(source)
    a = mae_score(model)
    f = mae_score(model, method="forward", imgsz=320, repeats=2)
    assert f.score == pytest.approx(a.score, rel=0.02)
    for sa, sf in zip(a.stages, f.stages):
        assert sf.score == pytest.approx(sa.score, rel=0.02)


def test_scope_unscored_and_search_block() -> None:
    cfg = {**TINYNAS, "search": {"scope": "backbone", "stage_weights": [0, 0, 1, 1, 16], "unscored": [4]}}
    model = zoo.build_model(cfg)
    s = load_settings(model.config)
    assert (s.scope, s.stage_weights, s.unscored) == ("backbone", (0.0, 0.0, 1.0, 1.0, 16.0), (4,))
    full = mae_score(model)
    part = mae_score(model, weights=s.stage_weights, unscored=s.unscored)
    row4 = h(64) + h(40 * 9)
    by = {st.stride: st.score for st in full.stages}
    # row 3 now ends stride 16; rows after row 4 lose its terms
    assert {st.stride: st.score for st in part.stages}[16] == pytest.approx(by[16] - row4)
    assert {st.stride: st.score for st in part.stages}[32] == pytest.approx(by[32] - row4)
    # the head (Detect) ends no stage; scope backbone drops head rows
    y = zoo.build_model("yolov5s")
    assert max(st.row for st in mae_score(y, scope="backbone").stages) <= 9
    assert max(st.row for st in mae_score(y).stages) == 23


def test_bad_search_block_is_a_config_error() -> None:
    with pytest.raises(zoo.ConfigError, match="unknown key 'weights'"):
        load_settings(zoo.load_config({**CHAIN, "search": {"weights": [1]}}))
    with pytest.raises(zoo.ConfigError, match="scope must be"):
        load_settings(zoo.load_config({**CHAIN, "search": {"scope": "neck"}}))


def test_zoo_score_json(tmp_path, capsys) -> None:
    import yaml

    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(TINYNAS))
    assert cli.main(["score", str(p), "--objective", "mae", "--stage-weights", "0,0,1,1,16", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["objective"] == "mae"
    assert [s["stride"] for s in out["stages"]] == [2, 4, 8, 16, 32]
    assert out["score"] == pytest.approx(sum(s["weight"] * s["score"] for s in out["stages"]))
    assert out["stages"][4]["weight"] == 16


def test_zoo_score_default_objective_reads_the_image_size(tmp_path, capsys) -> None:
    """`zoo score` scores with the search's default objective; feature_entropy grows with the image area."""
    import yaml

    p = tmp_path / "chain.yaml"
    p.write_text(yaml.safe_dump(CHAIN))
    values = {}
    for size in (160, 320):
        assert cli.main(["score", str(p), "--imgsz", str(size), "--format", "json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["objective"] == "feature_entropy"
        values[size] = out["score"]
    assert values[320] == pytest.approx(4 * values[160], rel=1e-12)  # every map has 4x the units at 2x the side
