"""Objectives: hand-computed values on a small synthetic candidate, MAE equal to search.score, the registry."""
from __future__ import annotations

import importlib.util
import math
import statistics
from pathlib import Path

import pytest

import zoo
from search.objectives import (BaseSummary, ConvTerm, ObjectiveContext, ObjectiveValue, RowCost, RowTerms,
                               check_depth, depth_budget, get_objective, objective_names, rank_key,
                               register_objective, summarize, unregister_objective)
from search.objectives.deepmad import RHO_0, effectiveness
from search.score import mae_score

BENCH = Path(__file__).resolve().parents[2] / "bench"
h = lambda x: 0.5 * math.log(x)  # noqa: E731  one call's entropy: half the log of its fan-in


def bench_module(name: str):
    """A bench/ file imported by path (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"zoo_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(i, section, module, c, stride, hw, params, macs, *convs):
    return RowTerms(i, section, module, c, stride, hw,
                    RowCost(params, macs, tuple(ConvTerm(f, oc, k) for f, oc, k in convs)))


# A 64 px candidate: stem, a stride-4 pair (one row with three calls, one depthwise), stride 8, a neck
# conv and a head with a conv and a linear call (the head has no feature map and ends no stage).
ROWS = (
    row(0, "backbone", "Conv", 16, 2.0, (32, 32), 448, 1000, (27, 16, "conv")),
    row(1, "backbone", "Conv", 32, 4.0, (16, 16), 4640, 2000, (144, 32, "conv")),
    row(2, "backbone", "C3", 32, 4.0, (16, 16), 3000, 3000, (32, 16, "conv"), (144, 16, "conv"), (9, 16, "conv")),
    row(3, "backbone", "Conv", 64, 8.0, (8, 8), 18000, 4000, (288, 64, "conv")),
    row(4, "head", "Conv", 64, 8.0, (8, 8), 4000, 500, (64, 64, "conv")),
    row(5, "head", "Detect", None, None, None, 1000, 100, (64, 80, "conv"), (64, 4, "linear")),
)
E0 = h(27)
E1 = E0 + h(144)
E2 = E1 + h(32) + h(144) + h(9)
E3 = E2 + h(288)
E4 = E3 + h(64)
CTX = ObjectiveContext(imgsz=64)


def value(name: str, ctx: ObjectiveContext = CTX, rows=ROWS) -> ObjectiveValue:
    return get_objective(name)(rows, ctx)


def test_mae_hand_computed() -> None:
    s2, s4, s8 = E0 + math.log(16), E2 + math.log(32), E4 + math.log(64)
    got = value("mae")
    assert got.terms == pytest.approx({"stage2": s2, "stage4": s4, "stage8": s8}, rel=1e-12)
    assert got.value == pytest.approx(s8, rel=1e-12)  # [0, 0, 1, 1, 6]: stride 8 weighs 1
    assert value("mae", ObjectiveContext(imgsz=64, stage_weights=(1, 2, 3))).value == \
        pytest.approx(s2 + 2 * s4 + 3 * s8, rel=1e-12)
    # scope backbone: stride 8 ends at row 3; unscored row 2: stride 4 ends at row 1 without row 2's calls
    assert value("mae", ObjectiveContext(imgsz=64, scope="backbone")).terms["stage8"] == \
        pytest.approx(E3 + math.log(64), rel=1e-12)
    part = value("mae", ObjectiveContext(imgsz=64, unscored=frozenset({2})))
    assert part.terms["stage4"] == pytest.approx(E1 + math.log(32), rel=1e-12)
    assert part.terms["stage8"] == pytest.approx(E4 - (E2 - E1) + math.log(64), rel=1e-12)
    assert value("mae", ObjectiveContext(imgsz=640)).value == got.value  # no spatial term


def test_deepmad_hand_computed() -> None:
    hs = {2: math.log(32 * 32 * 16) * E0, 4: math.log(16 * 16 * 32) * E2, 8: math.log(8 * 8 * 64) * E4}
    penalty = 10 * math.exp(statistics.pstdev([1 + 3, 1]))  # backbone conv layers at strides 4 and 8
    rho = max(1 / 27, 5 / math.exp(math.log(27 * 144 * 32 * 144 * 9) / 5),
              7 / math.exp(math.log(27 * 144 * 32 * 144 * 9 * 288 * 64) / 7))
    got = value("deepmad")
    assert got.value == pytest.approx(sum(hs.values()) - penalty, rel=1e-12)  # weights 1 at strides 2..16
    assert got.terms["effectiveness"] == pytest.approx(rho, rel=1e-12)
    assert got.terms["depth_penalty"] == pytest.approx(penalty, rel=1e-12)
    assert got.feasible and rho < RHO_0
    # the resolution term: the same rows at twice the size (maps 4x the area) score more
    big = tuple(RowTerms(r.index, r.section, r.module, r.out_channels, r.stride,
                         (2 * r.out_hw[0], 2 * r.out_hw[1]) if r.out_hw else None, r.cost) for r in ROWS)
    assert get_objective("deepmad")(big, ObjectiveContext(imgsz=128)).value == pytest.approx(
        got.value + math.log(4) * (E0 + E2 + E4), rel=1e-12)


def test_deepmad_effectiveness_budget() -> None:
    """Ten 1x1 convs of 8 channels: rho = 10 / 8 > 0.5, infeasible with the reason."""
    deep = tuple(row(i, "backbone", "Conv", 8, 2.0, (32, 32), 72, 1, (8, 8, "conv")) for i in range(10))
    got = value("deepmad", rows=deep)
    assert got.terms["effectiveness"] == pytest.approx(10 / 8)
    assert not got.feasible and "effectiveness 1.250 > 0.5" in got.reason
    assert effectiveness(deep, CTX) == pytest.approx(1.25)


def test_feature_entropy_hand_computed() -> None:
    want = (32 * 32 * 16 * E0 + 16 * 16 * 32 * E1 + 16 * 16 * 32 * E2 + 8 * 8 * 64 * E3 + 8 * 8 * 64 * E4) / 1e6
    assert value("feature_entropy").value == pytest.approx(want, rel=1e-12)
    back = value("feature_entropy", ObjectiveContext(imgsz=64, scope="backbone")).value
    assert back == pytest.approx(want - 8 * 8 * 64 * E4 / 1e6, rel=1e-12)


def test_gmacs_and_params_are_sums() -> None:
    assert value("gmacs").value == pytest.approx(10600 / 1e9)
    assert value("params").value == pytest.approx(31088 / 1e6)


def test_mae_equals_search_score_on_built_models(test_module) -> None:
    """The objective on a built model's rows is search.score's MAE (hand-checked in test_score) exactly."""
    adapter = bench_module("_rowterms_adapter")
    t = test_module("search/test_score.py")
    for source in (t.CHAIN, t.TINYNAS, "yolov5s"):
        model = zoo.build_model(source)
        rows = adapter.row_terms(model, 128)
        for kw in ({}, {"weights": (0, 0, 1, 1, 16)}, {"scope": "backbone"}, {"unscored": (4,)}):
            ref = mae_score(model, **kw)
            ctx = ObjectiveContext(imgsz=128, stage_weights=kw.get("weights"), scope=kw.get("scope", "all"),
                                   unscored=frozenset(kw.get("unscored", ())))
            got = get_objective("mae")(rows, ctx)
            assert got.value == pytest.approx(ref.score, rel=1e-12), (source, kw)
            assert got.terms == pytest.approx({f"stage{s.stride}": s.score for s in ref.stages}, rel=1e-12)
    tiny = adapter.row_terms(zoo.build_model(t.TINYNAS), 64)  # TinyNAS's formula, stage 32, by hand
    s4 = h(12 * 9) + h(24) + h(16 * 9) + h(32) + h(16 * 9)
    s16 = s4 + h(32) + h(24 * 9) + h(48) + h(24 * 9) + h(48 * 25) + h(32 * 25) + h(64) + h(40 * 9)
    s32 = s16 + h(64) + h(48 * 9) + math.log(96)
    assert get_objective("mae")(tiny, ObjectiveContext(imgsz=64)).terms["stage32"] == pytest.approx(s32, rel=1e-12)


def test_adapter_rows_sum_to_the_model_totals() -> None:
    from profiles.flops import count_flops

    adapter = bench_module("_rowterms_adapter")
    model = zoo.build_model("yolov5n")
    rows = adapter.row_terms(model, 160)
    assert sum(r.cost.macs for r in rows) == count_flops(model, imgsz=160).macs
    assert sum(r.cost.params for r in rows) == sum(p.numel() for p in model.parameters())
    assert [r.out_hw for r in rows[:3]] == [(80, 80), (40, 40), (40, 40)]
    assert get_objective("gmacs")(rows, ObjectiveContext(imgsz=160)).value == pytest.approx(
        count_flops(model, imgsz=160).gmacs)


def test_rank_key_puts_feasible_first_and_follows_direction() -> None:
    ok, bad = ObjectiveValue(1.0), ObjectiveValue(100.0, feasible=False)
    assert rank_key(ok) > rank_key(bad)
    assert rank_key(ObjectiveValue(1.0), "minimize") > rank_key(ObjectiveValue(2.0), "minimize")
    with pytest.raises(ValueError, match="direction="):
        rank_key(ok, "up")


def test_depth_budget_rule() -> None:
    base = summarize(ROWS, CTX)
    assert (base.layers, base.macs, base.params) == (8, 10600, 31088)  # the linear call is no layer
    assert base.effectiveness == pytest.approx(value("deepmad").terms["effectiveness"])
    for name in ("mae", "deepmad", "feature_entropy"):
        b = depth_budget(get_objective(name), base)
        assert (b.max_layers, b.max_effectiveness) == (8, base.effectiveness) and name in b.reason
    assert depth_budget(get_objective("gmacs"), base) is None
    assert depth_budget(get_objective("params"), base) is None
    user = depth_budget(get_objective("mae"), base, max_layers=20)
    assert (user.max_layers, user.max_effectiveness, user.reason) == (20, None, "set by the user")
    b = depth_budget(get_objective("mae"), base)
    assert check_depth(ROWS, CTX, b).ok
    deeper = (*ROWS[:4], row(9, "backbone", "Conv", 64, 8.0, (8, 8), 1, 1, (64, 64, "conv")), *ROWS[4:])
    assert check_depth(deeper, CTX, b).violated == "layers"
    wider = BaseSummary(layers=99, effectiveness=base.effectiveness / 2, macs=0, params=0)
    assert check_depth(ROWS, CTX, depth_budget(get_objective("mae"), wider)).violated == "effectiveness"
    assert check_depth(deeper, CTX, None).ok


def test_registry() -> None:
    assert {"mae", "deepmad", "feature_entropy", "gmacs", "params"} <= set(objective_names())
    with pytest.raises(KeyError, match="did you mean mae"):
        get_objective("maee")
    with pytest.raises(ValueError, match="already registered"):
        register_objective("mae")(lambda rows, ctx: ObjectiveValue(0.0))
    with pytest.raises(ValueError, match="direction="):
        register_objective("x", direction="up")

    @register_objective("test_layers", direction="minimize")
    def _layers(rows, ctx):
        """Fewest layers."""
        return ObjectiveValue(float(sum(r.cost.layers for r in rows)))

    try:
        spec = get_objective("test_layers")
        assert (spec.direction, spec.description, spec.grows_with_depth) == ("minimize", "Fewest layers.", False)
        assert spec(ROWS, CTX).value == 8.0
        with pytest.raises(ValueError, match="reads no stage weights"):
            spec.weights(CTX)
    finally:
        unregister_objective("test_layers")
    assert "test_layers" not in objective_names()


@pytest.mark.parametrize("name", ["mae", "deepmad", "feature_entropy", "gmacs", "params"])
def test_every_builtin_returns_a_finite_value_and_declares_itself(name: str) -> None:
    spec = get_objective(name)
    got = spec(ROWS, CTX)
    assert math.isfinite(got.value) and spec.description
    assert spec.uses_imgsz == (name in ("deepmad", "feature_entropy", "gmacs"))


def test_context_errors_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="scope="):
        ObjectiveContext(scope="neck")
    with pytest.raises(ValueError, match="imgsz="):
        ObjectiveContext(imgsz=0)
    with pytest.raises(ValueError, match="stage_weights="):
        ObjectiveContext(stage_weights=())
    with pytest.raises(ValueError, match="stage_weights="):
        ObjectiveContext(stage_weights=(1.0, math.inf))
