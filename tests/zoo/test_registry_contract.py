"""Contracts every registered module and every built-in config keeps, parametrised over the registry
(timm's tests/test_models.py, over zoo's registry instead of timm's).

Each registered block is exercised on one case row: its registration's `example` (a head row on a
family-neutral backbone of max-pools, so a plugin family's block needs nothing else), or, without one, the
first row of a built-in config that uses it (the first scale of each built-in file). The contracts:
- deploy keeps the eval outputs (max|d|/max|y| <= 1e-4, random BN statistics);
- a meta build equals a CPU build (per-row params, channels, strides and output shapes, real forward);
- every parameter gets a gradient in training (and so does the input); one that legitimately gets none is
  named, in backticks, in its class's docstring;
- the search round trip: the explicit base of every built-in rebuilds to the built-in, and a candidate
  widened at every row rebuilds to the same rows from its explicit config (so a rule that scales a YAML
  position its registration does not declare in `channels` is caught);
- every declared channel position changes the row's params when that argument is doubled.
The check functions take what they need as arguments, so tests/zoo/test_toy_family.py runs them on a
plugin family too.
"""
from __future__ import annotations

import copy
import functools
import inspect
import re
from dataclasses import replace
from typing import Any

import pytest
import torch
from torch import nn

import zoo
from search.space import PLAN_IMGSZ, build_space
from zoo.builder import build_from_plan
from zoo.config import builtin_names, config_to_mapping, load_config
from zoo.errors import ConfigError
from zoo.plan import ModelPlan, RowSignature, explicit_config, instantiate_row, plan_config
from zoo.plugins import ensure_loaded
from zoo.registry import REGISTRY, SHARED, ModuleSpec, Registry
from zoo.rules import RULES, Resolved, RowContext

ensure_loaded()
IMGSZ = 64
TOL = 1e-4
NAMES = sorted(builtin_names())
_first: dict = {}
for _name, (_path, _) in builtin_names().items():  # file order: a scales file lists its first scale first
    _first.setdefault(_path, _name)
FIRST_OF_EACH_FILE = sorted(_first.values())
ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
POOLS = 5  # the example backbone: rows 0..4 at strides 2..32 (rows 2, 3, 4 are P3, P4, P5)
EXAMPLE_CHANNELS = 64
# Deploy equivalence in float64 for these: the decoder's top-k query selection must rank the same
# tokens in both forms, which float32 rounding of folded convs can reorder (as test_rtdetr.py does).
FLOAT64 = frozenset({("RTDETRDecoder", "ultralytics")})
# Rows a widened candidate leaves at the base width, and why: rtdetr-l-ghostv3's row 5 chains two
# GhostModuleV3 copies whose width is never scaled, so the second copy needs row 4's width as written.
KEEP_WIDTH = {"rtdetr-l-ghostv3": (4,)}
# Rules that tie a declared channel position to the input width (zoo.rules.same_width_rule): scaling
# the position alone must be refused with the rule's reason.
TIED = {("C2PSA", "ultralytics"): "keeps its width", ("SqueezeExcite", "yolov5"): "keeps its width",
        ("PSA", "ultralytics"): "keeps its width"}


def key(spec: ModuleSpec) -> tuple[str, str]:
    return spec.name, spec.family


def spec_id(spec: ModuleSpec) -> str:
    return f"{spec.family}:{spec.name}"


def example_config(spec: ModuleSpec, registry: Registry = REGISTRY) -> dict[str, Any]:
    """The spec's example row as the head of a backbone of max-pools (shared blocks, so any family names
    them) over a 64-channel input; a shared block is planned in the fallback family."""
    family = spec.family if spec.family != SHARED else registry.recognise({})
    from_, args = spec.example
    return {"nc": 8, "family": family, "ch": EXAMPLE_CHANNELS, "anchors": ANCHORS,
            "backbone": [[-1, 1, "nn.MaxPool2d", [2, 2, 0]] for _ in range(POOLS)],
            "head": [[from_, 1, spec.name, list(args)]]}


@functools.lru_cache(maxsize=None)
def builtin_plan(name: str) -> ModelPlan:
    return plan_config(name, imgsz=IMGSZ)


@functools.lru_cache(maxsize=1)
def builtin_rows() -> dict[tuple[str, str], tuple[str, int]]:
    """(module, family) -> (built-in name, row) of the first row using it (first scale of each file)."""
    rows: dict[tuple[str, str], tuple[str, int]] = {}
    for name in FIRST_OF_EACH_FILE:
        for rp in builtin_plan(name).rows:
            rows.setdefault(key(rp.spec), (name, rp.index))
    return rows


def case(spec: ModuleSpec) -> tuple[Any, int]:
    """(config source, row) the contracts exercise the spec on."""
    if spec.example is not None:
        return example_config(spec), POOLS
    return builtin_rows()[key(spec)]


def case_plan(spec: ModuleSpec) -> tuple[ModelPlan, int]:
    source, row = case(spec)
    plan = builtin_plan(source) if isinstance(source, str) else plan_config(source, imgsz=IMGSZ)
    assert plan.rows[row].spec.cls is spec.cls, f"row {row} of the case is not {spec_id(spec)}"
    return plan, row


def case_mapping(spec: ModuleSpec) -> tuple[dict[str, Any], int, str | None]:
    """The case config as plain data, cut after the case row (later rows may depend on its width)."""
    source, row = case(spec)
    if not isinstance(source, str):
        return copy.deepcopy(source), row, None
    cfg = load_config(source)
    data = config_to_mapping(cfg)
    nb = len(cfg.backbone)
    if row < nb:
        data["backbone"] = data["backbone"][:row + 1]
        data.pop("head", None)
    else:
        data["head"] = data["head"][:row + 1 - nb]
    return data, row, cfg.scale.name


@functools.lru_cache(maxsize=None)
def signature_params(sig: RowSignature) -> int:
    """Params of a row's module, built alone on the meta device (once per signature)."""
    module, _ = instantiate_row(sig, device="meta")
    return sum(p.numel() for p in module.parameters())


def row_params(plan: ModelPlan, row: int) -> int:
    return signature_params(plan.rows[row].signature)


def docstring_names(cls: type) -> set[str]:
    """The `names` a class's docstring quotes in backticks."""
    return set(re.findall(r"`([A-Za-z_][\w.]*)`", inspect.getdoc(cls) or ""))


# -- the checks ---------------------------------------------------------------------------------------

def check_deploy(spec: ModuleSpec, helpers) -> float:
    """Deploy the case row's module alone (random BN statistics); the eval outputs' largest gap."""
    plan, row = case_plan(spec)
    sig = plan.rows[row].signature
    dtype = torch.float64 if key(spec) in FLOAT64 else torch.float32
    return helpers.deploy_gap(instantiate_row(sig, dtype=dtype)[0], helpers.random_inputs(sig, dtype=dtype))


def check_gradients(spec: ModuleSpec, helpers) -> None:
    """Train mode, batch 2: a backward pass of the sum of every output reaches every parameter (but the
    ones the class's docstring names) and the input."""
    plan, row = case_plan(spec)
    sig = plan.rows[row].signature
    module = instantiate_row(sig)[0].train()
    x = helpers.random_inputs(sig, batch=2, requires_grad=True)
    outs = [t for t in helpers.tensors(module(x)) if t.requires_grad]
    assert outs, f"{spec_id(spec)}: no output depends on the input in training"
    torch.stack([t.sum() for t in outs]).sum().backward()
    named = docstring_names(spec.cls)
    undeclared = [n for n, p in module.named_parameters() if p.grad is None
                  and not any(".".join(n.split(".")[:i]) in named for i in range(1, n.count(".") + 2))]
    assert not undeclared, f"{spec_id(spec)}: no gradient reaches {undeclared} (name them in the docstring " \
                           f"if that is intended)"
    assert all(t.grad is not None for t in helpers.tensors(x)), f"{spec_id(spec)}: no gradient reaches the input"


def row_outputs(model: nn.Module, x: torch.Tensor, helpers) -> list[list[torch.Tensor]]:
    """Each row's output tensors from one eval forward of the whole model."""
    outs: list[list[torch.Tensor]] = [[] for _ in model.model]

    def hook(i: int):
        return lambda _m, _inp, out: outs[i].extend(helpers.tensors(out))

    hooks = [m.register_forward_hook(hook(i)) for i, m in enumerate(model.model)]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return outs


def check_meta_equals_cpu(source: Any, helpers) -> None:
    """One plan at IMGSZ built on the meta device and on the CPU: equal per-row params; a real CPU
    forward gives every row the shape and channels the meta build states, a meta forward the same
    shapes as the CPU forward, and finite values."""
    plan = plan_config(source, imgsz=IMGSZ)
    meta = build_from_plan(plan, device="meta")
    cpu = build_from_plan(plan, device="cpu")
    assert [sum(p.numel() for p in m.parameters()) for m in meta.model] == \
           [sum(p.numel() for p in m.parameters()) for m in cpu.model]
    x = torch.rand(1, cpu.config.ch, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(0))
    cpu_outs = row_outputs(cpu, x, helpers)
    for info, outs in zip(meta.layers, cpu_outs):
        if info.out_shape is not None:
            assert [tuple(t.shape) for t in outs] == [info.out_shape], f"row {info.index} ({info.module})"
            if len(info.out_shape) == 4:  # a map has channels; YOLO-World's refined text (B, nc, e) has none
                assert outs[0].shape[1] == info.out_channels
        assert all(torch.isfinite(t).all() for t in outs if t.is_floating_point()), f"row {info.index}"
    meta_shapes = [[tuple(t.shape) for t in outs] for outs in row_outputs(meta, x.to("meta"), helpers)]
    assert meta_shapes == [[tuple(t.shape) for t in outs] for outs in cpu_outs]


def same_rows(a: ModelPlan, b: ModelPlan) -> None:
    """Equal row signatures (module, constructor call, inputs, activation), channels and params."""
    assert [rp.out_channels for rp in a.rows] == [rp.out_channels for rp in b.rows]
    for ra, rb in zip(a.rows, b.rows):
        assert ra.signature == rb.signature, f"row {ra.index} ({ra.row.module})"
    assert len(a.rows) == len(b.rows)
    assert [row_params(a, i) for i in range(len(a.rows))] == [row_params(b, i) for i in range(len(b.rows))]


def check_widened_round_trip(source: Any, width: float = 2.0, keep: tuple[int, ...] = ()) -> None:
    """Every row (but `keep`) planned at `width` x its channels, written as an explicit config (the
    channels its registration declares) and planned again: the same rows. A rule scaling an undeclared
    position scales it in the first plan but reads it as written in the second."""
    widths = {r.index: width for r in load_config(source).rows if r.index not in keep}
    wide = plan_config(source, imgsz=IMGSZ, widths=widths)
    same_rows(wide, plan_config(explicit_config(wide), imgsz=IMGSZ))


def plan_at_width_one(data: dict[str, Any], scale: str | None) -> ModelPlan:
    """The config at width 1.0 without a channel cap, so that a doubled channel count shows."""
    cfg = load_config(data, scale=scale)
    return plan_config(replace(cfg, scale=replace(cfg.scale, width=1.0, max_channels=None)), imgsz=IMGSZ)


def check_position_scales(spec: ModuleSpec, pos: int) -> None:
    """Doubling the case row's YAML argument at a declared channel position changes the row's params."""
    data, row, scale = case_mapping(spec)
    section = "backbone" if row < len(data["backbone"]) else "head"
    j = row if section == "backbone" else row - len(data["backbone"])
    args = data[section][j][3]
    assert pos < len(args) and isinstance(args[pos], int) and not isinstance(args[pos], bool), (
        f"{spec_id(spec)}: its case row {args} has no channel count at declared position {pos}")
    base = plan_at_width_one(data, scale)
    args[pos] *= 2
    if key(spec) in TIED:
        with pytest.raises(ConfigError, match=TIED[key(spec)]):
            plan_at_width_one(data, scale)
        return
    doubled = plan_at_width_one(data, scale)
    assert row_params(doubled, row) != row_params(base, row), (
        f"{spec_id(spec)}: doubling YAML argument {pos} leaves the params unchanged: not a channel count")


# -- the tests ----------------------------------------------------------------------------------------

SPECS = sorted(REGISTRY.specs(), key=lambda s: (s.family, s.name))
IDS = [spec_id(s) for s in SPECS]
EXAMPLES = [s for s in SPECS if s.example is not None]
POSITIONS = [(s, p) for s in SPECS for p in s.channels]
# Built on the CPU: the first scale of each file (every block's code at its smallest width), and the
# first scale at which a rule reads the scale's name (C3k2 builds C3k blocks at m/l/x). Other scales
# differ in numbers only; the meta-only contracts run over all of them.
CPU_BUILT = sorted({*FIRST_OF_EACH_FILE, "yolo11m"})


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_module_is_covered(spec) -> None:
    assert spec.example is not None or key(spec) in builtin_rows(), (
        f"{spec_id(spec)} is used by no built-in config and its registration gives no example=")


@pytest.mark.parametrize("spec", EXAMPLES, ids=[spec_id(s) for s in EXAMPLES])
def test_example_row_builds_and_runs(spec) -> None:
    model = zoo.build_model(example_config(spec), imgsz=IMGSZ).eval()
    info = model.layers[-1]
    assert info.module == spec.name and info.family == spec.family
    with torch.no_grad():
        out = model(torch.rand(1, EXAMPLE_CHANNELS, IMGSZ, IMGSZ))
    if info.out_channels is not None:
        assert isinstance(out, torch.Tensor) and out.shape[1] == info.out_channels


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_deploy_keeps_outputs(spec, helpers) -> None:
    assert check_deploy(spec, helpers) <= TOL


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_every_parameter_gets_a_gradient(spec, helpers) -> None:
    check_gradients(spec, helpers)


@pytest.mark.parametrize("source", CPU_BUILT + [example_config(s) for s in EXAMPLES],
                         ids=CPU_BUILT + [f"example-{spec_id(s)}" for s in EXAMPLES])
def test_meta_build_equals_cpu_build(source, helpers) -> None:
    check_meta_equals_cpu(source, helpers)


@pytest.mark.parametrize("name", NAMES)
def test_search_base_rebuilds_the_builtin(name: str) -> None:
    """build_space(cfg).resolve({}) is the explicit base: the built-in's exact rows, channels, params."""
    space = build_space(name)
    explicit = space.resolve({})
    scale = load_config(explicit).scale
    assert (scale.depth, scale.width) == (1.0, 1.0)  # channels and repeats written out
    same_rows(plan_config(name, imgsz=PLAN_IMGSZ), plan_config(explicit, imgsz=PLAN_IMGSZ))


WIDENED = [(name, KEEP_WIDTH.get(name, ()), None) for name in FIRST_OF_EACH_FILE] + \
          [(example_config(s), (), TIED.get(key(s))) for s in EXAMPLES]


@pytest.mark.parametrize("source,keep,refused", WIDENED,
                         ids=FIRST_OF_EACH_FILE + [f"example-{spec_id(s)}" for s in EXAMPLES])
def test_widened_candidate_round_trip(source, keep: tuple[int, ...], refused: str | None) -> None:
    """A tied block's example reads a pooled 64-channel input that cannot widen with it: refused."""
    if refused is None:
        check_widened_round_trip(source, keep=keep)
    else:
        with pytest.raises(ConfigError, match=refused):
            check_widened_round_trip(source, keep=keep)


@pytest.mark.parametrize("spec,pos", POSITIONS, ids=[f"{spec_id(s)}@{p}" for s, p in POSITIONS])
def test_declared_channel_position_scales_params(spec, pos: int) -> None:
    check_position_scales(spec, pos)


# -- the checks catch what they are for ---------------------------------------------------------------

class Sneaky(nn.Module):
    """YAML [c2, cm]: a 1x1 conv to cm, a 3x3 conv to c2."""

    def __init__(self, c1: int, c2: int, cm: int) -> None:
        super().__init__()
        self.cv1 = nn.Conv2d(c1, cm, 1)
        self.cv2 = nn.Conv2d(cm, c2, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv2(self.cv1(x))


def sneaky_rule(ctx: RowContext) -> Resolved:
    """Scales both YAML positions, while its registration declares only position 0."""
    c2, cm = ctx.channels(ctx.args[0]), ctx.channels(ctx.args[1])
    return Resolved((ctx.c1, c2, cm), c2)


@pytest.fixture
def registered():
    """Register throw-away modules for one test; the global registry is restored after it."""
    added: list[tuple[str, str]] = []

    def add(name: str, **kw) -> ModuleSpec:
        zoo.register_module(name, family="yolov5", **kw)(Sneaky)
        added.append((name, "yolov5"))
        return REGISTRY.lookup(name, "yolov5")

    yield add
    for name, family in added:
        REGISTRY.remove(name, family)


def test_an_undeclared_scaled_position_is_caught(registered) -> None:
    spec = registered("ZooContractSneaky", io=sneaky_rule, channels=(0,), example=(-1, [64, 32]))
    with pytest.raises(AssertionError, match="row 5"):
        check_widened_round_trip(example_config(spec))
    honest = registered("ZooContractHonest", io=sneaky_rule, channels=(0, 1), example=(-1, [64, 32]))
    check_widened_round_trip(example_config(honest))


def test_a_declared_position_that_is_no_channel_is_caught(registered) -> None:
    """A rule that declares position 1 but never reads it: doubling it leaves the params as they were."""
    def ignores_cm(ctx: RowContext) -> Resolved:
        c2 = ctx.channels(ctx.args[0])
        return Resolved((ctx.c1, c2, 16), c2)

    spec = registered("ZooContractIgnores", io=ignores_cm, channels=(0, 1), example=(-1, [64, 32]))
    check_position_scales(spec, 0)
    with pytest.raises(AssertionError, match="not a channel count"):
        check_position_scales(spec, 1)


def test_a_parameter_without_gradient_is_caught(registered, helpers) -> None:
    class Unused(Sneaky):
        """A block whose third conv is never called."""

        def __init__(self, c1: int, c2: int, cm: int) -> None:
            super().__init__(c1, c2, cm)
            self.spare = nn.Conv2d(c2, c2, 1)

    zoo.register_module("ZooContractUnused", family="yolov5", io=sneaky_rule, channels=(0, 1),
                        example=(-1, [64, 32]))(Unused)
    try:
        spec = REGISTRY.lookup("ZooContractUnused", "yolov5")
        with pytest.raises(AssertionError, match=r"spare\.weight"):
            check_gradients(spec, helpers)
        Unused.__doc__ = "A block whose `spare` conv is never called (kept for checkpoints)."
        check_gradients(spec, helpers)
    finally:
        REGISTRY.remove("ZooContractUnused", "yolov5")


def test_duplicate_registration_is_an_error() -> None:
    with pytest.raises(ValueError, match="already registered"):
        zoo.register_module("Conv", family="yolov5")(torch.nn.Identity)


def test_unknown_rule_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown io rule"):
        zoo.register_module("Whatever", family="yolov5", io="sideways")


def test_family_resolution_rules() -> None:
    """Own family first; else the only other family; else shared; several others: ask for `family:`."""
    class A(torch.nn.Module):
        pass

    reg = Registry()  # a private registry: the global one stays as the built-ins made it
    spec = lambda name, fam: ModuleSpec(name, fam, A, RULES["same"], "same", "chain")  # noqa: E731
    reg.add(spec("Both", "ultralytics"))
    reg.add(spec("Both", "damo"))
    reg.add(spec("Only", "damo"))
    reg.add(spec("Shared", "shared"))
    with pytest.raises(KeyError, match="family:"):
        reg.lookup("Both", "yolov5")
    assert reg.lookup("Both", "damo").family == "damo"
    assert reg.lookup("Only", "yolov5").family == "damo"
    assert reg.lookup("Shared", "ultralytics").family == "shared"
    with pytest.raises(KeyError, match="did you mean Both"):
        reg.lookup("Bth", "yolov5")
