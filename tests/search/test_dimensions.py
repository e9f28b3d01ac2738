"""Search dimensions: the input size, kernel sizes, expansion ratios and block choices searched beside
widths and depths; a candidate is one value that rebuilds from its exported config; the search refuses
exactly what `zoo validate` refuses; settings read back through one serialiser; a new dimension is one
class registered from a test."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

import zoo
from profiles import build_checked
from profiles.rowcosts import CostCache
from search import Budget, Measure, SearchOptions, export_trial, run_search
from search.dimensions import Candidate, Dimension, Knob, SpaceBase, register_dimension, unregister_dimension
from search.evaluate import CandidateError, candidate_costs, make_scoring, plan_candidate
from search.export import study_space
from search.settings import SearchSettings, load_settings, settings_from_record
from search.space import build_space
from zoo.config import Config
from zoo.plan import param_count, plan_config

import importlib.util as _ilu
_spec = _ilu.spec_from_file_location("zoo_tests_tiny", Path(__file__).resolve().parents[1] / "tiny.py")
tiny = _ilu.module_from_spec(_spec)
_spec.loader.exec_module(tiny)
TINY = tiny.SEARCH

# yolov5s: C3 or C3Ghost per backbone stage, kernel 3 or 5 on the downsample convs, every dimension varied
V5_SPACE = {"blocks": {2: ["C3", "C3Ghost"], 4: ["C3", "C3Ghost"], 6: ["C3", "C3Ghost"], 8: ["C3", "C3Ghost"]},
            "kernels": {1: [3, 5], 3: [3, 5], 5: [3, 5], 7: [3, 5]}, "expansions": {"C3": [0.25, 0.5]},
            "imgsz": [256, 320], "widths": [0.5, 0.75, 1.0], "depths": [0.5, 1.0]}


def v5_space(tmp_path: Path) -> Any:
    f = tmp_path / "space.yaml"
    f.write_text(yaml.safe_dump({"search": V5_SPACE}))
    cfg = zoo.load_config("yolov5s")
    return build_space(cfg, load_settings(cfg, space_file=f), prober=CostCache())


def check_rebuilds(space: Any, params: dict[str, int], cache: CostCache, scoring: Any) -> None:
    """The candidate's exported config, planned at its size, has the candidate's rows and its params."""
    plan = plan_candidate(space, params, imgsz=640, prober=cache)
    costs = candidate_costs(plan, cache, scoring)
    values = space.values(params)
    assert plan.imgsz == values["imgsz"]
    explicit = space.resolve(params, prober=cache)
    again = plan_config(explicit, imgsz=plan.imgsz)
    assert [rp.signature for rp in again.rows] == [rp.signature for rp in plan.rows]
    assert param_count(again) == costs.params
    rows = explicit["backbone"] + explicit["head"]
    for r in (2, 4, 6, 8):
        assert rows[r][2] == values[f"b:{r}"]
    for r in (1, 3, 5, 7):
        assert rows[r][3][1] == values[f"k:{r}"]


def _check_space(tmp_path: Path, n: int, seed: int) -> None:
    space = v5_space(tmp_path)
    assert {"imgsz", "b:2", "k:7", "e:2", "w:backbone/8", "d:6"} <= set(space.dimensions())
    cache = CostCache()
    scoring = make_scoring(space, Budget(gflops=3.0), Measure(imgsz=320), cache)
    samples = space.sample(n, seed=seed)
    for p in samples:
        check_rebuilds(space, p, cache, scoring)
    varied = {k for k in space.dimensions() if len({p[k] for p in samples}) > 1}
    assert varied == set(space.dimensions())  # every dimension took more than one value


def test_candidates_of_every_dimension_rebuild(tmp_path: Path) -> None:
    _check_space(tmp_path, 6, seed=3)


@pytest.mark.slow
def test_hundred_candidates_of_every_dimension_rebuild(tmp_path: Path) -> None:
    _check_space(tmp_path, 100, seed=11)


def test_each_candidate_is_priced_at_its_own_size() -> None:
    cfg = zoo.load_config(TINY)
    space = build_space(cfg, SearchSettings(widths=[1.0], dims={"imgsz": [64, 128]}))
    assert space.sizes == (64, 128)
    cache = CostCache()
    scoring = make_scoring(space, Budget(gflops=1.0), Measure(imgsz=64), cache)
    assert set(scoring.contexts) == {64, 128}
    got = {}
    for i, size in enumerate(space.sizes):
        plan = plan_candidate(space, {"imgsz": i}, imgsz=999, prober=cache)  # the study's size is not used
        assert plan.imgsz == size
        got[size] = candidate_costs(plan, cache, scoring).macs
        assert got[size] == candidate_costs(plan_config(cfg, imgsz=size, prober=cache), cache, scoring).macs
    assert got[128] == pytest.approx(4 * got[64], rel=0.05)


def test_sizes_must_be_multiples_of_the_max_stride() -> None:
    cfg = zoo.load_config(TINY)
    with pytest.raises(zoo.ConfigError, match="72: every size must be a multiple of the max stride 16"):
        build_space(cfg, SearchSettings(dims={"imgsz": [64, 72]}))
    assert build_space(cfg, load_settings(cfg, imgsz="64:112")).sizes == (64, 80, 96, 112)  # step: the stride
    assert build_space(cfg, load_settings(cfg, imgsz="64:160:32")).sizes == (64, 96, 128, 160)
    with pytest.raises(zoo.ConfigError, match="imgsz"):
        load_settings(cfg, imgsz=[0, 64])


def test_settings_that_do_not_fit_the_config_are_one_error_naming_the_row() -> None:
    cfg = zoo.load_config(TINY)
    with pytest.raises(zoo.ConfigError, match=r"kernels: row 0: Conv takes kernel 1, 3, 5, 7, not 4"):
        build_space(cfg, SearchSettings(dims={"kernels": {0: [3, 4]}}))
    with pytest.raises(zoo.ConfigError, match=r"row 2: Conv cannot replace C3"):
        build_space(cfg, SearchSettings(dims={"blocks": {2: ["Conv"]}}))
    with pytest.raises(zoo.ConfigError, match=r"no row of the config uses GhostConv"):
        build_space(cfg, SearchSettings(dims={"kernels": {"GhostConv": [3]}}))


def test_settings_round_trip_through_the_one_serialiser() -> None:
    cfg = zoo.load_config(TINY)
    s = load_settings(cfg, imgsz=[64, 128])
    s = SearchSettings(s.stage_weights, s.scope, (1,), [0.5, 1.0], {2: [1, 2]}, "mae",
                       {**s.dims, "kernels": {0: [3, 5]}, "blocks": {"C3": ["C3", "C3Ghost"]},
                        "expansions": {2: [0.25, 0.5]}})
    stored = json.loads(json.dumps(s.as_dict()))  # what a study records
    assert settings_from_record(stored, "study") == s


# -- a dimension registered from a test file only --------------------------------------------------------

class Shortcut(Dimension):
    """A toy dimension: the shortcut flag (YAML position 1) of the rows of one block, from a settings key."""

    name = "toy_shortcut"
    key = "toy_shortcut"
    order = 35

    def parse(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"must be a block name, got {value!r}")
        return value

    def knobs(self, base: SpaceBase) -> tuple[Knob, ...]:
        block = base.setting(self.key)
        if block is None:
            return ()
        rows = tuple(r.index for r in base.config.rows if r.module == block)
        return tuple(Knob(self.name, f"sc:{r}", f"row {r}", (r,), (True, False), True) for r in rows)

    def apply(self, knob: Knob, value: Any, cand: Candidate, config: Config) -> Candidate:
        return cand.with_row(knob.row, args=((1, bool(value)),))


@pytest.fixture
def toy_dimension() -> Any:
    register_dimension(Shortcut)
    yield Shortcut
    unregister_dimension(Shortcut.name)


def test_a_new_dimension_is_one_class(tmp_path: Path, toy_dimension: Any) -> None:
    cfg = zoo.load_config({**TINY, "search": {"widths": [1.0], "toy_shortcut": "C3"}})
    opts = SearchOptions(budget=Budget(params_m=10.0), settings=load_settings(cfg), trials=8,
                         storage=str(tmp_path / "j.log"), study_name="toy", out=str(tmp_path / "o"),
                         measure=Measure(imgsz=64), max_uniform=0)
    assert opts.settings.value("toy_shortcut") == "C3"
    result = run_search(cfg, opts)
    assert result.best is not None
    study = optuna.load_study(study_name="toy", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log"))))
    space = study_space(study)  # the toy key read back from the study's record
    assert space.settings.value("toy_shortcut") == "C3"
    assert {"sc:2", "sc:4"} <= set(space.dimensions())
    for t in study.trials:
        if t.state != optuna.trial.TrialState.COMPLETE:
            continue
        out = tmp_path / f"t{t.number}.yaml"
        export_trial(str(tmp_path / "j.log"), "toy", trial=t.number, out=out)
        rows = yaml.safe_load(out.read_text())["backbone"]
        for r in (2, 4):
            assert rows[r][3][1] is space.values(t.params)[f"sc:{r}"]
            assert t.user_attrs["choices"][f"sc:{r}"] is rows[r][3][1]


# -- the search refuses what `zoo validate` refuses ------------------------------------------------------

class BadArgument(Dimension):
    """A toy dimension that may set an argument to a value no conv takes (row 1's kernel or stride 0)."""

    name = "toy_bad"
    key = None
    order = 36
    position = 1

    def knobs(self, base: SpaceBase) -> tuple[Knob, ...]:
        return (Knob(self.name, "bad:1", "row 1", (1,), (3, 0), 3),)

    def apply(self, knob: Knob, value: Any, cand: Candidate, config: Config) -> Candidate:
        return cand.with_row(1, args=((self.position, value),))


@pytest.mark.parametrize("position", [1, 2])  # the kernel, the stride
def test_the_search_refuses_exactly_what_validate_refuses(position: int) -> None:
    BadArgument.position = position
    register_dimension(BadArgument)
    try:
        cfg = zoo.load_config(TINY)
        space = build_space(cfg, SearchSettings(widths=[1.0]))
        cache = CostCache()
        plan_candidate(space, {"bad:1": 0}, imgsz=64, prober=cache)  # kernel 3: plans
        with pytest.raises(CandidateError) as caught:
            plan_candidate(space, {"bad:1": 1}, imgsz=64, prober=cache)
        bad = json.loads(json.dumps(TINY))
        bad["backbone"][1][3][position] = 0
        with pytest.raises(zoo.ConfigError) as validate:
            build_checked(bad, imgsz=64, device="meta")
        assert str(caught.value) == f"row {validate.value.row}: {validate.value.text}"
        assert "must be positive" in str(caught.value)
    finally:
        unregister_dimension(BadArgument.name)


@pytest.mark.parametrize(("cin", "cout", "k", "s", "p", "d", "g", "hw"), [
    (3, 16, 6, 2, 2, 1, 1, 64), (16, 32, 3, 2, 1, 1, 1, 33), (32, 32, 5, 1, 2, 1, 32, 20), (8, 12, 1, 1, 0, 1, 4, 7),
    (8, 8, 3, 1, 2, 2, 1, 17), (4, 6, (3, 1), (2, 1), (1, 0), 1, 2, 9)])
def test_handler_formulas_are_fvcores_counts(cin: int, cout: int, k: Any, s: Any, p: Any, d: int, g: int,
                                             hw: int) -> None:
    """Row costs count plain convs and eval batch norms by fvcore's handler formulas: the same numbers."""
    import torch
    from torch import nn

    from profiles.flops import count_module_macs
    from profiles.rowcosts import handler_macs

    conv = nn.Conv2d(cin, cout, k, s, p, dilation=d, groups=g, bias=False).eval()
    bn = nn.BatchNorm2d(cin).eval()
    x = torch.zeros(1, cin, hw, hw + 1)
    assert handler_macs(conv, tuple(x.shape)) == count_module_macs(conv, x)
    assert handler_macs(bn, tuple(x.shape)) == count_module_macs(bn, x)
