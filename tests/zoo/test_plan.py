"""The row plan is the one source of channels, shapes and costs: it must equal what a built model does.

- the search space's explicit base rebuilds to the config as written (params and per-row channels),
  for every built-in and for YOLOv5 configs whose nc equals a channel count;
- a plan's summed params, MACs (fvcore) and MAE equal the built model's, exactly, for every built-in and
  for random candidates of four spaces (4 each by default, 100 each in the slow run);
- the plan's output shapes equal a forward pass at 320 px (640 and 1280 px in the slow run).

The slow run is `pytest -m slow` (README); the default run skips it to stay within CI's time.
"""
from __future__ import annotations

import random

import pytest
import torch

import zoo
from profiles.flops import count_flops
from profiles.rowcosts import CostCache
from search.objectives import rows_from_plan
from search.score import analytic_row_terms, mae_of_rows, trace_convs
from search.space import build_space
from zoo.config import builtin_names
from zoo.plan import plan_config

BUILTINS = sorted(builtin_names())
# One config per built-in file (the smallest scale): scales share a graph, so spatial behaviour is the same.
ONE_PER_FILE = sorted({path: name for name, (path, _) in sorted(builtin_names().items(), reverse=True)}.values())

V5 = {"family": "yolov5", "depth_multiple": 0.33, "width_multiple": 0.5,
      "anchors": [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]],
      "backbone": [[-1, 1, "Conv", [64, 6, 2, 2]], [-1, 1, "Conv", [128, 3, 2]], [-1, 3, "C3", [128]],
                   [-1, 1, "Conv", [64, 3, 2]], [-1, 1, "Conv", [256, 3, 2]], [-1, 1, "SPPF", [256, 5]]],
      "head": [[[2, 3, 5], 1, "Detect", ["nc", "anchors"]]]}


def params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def channels(m: zoo.ZooModel) -> list[int | None]:
    return [info.out_channels for info in m.layers]


@pytest.mark.parametrize("name", BUILTINS)
def test_explicit_base_rebuilds_to_the_builtin(name: str) -> None:
    base = zoo.build_model(name, device="meta")
    explicit = zoo.build_model(build_space(name).resolve({}), device="meta")
    assert params(explicit) == params(base)
    assert channels(explicit) == channels(base)


@pytest.mark.parametrize("nc", [1, 64, 80, 256])
def test_explicit_base_of_yolov5_configs_whose_nc_is_a_width(nc: int) -> None:
    cfg = {**V5, "nc": nc}
    base = zoo.build_model(cfg, device="meta")
    explicit = zoo.build_model(build_space(cfg).resolve({}), device="meta")
    assert channels(explicit) == channels(base)
    assert params(explicit) == params(base)
    # YOLOv5 width-scales a channel count equal to nc (only na*(nc+5), its head's output, stays)
    assert channels(base)[:5] == [32, 64, 64, 32, 128]


def _plan_totals(source, imgsz: int):
    cache = CostCache()
    plan = plan_config(source, imgsz=imgsz, prober=cache)
    return rows_from_plan(plan, [cache.get(rp.signature) for rp in plan.rows])


def _check_sums(source, imgsz: int) -> None:
    rows = _plan_totals(source, imgsz)
    model = zoo.build_model(source, imgsz=imgsz)
    assert sum(r.cost.params for r in rows) == params(model)
    fc = count_flops(model, imgsz=imgsz)
    assert sum(r.cost.macs for r in rows) == fc.macs
    assert [r.cost.macs for r in rows] == [fc.by_row.get(i, 0) for i in range(len(rows))]
    traced = analytic_row_terms(trace_convs(model, imgsz=imgsz), len(model.layers))
    planned = mae_of_rows(rows)
    built = mae_of_rows(rows, terms=traced)
    assert planned.score == pytest.approx(built.score, rel=1e-9, abs=1e-9)
    assert [s.score for s in planned.stages] == pytest.approx([s.score for s in built.stages], rel=1e-9)


@pytest.mark.parametrize("name", BUILTINS)
def test_plan_sums_equal_the_built_model(name: str) -> None:
    _check_sums(name, 64)


@pytest.mark.parametrize("candidates", [4, pytest.param(100, marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", ["yolov5s", "yolov8s", "yolo11n", "damo-yolo-t"])
def test_plan_sums_equal_random_candidates(name: str, candidates: int) -> None:
    space = build_space(name)
    dims = space.dimensions()
    rng = random.Random(f"{name}-{candidates}")
    for _ in range(candidates):
        params_ = {k: rng.randrange(n) for k, n in dims.items()}
        _check_sums(space.resolve(params_), 64)


@pytest.mark.parametrize("name", ONE_PER_FILE)
@pytest.mark.parametrize("imgsz", [320, pytest.param(640, marks=pytest.mark.slow),
                                   pytest.param(1280, marks=pytest.mark.slow)])
def test_plan_shapes_equal_a_forward_pass(name: str, imgsz: int) -> None:
    plan = plan_config(name, imgsz=imgsz)
    model = zoo.build_model(name, imgsz=imgsz).eval()
    seen: dict[int, tuple[int, ...] | None] = {}

    def hook(index, module, inp):
        out = module(inp)
        seen[index] = tuple(out.shape) if isinstance(out, torch.Tensor) else None
        return out

    with torch.no_grad():
        model.run(torch.zeros(1, model.config.ch, imgsz, imgsz), hook)
    assert {rp.index: rp.out_shape for rp in plan.rows} == seen
