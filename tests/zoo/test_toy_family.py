"""A family added by one plugin file (tests/zoo/toy_family.py) builds, profiles and searches, and its block
keeps the registry's contracts. Nothing else in the tree knows the toy family."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

import cli
import zoo
from profiles import profile_model
from zoo.registry import REGISTRY

PLUGIN = Path(__file__).with_name("toy_family.py")
# nc 12: the head's nc + 4 = 16 outputs stay as written; width 0.5 with channels in multiples of 4
# (24 -> 12 and 40 -> 20, where YOLO's rule of 8 would give 16 and 24).
CONFIG = textwrap.dedent("""\
    toy: true
    nc: 12
    width_multiple: 0.5
    backbone:
      - [-1, 1, ToyBlock, [24, 2]]
      - [-1, 2, ToyBlock, [40, 2]]
      - [-1, 1, ToyBlock, [64, 2]]
    head:
      - [-1, 1, ToyBlock, [16, 1]]
""")
CHANNELS = [12, 20, 32, 16]
ROWS = [(3, 12, 1, 2), (12, 20, 2, 2), (20, 32, 1, 2), (32, 16, 1, 1)]  # (c1, c2, n, stride) as built
IMGSZ = 64
CLI_FAST = ["--imgsz", str(IMGSZ), "--runs", "2", "--warmup-s", "0", "--top-k", "1", "--no-progress"]


def toy_params(c1: int, c2: int, n: int) -> int:
    """A 3x3 conv (no bias) + BN to c2, then n residual 3x3 conv + BN at c2."""
    return 9 * c1 * c2 + 2 * c2 + n * (9 * c2 * c2 + 2 * c2)


def toy_macs(c1: int, c2: int, n: int, side: int) -> int:
    """fvcore's count: k*k*c1*c2 per output pixel for a conv, 2 per element for an affine BatchNorm."""
    hw = side * side
    return (9 * c1 * c2 + 2 * c2) * hw + n * (9 * c2 * c2 + 2 * c2) * hw


@pytest.fixture
def toy(tmp_path: Path):
    """The toy config file; the toy family and block are unregistered again after the test."""
    cfg = tmp_path / "toy.yaml"
    cfg.write_text(CONFIG)
    yield cfg
    REGISTRY.remove("ToyBlock", "toy")
    REGISTRY.remove_family("toy")
    REGISTRY.loaded.discard(str(PLUGIN.resolve()))


def test_unknown_without_the_plugin(toy: Path, capsys) -> None:
    assert cli.main(["validate", str(toy)]) == 1
    assert "ToyBlock" in capsys.readouterr().err


def test_builds_with_its_own_rules(toy: Path) -> None:
    zoo.load_plugin(PLUGIN)
    model = zoo.build_model(toy, imgsz=IMGSZ)
    assert model.config.family == "toy"  # recognised by `toy: true`, no `family:` key
    assert [i.out_channels for i in model.layers] == CHANNELS
    assert [sum(p.numel() for p in m.parameters()) for m in model.model] == [toy_params(*r[:3]) for r in ROWS]
    assert model(torch.rand(1, 3, IMGSZ, IMGSZ)).shape == (1, 16, 8, 8)


def test_profiles(toy: Path, tmp_path: Path) -> None:
    zoo.load_plugin(PLUGIN)
    prof = profile_model(toy, imgsz=IMGSZ, latency=False)
    sides, side = [], IMGSZ
    for *_, s in ROWS:
        side //= s
        sides.append(side)
    assert [lay.params for lay in prof.layers] == [toy_params(*r[:3]) for r in ROWS]
    assert [lay.macs for lay in prof.layers] == [toy_macs(*r[:3], s) for r, s in zip(ROWS, sides)]
    assert [lay.out_shape for lay in prof.layers] == [(1, c, s, s) for c, s in zip(CHANNELS, sides)]
    out = tmp_path / "toy.json"
    assert cli.main(["profile", str(toy), "--plugin", str(PLUGIN), "--no-latency", "--imgsz", str(IMGSZ),
                     "--format", "json", "-o", str(out)]) == 0
    (data,) = json.loads(out.read_text())  # one config: a list of one
    assert data["params"] == prof.params and data["macs"] == prof.macs
    assert [row["params"] for row in data["layers"]] == [lay.params for lay in prof.layers]


def test_searches_and_exports_a_rebuildable_best(toy: Path, tmp_path: Path) -> None:
    budget_m = 0.03  # below the base's 33,228 params: the base is infeasible
    assert sum(toy_params(*r[:3]) for r in ROWS) > budget_m * 1e6
    out = tmp_path / "out"
    assert cli.main(["search", str(toy), "--plugin", str(PLUGIN), "--budget-params", str(budget_m),
                     "--trials", "5", "--storage", str(tmp_path / "journal.log"), "--study-name", "toy",
                     "-o", str(out), *CLI_FAST]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["n_trials"] == 5 and report["best"]["params"] <= budget_m * 1e6
    best = zoo.build_model(out / "best.yaml", imgsz=IMGSZ)
    assert best.config.family == "toy"
    assert sum(p.numel() for p in best.parameters()) == report["best"]["params"]
    assert best.layers[-1].out_channels == 16  # the head size is never width-scaled
    assert all(c % 4 == 0 for c in (i.out_channels for i in best.layers))


def test_its_block_keeps_the_registry_contracts(toy: Path, helpers, test_module) -> None:
    contract = test_module("zoo/test_registry_contract.py")
    zoo.load_plugin(PLUGIN)
    spec = REGISTRY.lookup("ToyBlock", "toy")
    assert contract.check_deploy(spec, helpers) <= contract.TOL
    contract.check_gradients(spec, helpers)
    contract.check_meta_equals_cpu(contract.example_config(spec), helpers)
    contract.check_widened_round_trip(contract.example_config(spec))
    contract.check_widened_round_trip(toy)
    for pos in spec.channels:
        contract.check_position_scales(spec, pos)


def test_edit_pins_a_scale_by_the_family_of_the_config(toy: Path) -> None:
    """A toy file with `scales` and no anchors is a toy config (not Ultralytics'): its blocks do not
    read the scale's name, so the pinned scale is written as multiples and rebuilds the same."""
    from zoo import surgery

    zoo.load_plugin(PLUGIN)
    data = surgery.load(toy)
    del data["width_multiple"]
    data["scales"] = {"a": [1.0, 0.5], "b": [1.0, 1.0]}
    pinned = surgery.pin_scale(data, "a")
    assert "scales" not in pinned and (pinned["depth_multiple"], pinned["width_multiple"]) == (1.0, 0.5)
    assert [i.out_channels for i in zoo.build_model(pinned, device="meta").layers] == CHANNELS
