"""zoo.limits (bounds, the allocation check and its environment override), escaped errors, captured
warnings, and surgery checking rows with the loader's own validator."""
from __future__ import annotations

import math
import warnings

import pytest

from zoo import limits, surgery
from zoo.errors import ConfigError, OptionError, printable, shown
from zoo.warning_capture import capture_warnings

GIB = 1 << 30


@pytest.mark.parametrize(("value", "problem"), [
    (3, None), (-2.5, None), (limits.MAX_ARG, None), (True, None), ("x", None),
    (limits.MAX_ARG + 1, "out of range"), (2 ** 1024, "2**1024+ is out of range"), (-(2 ** 4000), "-2**4000+"),
    (math.inf, "not a finite number"), (math.nan, "not a finite number"), (1e300, "out of range"),
])
def test_number_problem_answers_without_overflowing(value, problem) -> None:
    got = limits.number_problem(value)
    assert got is None if problem is None else problem in got


def test_check_count() -> None:
    assert limits.check_count("n", 4, 8) == 4
    for bad in (0, 9, 2 ** 1024, True, 2.0, None):
        with pytest.raises(ValueError, match=r"^n must be an integer from 1 to 8, got "):
            limits.check_count("n", bad, 8)


def test_check_option_names_the_parameter_or_the_flag() -> None:
    with pytest.raises(OptionError) as info:
        limits.check_option("imgsz", 16384, 1, limits.MAX_IMGSZ, source="yolov5n")
    assert info.value.message == "yolov5n: imgsz=16384 must be an integer from 1 to 8,192"
    assert info.value.cli_message == "yolov5n: --imgsz 16384 must be an integer from 1 to 8,192"
    with pytest.raises(OptionError) as info:
        limits.check_option("warmup_runs", -1, 0, 10)
    assert info.value.message == "warmup_runs=-1 must be an integer from 0 to 10"  # no file: no location
    assert info.value.cli_message.startswith("--warmup-runs -1 ")


def test_check_allocation_uses_the_default_or_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(limits.MAX_BYTES_ENV, raising=False)
    assert limits.max_bytes() == limits.DEFAULT_MAX_BYTES == 8 * GIB
    limits.check_allocation(GIB // 4, 7 * GIB, source="m.yaml")  # 1 GiB of weights + 7 GiB: at the limit
    with pytest.raises(ConfigError, match=r"^m\.yaml: needs about 8\.0 GiB \(268,435,457 parameters = 1\.0 GiB, "
                                          r"activations 7\.0 GiB\), over the 8\.0 GiB limit \(set ZOO_MAX_BYTES"):
        limits.check_allocation(GIB // 4 + 1, 7 * GIB, source="m.yaml")
    for text, expected in (("16G", 16 * GIB), ("512MiB", 512 << 20), ("1000", 1000), ("1.5k", 1536)):
        monkeypatch.setenv(limits.MAX_BYTES_ENV, text)
        assert limits.max_bytes() == expected, text
    monkeypatch.setenv(limits.MAX_BYTES_ENV, "1000")
    with pytest.raises(ConfigError, match="over the 1000 B limit"):
        limits.check_allocation(200, 201, source=None)
    monkeypatch.setenv(limits.MAX_BYTES_ENV, "lots")
    with pytest.raises(ConfigError, match=r"^ZOO_MAX_BYTES: must be a byte count"):
        limits.max_bytes()


def test_errors_escape_control_characters_everywhere() -> None:
    e = ConfigError("a\x1b[2Jb.yaml", "bad \x1b]0;title\x07 text\n", row=3, module="C\u202e3", line=4)
    assert e.message == "a\\x1b[2Jb.yaml: row 3 (C\\u202e3) [line 4]: bad \\x1b]0;title\\x07 text\\n"
    assert printable("plain ünïcode — ok") == "plain ünïcode — ok"
    assert shown(2 ** 5000) == "2**5000+" and shown("x" * 100).endswith("...") and len(shown("x" * 100)) == 60


def test_capture_warnings_records_each_distinct_warning_once() -> None:
    with capture_warnings() as caught:
        for _ in range(3):
            warnings.warn("first line\nsecond line", UserWarning)
        warnings.warn("\x1b[31mred", DeprecationWarning)
    assert caught.lines == ("UserWarning: first line", "DeprecationWarning: \\x1b[31mred")
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        with capture_warnings():
            warnings.warn("inside")
    assert outside == []  # nothing escapes the block


SMALL = {"nc": 3, "backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [32, 3, 2]]]}


@pytest.mark.parametrize(("row", "message"), [
    ([-1, 1001, "C3", [32]], "repeats must be an integer from 1 to 1000"),
    ([-1, 1, "Conv", [2 ** 1024]], "argument 2**1024+ is out of range"),
    ([-1, 1, "Conv", ["__import__('os')"]], "is not a literal"),
    ([-1, 1, "Conv", [float("inf")]], "not a finite number"),
    ([5, 1, "Conv", [8]], "points forward"),
    ([-1, 1, "", [8]], "module must be a name"),
])
def test_surgery_checks_rows_with_the_loaders_validator(row, message) -> None:
    for edit in (lambda: surgery.insert_after(SMALL, 1, row), lambda: surgery.replace(SMALL, 1, row)):
        with pytest.raises(ConfigError, match=r"row 2|row 1") as info:
            edit()
        assert message in info.value.text
    with pytest.raises(ConfigError, match="repeats must be an integer from 1 to 1000"):
        surgery.delete({"backbone": [*SMALL["backbone"], [-1, 5000, "C3", [8]]]}, 0)  # existing rows too
