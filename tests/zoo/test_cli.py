"""The command line as a user meets it: the shared option checks, --help, --version, and the small commands
(configs, modules, validate) with their errors."""
from __future__ import annotations

import argparse
import json
import warnings
from importlib import metadata

import pytest
import torch

import cli
from profiles import profile_model
from zoo import ConfigError


def one_error_line(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 1, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# -- the same flag is checked the same way in every command -------------------------------------------------

IMGSZ_CASES = [("0", "--imgsz 0 must be an integer from 1 to 8,192"),
               ("16384", "--imgsz 16384 must be an integer from 1 to 8,192"),
               ("abc", "--imgsz abc is not an integer")]
COMMANDS_WITH_IMGSZ = [["profile", "yolov5n", "--no-latency"], ["score", "yolov5n"], ["validate", "yolov5n"]]


@pytest.mark.parametrize("command", COMMANDS_WITH_IMGSZ, ids=lambda c: c[0])
@pytest.mark.parametrize("value,expected", IMGSZ_CASES, ids=[c[0] for c in IMGSZ_CASES])
def test_imgsz_is_checked_alike_in_every_command(capsys, command: list[str], value: str, expected: str) -> None:
    assert one_error_line(capsys, cli.main([*command, "--imgsz", value])) == f"error: {expected}"


@pytest.mark.parametrize("argv,expected", [
    (["--batch", "0"], "error: --batch 0 must be an integer from 1 to 1,024"),
    (["--threads", "x"], "error: --threads x is not an integer"),
    (["--runs", "0"], "error: --runs 0 must be an integer from 1 to 100,000"),
    (["--device", "tpu"], "error: --device tpu is not a device (Expected one of"),
    (["--device", "cuda:x"], "error: --device cuda:x is not a device (Invalid device string"),
    (["--device", "xla"], "error: --device xla is not supported: use cpu, cuda, cuda:N or mps"),
])
def test_profile_run_options_one_line(capsys, argv: list[str], expected: str) -> None:
    line = one_error_line(capsys, cli.main(["profile", "yolov5n", "--no-latency", *argv]))
    assert line.startswith(expected), line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_missing_is_one_clean_line(capsys) -> None:
    line = one_error_line(capsys, cli.main(["profile", "yolov5n", "--device", "cuda", "--no-latency"]))
    assert line == "error: --device cuda needs CUDA, which is not available on this machine (use cpu)"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_index_beyond_the_machine(capsys) -> None:
    n = torch.cuda.device_count()
    line = one_error_line(capsys, cli.main(["profile", "yolov5n", "--device", f"cuda:{n}", "--no-latency"]))
    assert f"--device cuda:{n} does not exist: this machine has {n} CUDA device" in line


def test_api_names_the_parameter_not_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"^yolov5n: device='tpu' is not a device") as e:
        profile_model("yolov5n", device="tpu", latency=False)
    assert "--" not in str(e.value)
    with pytest.raises(ConfigError, match=r"^yolov5n: dtype='float64' is not one of float32, float16, bfloat16$"):
        profile_model("yolov5n", dtype="float64", latency=False)
    with pytest.raises(ConfigError, match=r"^yolov5n: runs=0 must be an integer from 1 to 100,000$"):
        profile_model("yolov5n", runs=0)


# -- --help and --version ----------------------------------------------------------------------------------

def subparsers(parser: argparse.ArgumentParser | None = None, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by its full name (`profile`, `lut build`): groups are descended into."""
    parser = parser or cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = {}
    for name, p in sub.choices.items():
        found[prefix + name] = p
        if any(isinstance(a, argparse._SubParsersAction) for a in p._actions):
            found.update(subparsers(p, f"{prefix}{name} "))
    return found


@pytest.mark.parametrize("name", [c.name for c in cli.COMMANDS])
def test_every_option_has_help_and_its_default(name: str) -> None:
    parser = subparsers()[name]
    formatter = cli.HelpFormatter(prog=f"zoo {name}")
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        flag = action.option_strings[-1] if action.option_strings else action.dest
        assert action.help, f"zoo {name} {flag} has no help text"
        default = action.default
        shown = action.nargs != 0 and default not in (None, argparse.SUPPRESS) and default != []
        if shown:
            text = formatter._get_help_string(action) % {**vars(action), "default": default}
            assert "default" in text.lower(), f"zoo {name} {flag}: default {default!r} not shown"
    assert "examples:" in parser.epilog


def test_help_shows_defaults_and_readable_choices(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["profile", "--help"])
    text = capsys.readouterr().out
    assert "(default: 640)" in text and "(default: cpu)" in text and "(default: 30)" in text
    assert "--no-latency" in text and "(default: True)" not in text  # flags show no default
    with pytest.raises(SystemExit):
        cli.main(["search", "--help"])
    text = capsys.readouterr().out
    assert "{score,score,latency}" not in text and "`score,latency`" in text


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"zoo {metadata.version(cli.DISTRIBUTION)}"


# -- one JSON shape -------------------------------------------------------------------------------------------

def test_profile_json_is_a_list_for_one_config_and_for_two(capsys) -> None:
    base = ["profile", "--no-latency", "--imgsz", "64", "--format", "json"]
    assert cli.main([*base, "yolov5n"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert cli.main([*base, "yolov5n", "yolov5s"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in one] == ["yolov5n"] and [d["name"] for d in two] == ["yolov5n", "yolov5s"]
    assert one[0]["params"] == two[0]["params"] == 1_872_157 and two[1]["params"] == 7_235_389


# -- zoo validate: every file, at the size given, whatever profile would refuse ---------------------------------

HEADER = """\
nc: 80
depth_multiple: 0.33
width_multiple: 0.25
anchors:
  - [10, 13, 16, 30, 33, 23]
  - [30, 61, 62, 45, 59, 119]
  - [116, 90, 156, 198, 373, 326]
backbone:
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
head:
"""
# Rows that torch's meta kernels accept and its CPU kernels refuse, and head arguments that do not fit.
REFUSED = [
    ("kernel-0", "[-1, 1, Conv, [64, 0, 1]]", "row 5 (Conv) [line 15]: Conv2d conv: kernel_size 0 must be positive"),
    ("dilation-0", "[-1, 1, Conv, [64, 3, 1, 1, 1, 0]]", "row 5 (Conv) [line 15]: Conv2d conv: dilation 0 must be "
                                                         "positive"),
    ("stride-0", "[-1, 1, Conv, [64, 3, 0]]", "row 5 (Conv) [line 15]: Conv2d conv: stride 0 must be positive"),
    ("ragged-anchors", "[[2, 3, 4], 1, Detect, [nc, [[10, 13, 16, 30], [30, 61, 62, 45], [116, 90]]]]",
     "row 5 (Detect) [line 15]: anchors: every level must have the same number of anchors"),
]
# Works at 640 only: the upsample to a fixed 40x40 meets the stride-16 row only when that row is 40x40.
FIXED_SIZE = """\
nc: 80
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
  - [2, 1, nn.Upsample, [[40, 40], None, 'nearest']]
  - [[-1, 3], 1, Concat, [1]]
"""


@pytest.mark.parametrize("case,row,expected", REFUSED, ids=[c[0] for c in REFUSED])
def test_validate_refuses_what_profile_refuses(tmp_path, capsys, case: str, row: str, expected: str) -> None:
    path = tmp_path / f"{case}.yaml"
    path.write_text(HEADER + f"  - {row}\n")
    validated = one_error_line(capsys, cli.main(["validate", str(path)]))
    profiled = one_error_line(capsys, cli.main(["profile", str(path), "--no-latency", "--imgsz", "64"]))
    assert validated == profiled and validated.startswith(f"error: {path}: {expected}"), validated


def test_validate_checks_at_the_size_given(tmp_path, capsys) -> None:
    path = tmp_path / "fixed.yaml"
    path.write_text(FIXED_SIZE)
    assert cli.main(["validate", str(path)]) == 0
    params = sum(c1 * c2 * 9 + 2 * c2 for c1, c2 in ((3, 16), (16, 32), (32, 64), (64, 64)))  # 3x3 Conv + BN
    assert capsys.readouterr().out == f"{path}: ok at 640 px: 6 rows, {params:,} params, strides 16\n"
    at_320 = one_error_line(capsys, cli.main(["validate", str(path), "--imgsz", "320"]))
    assert at_320 == (f"error: {path}: row 5 (Concat) [line 8]: Concat inputs differ in spatial size "
                      f"(row 4: 40x40, row 3: 20x20)")
    assert one_error_line(capsys, cli.main(["profile", str(path), "--imgsz", "320", "--no-latency"])) == at_320
    assert one_error_line(capsys, cli.main(["validate", "yolov5n", "--imgsz", "100"])) == (
        "error: yolov5n: --imgsz 100 is not a positive multiple of the model's max stride 32 (try 128)")


def test_validate_checks_every_file(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEADER + "  - [-1, 1, Cnov, [64]]\n")
    code = cli.main(["validate", "yolov5n", str(bad), "yolov5s", str(tmp_path / "missing.yaml")])
    cap = capsys.readouterr()
    assert code == 1
    assert cap.out.splitlines() == ["yolov5n: ok at 640 px: 25 rows, 1,872,157 params, strides 8/16/32",
                                    "yolov5s: ok at 640 px: 25 rows, 7,235,389 params, strides 8/16/32"]
    err = cap.err.splitlines()
    assert len(err) == 2 and err[0].startswith(f"error: {bad}: row 5 (Cnov)") and "did you mean Conv" in err[0]
    assert err[1].startswith(f"error: {tmp_path / 'missing.yaml'}: no such config file")
    assert cli.main(["validate", "yolov5n", "yolov5s"]) == 0


def test_validate_lines_are_escaped(tmp_path, capsys) -> None:
    """A file name reaches the terminal with its control characters written as escapes, ok and warning lines
    alike (the EfficientNetV2 config draws an anchor-stride lint warning)."""
    from zoo.config import builtin_names

    path = tmp_path / "evil\x1b[2J\u202e.yaml"
    path.write_text(builtin_names()["yolov5s-effnetv2"][0].read_text())
    assert cli.main(["validate", str(path)]) == 0
    cap = capsys.readouterr()
    assert "\x1b" not in cap.out + cap.err and "\u202e" not in cap.out + cap.err
    assert cap.out.startswith(str(tmp_path / "evil\\x1b[2J\\u202e.yaml") + ": ok at 640 px: 28 rows")
    assert cap.err.startswith("warning: " + str(tmp_path / "evil\\x1b[2J\\u202e.yaml") + ": row 27: Detect reads")


def test_conv_argument_checks_meta_skips() -> None:
    from torch import nn

    from zoo.plan import RowProbeError, check_conv_arguments

    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that a 0-sized kernel's weight has no elements
        fine = [nn.Conv2d(4, 4, 3, padding="same"), nn.ConvTranspose2d(4, 4, 2, stride=2, output_padding=1)]
        bad = [(nn.Conv2d(4, 4, (3, 0)), "kernel_size 3x0 must be positive"),
               (nn.Conv2d(4, 4, 3, None), "stride None must be an integer"),  # a YAML null the fuzzer found
               (nn.Conv2d(4, 4, 3, ([10, 13], 5)), r"stride \[10, 13\]x5 must be an integer"),  # and a nested list
               (nn.Conv2d(4, 4, 3, padding=(1, -1)), "padding 1x-1 must not be negative"),
               (nn.Sequential(nn.Conv2d(4, 4, 1), nn.ConvTranspose2d(4, 4, 3, stride=2, output_padding=2)),
                "ConvTranspose2d 1: output_padding 2 must be smaller than the stride or the dilation")]
    for m in fine:
        check_conv_arguments(m)
    for m, text in bad:
        with pytest.raises(RowProbeError, match=text):
            check_conv_arguments(m)


# -- the small listings and the names a user types -------------------------------------------------------------

def test_modules_unknown_family_is_an_error(capsys) -> None:
    line = one_error_line(capsys, cli.main(["modules", "--family", "nonsense"]))
    assert line == "error: --family nonsense is not a family: damo, ultralytics, yolov5, shared"
    assert capsys.readouterr().out == ""


def test_modules_say_what_each_rule_does(capsys) -> None:
    from zoo.registry import REGISTRY

    assert cli.main(["modules", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [s.as_dict() for s in sorted(REGISTRY.specs(), key=lambda s: (s.family, s.name))]
    by = {(r["family"], r["name"]): r for r in rows}
    assert by[("yolov5", "C3")]["io"] == "output width = arg 0, width-scaled; input width inserted first"
    assert by[("yolov5", "Concat")]["io"] == "output width = sum of the input widths"
    assert by[("damo", "ResK1KX")]["rule"] == "custom" and by[("damo", "ResK1KX")]["channels"] == [0, 1]
    assert by[("damo", "ResK1KX")]["io"].startswith("own rule: args [out, btn, k, stride(, act)]")
    for r in rows:  # no function name of the code base reaches the user
        assert "_rule" not in r["io"] and "<function" not in r["io"] and not r["io"].startswith("_"), r
    assert cli.main(["modules", "--family", "damo"]) == 0
    table = capsys.readouterr().out
    assert "_stage_rule" not in table and "own rule: args [out, btn" in table


@pytest.mark.parametrize("typed,suggested", [("YOLOv5s", "yolov5s"), ("Yolov8N", "yolov8n"), ("yolov5S-seg", "yolov5s-seg")])
def test_config_did_you_mean_ignores_case(capsys, typed: str, suggested: str) -> None:
    line = one_error_line(capsys, cli.main(["validate", typed]))
    assert line.startswith(f"error: {typed}: no such config file or built-in config; did you mean {suggested},")


def test_module_did_you_mean_ignores_case(tmp_path, capsys) -> None:
    path = tmp_path / "c3.yaml"
    path.write_text(HEADER + "  - [-1, 1, c3, [64]]\n")
    assert "unknown module 'c3'; did you mean C3," in one_error_line(capsys, cli.main(["validate", str(path)]))


@pytest.mark.parametrize("name", ["yolov5s.pt", "weights/best.pth", "last.ckpt", "yolov5s.ONNX"])
def test_checkpoints_are_not_configs(capsys, name: str) -> None:
    line = one_error_line(capsys, cli.main(["profile", name, "--no-latency"]))
    assert line.startswith(f"error: {name}: this is a weights file; zoo reads YAML model configs, not checkpoints")
    assert ("give the built-in yolov5s or" in line) == name.lower().startswith("yolov5s.")
