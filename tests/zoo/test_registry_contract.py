"""Every registered module is built automatically: by a built-in config that uses it or by the example
row of its registration. The builder checks declared output channels against the real output."""
from __future__ import annotations

import functools

import pytest
import torch

import zoo
from zoo.config import builtin_names
from zoo.plugins import ensure_loaded as ensure_builtin_modules
from zoo.registry import REGISTRY, ModuleSpec, Registry
from zoo.rules import RULES

ensure_builtin_modules()
STEM = {"damo": "ConvBNAct"}  # a plain conv row each family can name


def test_backbone(family: str) -> list:
    conv = STEM.get(family, "Conv")
    return [[-1, 1, conv, [16, 3, 2]], [-1, 1, conv, [32, 3, 2]], [-1, 1, conv, [32, 3, 2]],
            [-1, 1, conv, [64, 3, 2]], [-1, 1, conv, [64, 3, 2]]]


test_backbone.__test__ = False  # a helper, not a test


@functools.lru_cache(maxsize=1)
def used_by_builtins() -> frozenset[tuple[str, str]]:
    """(module, family) of every row of every built-in config file (first scale of each file)."""
    used = set()
    seen_files = set()
    for name, (path, _) in sorted(builtin_names().items()):
        if path in seen_files:
            continue
        seen_files.add(path)
        model = zoo.build_model(name, device="meta")
        used.update((info.module, info.family) for info in model.layers)
    return frozenset(used)


SPECS = sorted(REGISTRY.specs(), key=lambda s: (s.family, s.name))


@pytest.mark.parametrize("spec", SPECS, ids=[f"{s.family}:{s.name}" for s in SPECS])
def test_every_module_is_covered(spec) -> None:
    assert spec.example is not None or (spec.name, spec.family) in used_by_builtins(), (
        f"{spec.name} ({spec.family}) is used by no built-in config and its registration gives no example=")


EXAMPLES = [s for s in SPECS if s.example is not None]


@pytest.mark.parametrize("spec", EXAMPLES, ids=[f"{s.family}:{s.name}" for s in EXAMPLES])
def test_example_row_builds_and_runs(spec) -> None:
    family = spec.family if spec.family != "shared" else "yolov5"
    from_, args = spec.example
    cfg = {"nc": 80, "family": family, "anchors": [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119],
                                                    [116, 90, 156, 198, 373, 326]],
           "backbone": test_backbone(family), "head": [[from_, 1, spec.name, list(args)]]}
    model = zoo.build_model(cfg).eval()
    info = model.layers[-1]
    assert info.module == spec.name and info.family == spec.family
    with torch.no_grad():
        out = model(torch.rand(1, 3, 128, 128))
    if info.out_channels is not None:
        assert isinstance(out, torch.Tensor) and out.shape[1] == info.out_channels


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
