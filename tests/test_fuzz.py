"""Property: every mutant of a built-in or reference config (tests/mutants.py) builds on the meta device
or is refused with a ConfigError; nothing else. A short, derandomized run; bench/fuzz.py runs 10,000."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="the dev extra (hypothesis) is not installed")

import importlib.util  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402

_spec = importlib.util.spec_from_file_location("zoo_tests_mutants", Path(__file__).parent / "mutants.py")
mutants = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mutants)  # tests/ is not a package: the strategies are imported by path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mutants")


def test_the_bases_are_the_built_ins_and_the_reference_configs() -> None:
    files = mutants.config_files()
    builtins = sorted((mutants.ROOT / "zoo" / "configs").glob("*.yaml"))
    assert files[:len(builtins)] == builtins and len(mutants.BASES) == len(files)
    if mutants.SHARED.is_dir():
        assert len(files) == len(builtins) + len(list(mutants.SHARED.rglob("*.yaml")))


@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(mutant=mutants.mutants())
def test_a_mutant_is_a_model_or_a_config_error(mutant, folder: Path) -> None:
    base, data = mutant
    outcome = mutants.build_outcome(data, folder)
    assert outcome.kind in ("model", "ConfigError"), f"{base}: {outcome.detail}\n{data!r}"[:3000]


@pytest.mark.parametrize("data", [
    [1, 2, 3], "just text", None, 7, {"backbone": 5}, {"backbone": [[-1, 1, "Conv", [16]]], "head": "x"},
    {"nc": 10 ** 5000, "backbone": [], "head": []}, {"backbone": [[-1, 1, "Conv\x1b[2J", [16]]], "head": []},
])
def test_hand_made_mutants(data, folder: Path) -> None:
    assert mutants.build_outcome(data, folder).kind == "ConfigError"


def test_a_huge_int_inside_a_list_is_quoted_not_a_crash() -> None:
    """Found by fuzzing: repr() refuses an int of more than 4300 digits inside a list (scales: {n: [...]})."""
    import zoo
    from zoo.errors import ConfigError, shown

    assert shown([1, 10 ** 5000, {"a": (2 ** 300,)}]) == "[1, 2**16609+, {'a': (2**300+,)}]"
    data = {"nc": 2, "scales": {"n": [10 ** 5000, 0.25]}, "backbone": [[-1, 1, "Conv", [16, 3, 2]]],
            "head": [[[0], 1, "Detect", ["nc", [[10, 13]]]]]}
    with pytest.raises(ConfigError, match=r"scale 'n' must be .*got \[2\*\*16609\+, 0\.25\]"):
        zoo.build_model(data, device="meta")


@settings(max_examples=15, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(mutant=mutants.mutants())
def test_validate_and_profile_agree_on_a_mutant(mutant, folder: Path) -> None:
    """`zoo validate` and `zoo profile --no-latency` both pass it, or refuse it with the same line."""
    base, data = mutant
    a = mutants.cli_agreement(data, folder)
    assert a.kind in ("agree", "no file"), f"{base}: validate {a.validate!r}, profile {a.profile!r}"


V5 = ("nc: 2\nanchors: [[10, 13, 16, 30, 33, 23]]\nbackbone: [[-1, 1, Conv, [16, 3, 2]], [-1, 1, Conv, [{w}, 3, 1]]]\n"
      "head: [[[-1, -2], 1, Concat, [{dim}]], [[-1], 1, Detect, [nc, anchors]]]\n")


@pytest.mark.parametrize("text, words", [
    ("backbone: [[-1, 1, Conv, [16, 0, 2]]]\nhead: [[[0], 1, Detect, [nc, [[10, 13]]]]]\n", "kernel"),
    ("nc: 2\nbackbone: [[-1, 1, Conv, [16, 3, 2]]]\nhead: []\n", "head"),
    (V5.format(w=16, dim="True"), "Concat joins along the channels"),  # found by bench/fuzz.py: profile crashed
    (V5.format(w=16, dim=0), "Concat joins along the channels"),
    (V5.format(w=300000, dim=1), "over the 8.0 GiB limit"),  # found by bench/fuzz.py: validate said ok
])
def test_validate_and_profile_refuse_in_the_same_words(text: str, words: str, folder: Path, monkeypatch) -> None:
    monkeypatch.delenv("ZOO_MAX_BYTES", raising=False)
    a = mutants.cli_agreement(text, folder)
    assert a.kind == "agree" and a.validate.startswith("error: ") and "mutant.yaml" in a.validate, a
    assert words in a.validate, a


def test_validate_and_profile_agree_on_a_model(folder: Path) -> None:
    a = mutants.cli_agreement(V5.format(w=16, dim=1), folder)
    assert a == ("agree", "ok", "ok")
