"""Objectives: hand-computed values on synthetic rows and through `zoo score` on a real config, the plan's
rows against the built model, the registry."""
from __future__ import annotations

import json
import math
import statistics

import pytest
import torch

import cli
import zoo
from profiles.flops import count_flops
from profiles.rowcosts import CostCache
from search.objectives import (BaseSummary, ConvTerm, GroupValidity, ObjectiveContext, ObjectiveValue, RowCost,
                               RowTerms, check_depth, depth_budget, get_objective, objective_names, rank_key,
                               register_objective, rows_from_plan, summarize, unregister_objective, validity,
                               validity_report)
from search.objectives.deepmad import RHO_0, effectiveness
from search.score import analytic_row_terms, mae_of_rows, mae_score, trace_convs
from zoo.plan import plan_config

h = lambda x: 0.5 * math.log(x)  # noqa: E731  one call's entropy: half the log of its fan-in


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


def plan_rows(source, imgsz: int) -> tuple[RowTerms, ...]:
    """A config's rows as the search reads them: the row plan at `imgsz` and the per-signature costs."""
    cache = CostCache()
    plan = plan_config(source, imgsz=imgsz, prober=cache)
    return rows_from_plan(plan, cache.many(rp.signature for rp in plan.rows))


def forward_out_hw(model, imgsz: int) -> list[tuple[int, int] | None]:
    """Each row's output size by a real forward of the built model (not the plan's probes)."""
    shapes: dict[int, tuple[int, int] | None] = {}

    def row_hook(index, module, inp):
        y = module(inp)
        shapes[index] = tuple(y.shape[-2:]) if isinstance(y, torch.Tensor) and y.dim() == 4 else None
        return y

    with torch.no_grad():
        model.eval().run(torch.zeros(1, model.config.ch, imgsz, imgsz), row_hook)
    return [shapes[i] for i in range(len(model.layers))]


@pytest.mark.parametrize("source, imgsz", [("yolov5n", 160), ("yolov5n", 320), ("yolov8n", 224), ("chain", 100),
                                           ("tinynas", 96)])
def test_plan_rows_sum_to_the_built_models_counts(test_module, source: str, imgsz: int) -> None:
    """Every size exactly (100 px is no multiple of 32): params as built, fvcore MACs row by row, shapes."""
    t = test_module("search/test_score.py")
    source = {"chain": t.CHAIN, "tinynas": t.TINYNAS}.get(source, source)
    model = zoo.build_model(source, imgsz=imgsz)
    rows = plan_rows(source, imgsz)
    flops = count_flops(model, imgsz=imgsz)
    assert [r.cost.macs for r in rows] == [flops.by_row.get(i, 0) for i in range(len(model.layers))]
    assert sum(r.cost.macs for r in rows) == flops.macs
    assert [r.cost.params for r in rows] == [sum(p.numel() for p in m.parameters()) for m in model.model]
    assert sum(r.cost.params for r in rows) == sum(p.numel() for p in model.parameters())
    assert [r.out_hw for r in rows] == forward_out_hw(model, imgsz)
    assert [(r.out_channels, r.stride, r.section) for r in rows] == \
        [(i.out_channels, i.stride, i.section) for i in model.layers]
    ctx = ObjectiveContext(imgsz=imgsz)
    assert get_objective("gmacs")(rows, ctx).value == pytest.approx(flops.gmacs, rel=1e-15)
    assert get_objective("params")(rows, ctx).value * 1e6 == pytest.approx(sum(p.numel() for p in model.parameters()))


@pytest.mark.parametrize("source", ["chain", "tinynas", "yolov5s"])
def test_mae_of_plan_rows_equals_the_traced_convs(test_module, source: str) -> None:
    """The plan's conv calls are the built model's deploy-form calls (a forward trace), so MAE agrees."""
    t = test_module("search/test_score.py")
    source = {"chain": t.CHAIN, "tinynas": t.TINYNAS}.get(source, source)
    model = zoo.build_model(source, imgsz=128)
    rows = plan_rows(source, 128)
    calls = trace_convs(model)
    assert [[(c.fan_in, c.kind) for c in r.cost.convs] for r in rows] == \
        [[(c.fan_in, c.kind) for c in calls if c.row == i] for i in range(len(model.layers))]
    traced = analytic_row_terms(calls, len(model.layers))
    for kw in ({}, {"weights": (0, 0, 1, 1, 16)}, {"scope": "backbone"}, {"unscored": (4,)}):
        ref = mae_of_rows(rows, terms=traced, **kw)
        ctx = ObjectiveContext(imgsz=128, stage_weights=kw.get("weights"), scope=kw.get("scope", "all"),
                               unscored=frozenset(kw.get("unscored", ())))
        got = get_objective("mae")(rows, ctx)
        assert abs(got.value - ref.score) <= 1e-9, (source, kw)
        assert got.terms == pytest.approx({f"stage{s.stride}": s.score for s in ref.stages}, abs=1e-9)
    assert get_objective("mae")(rows, ObjectiveContext(imgsz=128)).value == pytest.approx(mae_score(model).score,
                                                                                         abs=1e-9)


def test_mae_keeps_tinynas_values_on_the_plan(test_module) -> None:
    """TinyNAS's formula by hand (test_score's TINYNAS): stage 32 and the DAMO-YOLO weights, at any size."""
    t = test_module("search/test_score.py")
    s2 = h(12 * 9)
    s4 = s2 + h(24) + h(16 * 9) + h(32) + h(16 * 9)
    s8 = s4 + h(32) + h(24 * 9) + h(48) + h(24 * 9)
    s16 = s8 + h(48 * 25) + h(32 * 25) + h(64) + h(40 * 9)
    s32 = s16 + h(64) + h(48 * 9)
    stage = {8: s8 + math.log(48), 16: s16 + math.log(64), 32: s32 + math.log(96)}
    for imgsz in (64, 160):
        rows = plan_rows(t.TINYNAS, imgsz)
        got = get_objective("mae")(rows, ObjectiveContext(imgsz=imgsz, stage_weights=(0, 0, 1, 1, 16)))
        assert got.terms["stage32"] == pytest.approx(stage[32], rel=1e-12)
        assert got.value == pytest.approx(stage[8] + stage[16] + 16 * stage[32], rel=1e-12)


# --- `zoo score --objective NAME --format json` on test_score's CHAIN at 64 px, every value by hand -------------

# (out channels, stride, fan-in) of CHAIN's rows: Conv 3x3 s2, Conv 3x3 s2, DWConv 3x3 (groups 32),
# Conv 3x3 s2, Conv 1x1, Conv 3x3 s2, Conv 3x3 s2; each Conv has BN (weight, bias) and no conv bias.
CHAIN_ROWS = ((16, 2, 27), (32, 4, 144), (32, 4, 9), (64, 8, 288), (64, 8, 64), (96, 16, 576), (128, 32, 864))
CHAIN_E = [sum(h(f) for _, _, f in CHAIN_ROWS[:i + 1]) for i in range(len(CHAIN_ROWS))]  # running entropy
CHAIN_ENDS = {2: 0, 4: 2, 8: 4, 16: 5, 32: 6}  # stride -> the last row of that stride


def chain_score(tmp_path, capsys, test_module, objective: str) -> dict:
    import yaml

    p = tmp_path / "chain.yaml"
    p.write_text(yaml.safe_dump(test_module("search/test_score.py").CHAIN))
    assert cli.main(["score", str(p), "--objective", objective, "--imgsz", "64", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["objective"], out["imgsz"], out["feasible"]) == (objective, 64, True)
    return out


def side(stride: int) -> int:
    return 64 // stride


def test_zoo_score_mae_by_hand(tmp_path, capsys, test_module) -> None:
    out = chain_score(tmp_path, capsys, test_module, "mae")
    stage = {s: CHAIN_E[i] + math.log(CHAIN_ROWS[i][0]) for s, i in CHAIN_ENDS.items()}
    assert out["terms"] == pytest.approx({f"stage{s}": v for s, v in stage.items()}, rel=1e-12)
    assert out["score"] == pytest.approx(stage[8] + stage[16] + 6 * stage[32], rel=1e-12)  # [0, 0, 1, 1, 6]


def test_zoo_score_deepmad_by_hand(tmp_path, capsys, test_module) -> None:
    out = chain_score(tmp_path, capsys, test_module, "deepmad")
    hs = {s: math.log(side(s) ** 2 * CHAIN_ROWS[i][0]) * CHAIN_E[i] for s, i in CHAIN_ENDS.items()}
    entropy = hs[2] + hs[4] + hs[8] + hs[16] + 8 * hs[32]  # weights [1, 1, 1, 1, 8]
    penalty = 10 * math.exp(statistics.pstdev([2, 2, 1, 1]))  # conv layers at strides 4, 8, 16, 32
    rho = max((i + 1) / math.exp(statistics.fmean(math.log(f) for _, _, f in CHAIN_ROWS[:i + 1]))
              for i in CHAIN_ENDS.values())  # layers over the geometric mean width at each stage end
    assert out["score"] == pytest.approx(entropy - penalty, rel=1e-12)
    assert out["terms"]["effectiveness"] == pytest.approx(rho, rel=1e-12) and rho <= RHO_0
    assert out["terms"]["depth_penalty"] == pytest.approx(penalty, rel=1e-12)


def test_zoo_score_feature_entropy_by_hand(tmp_path, capsys, test_module) -> None:
    out = chain_score(tmp_path, capsys, test_module, "feature_entropy")
    want = sum(side(s) ** 2 * c * e for (c, s, _), e in zip(CHAIN_ROWS, CHAIN_E)) / 1e6
    assert out["score"] == pytest.approx(want, rel=1e-12)
    assert out["terms"]["entropy_final"] == pytest.approx(CHAIN_E[-1], rel=1e-12)


def test_zoo_score_gmacs_and_params_by_hand(tmp_path, capsys, test_module) -> None:
    """Conv MACs c*h*w*fan-in, BN 2 per output element (fvcore, eval mode); params c*fan-in + 2c."""
    macs = sum(c * side(s) ** 2 * (f + 2) for c, s, f in CHAIN_ROWS)
    params = sum(c * f + 2 * c for c, _, f in CHAIN_ROWS)
    assert (macs, params) == (4550656, 194608)
    assert chain_score(tmp_path, capsys, test_module, "gmacs")["score"] == pytest.approx(macs / 1e9, rel=1e-15)
    assert chain_score(tmp_path, capsys, test_module, "params")["score"] == pytest.approx(params / 1e6, rel=1e-15)


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
        assert (b.max_layers, b.max_effectiveness) == (8, None) and name in b.reason  # layers only
    assert depth_budget(get_objective("gmacs"), base) is None
    assert depth_budget(get_objective("params"), base) is None
    user = depth_budget(get_objective("mae"), base, max_layers=20)
    assert (user.max_layers, user.max_effectiveness, user.reason) == (20, None, "set by the user")
    b = depth_budget(get_objective("mae"), base)
    assert check_depth(ROWS, CTX, b).ok
    deeper = (*ROWS[:4], row(9, "backbone", "Conv", 64, 8.0, (8, 8), 1, 1, (64, 64, "conv")), *ROWS[4:])
    assert check_depth(deeper, CTX, b).violated == "layers"
    wider = BaseSummary(layers=99, effectiveness=base.effectiveness / 2, macs=0, params=0)
    assert check_depth(ROWS, CTX, depth_budget(get_objective("mae"), wider)).ok  # narrower: no default bound
    own = depth_budget(get_objective("mae"), base, max_effectiveness=base.effectiveness / 2)  # the user's bound
    assert check_depth(ROWS, CTX, own).violated == "effectiveness"
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


# --- the measured validity a search's report states ------------------------------------------------------------

def results_file(tmp_path, kendall=0.9, regret=0.25):
    groups = {g: {"models": n, "objectives": {"mae": {"kendall": kendall, "key_regret": regret}}}
              for g, n in (("yolo5+yolo8", 21), ("pooled", 25))}
    p = tmp_path / "objective_validity.json"
    p.write_text(json.dumps({"metric": "mAP_0.5:0.95", "results": groups}))
    return p


def test_validity_reads_the_benchmark_results(tmp_path) -> None:
    got = validity("mae", results_file(tmp_path, kendall=0.5, regret=5.5))
    assert got.groups["yolo5+yolo8"] == GroupValidity(21, 0.5, 5.5) and got.groups["pooled"].models == 25
    assert got.as_dict()["yolo5+yolo8"] == {"models": 21, "kendall": 0.5, "regret": 5.5}
    assert got.metric == "mAP_0.5:0.95"
    assert validity("gmacs", results_file(tmp_path)) is None  # not measured there
    assert validity("mae", tmp_path / "absent.json") is None
    assert validity_report("mae", tmp_path / "absent.json") is None
    (tmp_path / "torn.json").write_text('{"results": {"pooled"')
    assert validity("mae", tmp_path / "torn.json") is None
    assert validity("mae", results_file(tmp_path, kendall=float("nan"))) is None


def test_validity_of_the_committed_results_is_the_benchmarks() -> None:
    from search.objectives.validity import RESULTS

    data = json.loads(RESULTS.read_text())
    for name in objective_names():
        got = validity(name)
        assert got is not None and got.source == "bench/results/objective_validity.json", name
        for group in ("yolo5+yolo8", "pooled"):
            entry = data["results"][group]["objectives"][name]
            assert (got.groups[group].kendall, got.groups[group].regret) == (entry["kendall"], entry["key_regret"])


def test_search_report_states_the_objective_and_its_validity(tmp_path, test_module) -> None:
    from search import Budget, SearchOptions, SearchSettings, run_search

    t = test_module("search/test_study.py")
    for objective in ("feature_entropy", "gmacs"):
        out = tmp_path / objective
        run_search(t.TINY, SearchOptions(
            budget=Budget(gflops=10.0), measure=t.FAST, trials=2, storage=str(out / "journal.log"), study_name="v",
            out=str(out), top_k=1, remeasure_factor=1, max_uniform=1,
            settings=SearchSettings(widths=[0.5, 0.75, 1.0], objective=objective)))
        report = json.loads((out / "report.json").read_text())["objective"]
        assert report["objective"] == objective
        assert report["validity"] == validity_report(objective) and report["validity"]["pooled"]["models"] == 25
        assert (report["depth_budget"] is None) == (objective == "gmacs")  # only depth-unbounded ones get one


def test_zoo_search_takes_the_objective(tmp_path, capsys, test_module) -> None:
    """`zoo search --objective gmacs` scores with it (report.json says so); an unknown name is one error line."""
    import yaml

    t = test_module("search/test_study.py")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(t.TINY))
    args = ["search", str(cfg), "--budget-gflops", "10", "--trials", "2", "--storage", str(tmp_path / "j.log"),
            "--study-name", "o", "-o", str(tmp_path / "o"), *t.CLI_FAST]
    assert cli.main([*args, "--objective", "gmacs"]) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["objective"]["objective"] == "gmacs" and report["objective"]["validity"] == validity_report("gmacs")
    assert report["best"]["score"] == pytest.approx(report["best"]["gflops"] / 2)  # GMACs = GFLOPs / 2
    capsys.readouterr()
    assert cli.main([*args, "--objective", "gmac"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown objective 'gmac'; did you mean gmacs" in err[0]
