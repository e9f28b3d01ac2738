"""Malformed and hostile configs: exit code 1, one stderr line naming the file and the row (or the YAML
line), no traceback, nothing executed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import cli
from zoo import limits

HEADER = """\
nc: 80
depth_multiple: 0.33
width_multiple: 0.25
anchors:
  - [10, 13, 16, 30, 33, 23]
  - [30, 61, 62, 45, 59, 119]
  - [116, 90, 156, 198, 373, 326]
"""
GOOD_BACKBONE = """\
backbone:
  - [-1, 1, Conv, [32, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
"""


def body(*rows: str, header: str = HEADER) -> str:
    return header + GOOD_BACKBONE + "head:\n" + "".join(f"  - {r}\n" for r in rows)


BIG = str(2 ** 1024)  # float() of it overflows
RTDETR = """\
nc: 80
scales:
  l: [1.00, 1.00, 1024]
backbone:
  - [-1, 1, HGStem, [32, 48]]
  - [-1, 6, HGBlock, [48, 128, 3]]
  - [-1, 1, DWConv, [128, 3, 2, 1, False]]
  - [-1, 6, HGBlock, [96, 512, 3]]
  - [-1, 1, DWConv, [512, 3, 2, 1, False]]
  - [-1, 6, HGBlock, [192, 1024, 5, True, False]]
head:
"""


def alias_bomb(levels: int = 9) -> str:
    """"Billion laughs": 9**levels strings once expanded, from under 500 bytes."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# Texts every YAML-reading command refuses at the reader (yamlio), with what the error must say.
READER_CASES: list[tuple[str, bytes, str]] = [
    ("date-impossible", (HEADER + "made: 2023-02-30\n" + GOOD_BACKBONE).encode(), ":8: YAML value '2023-02-30'"),
    ("int-tag-garbage", (HEADER + "x: !!int garbage\n" + GOOD_BACKBONE).encode(), ":8: YAML value 'garbage' is not a valid !!int"),
    ("float-tag-garbage", (HEADER + "x: !!float garbage\n" + GOOD_BACKBONE).encode(), "is not a valid !!float"),
    ("timestamp-tag-garbage", (HEADER + "x: !!timestamp garbage\n" + GOOD_BACKBONE).encode(),
     "is not a valid !!timestamp"),
    ("int-over-4300-digits", (HEADER.replace("nc: 80", "nc: " + "7" * 5000) + GOOD_BACKBONE).encode(),
     ":1: YAML value '777"),
    ("non-utf8", HEADER.encode() + b"name: \xff\xfe\n" + GOOD_BACKBONE.encode(), ":8: not UTF-8 text: byte 0xff"),
    ("control-character", (HEADER + "name: a\x1bb\n" + GOOD_BACKBONE).encode(), ":8: YAML syntax error"),
    ("duplicate-key", (HEADER + "nc: 3\n" + GOOD_BACKBONE).encode(), ":8: duplicate key 'nc' (first given at line 1)"),
    ("duplicate-key-nested", ("nc: 80\nscales:\n  n: [0.33, 0.25]\n  n: [1, 1]\n" + GOOD_BACKBONE).encode(),
     ":4: duplicate key 'n'"),
    ("alias-bomb", (alias_bomb() + GOOD_BACKBONE).encode(), f"more than {limits.MAX_YAML_NODES:,} nodes"),
    ("alias-recursive", ("nc: &a [1, *a]\n" + GOOD_BACKBONE).encode(), "inside its own anchor"),
]


MARKER = "/tmp/zoo_hostile_marker"
CASES: list[tuple[str, str, str]] = [
    # (id, yaml text, text the error must contain besides the file name)
    ("yaml-unclosed", HEADER + "backbone: [[-1, 1, Conv, [16, 3, 2]]\n", ".yaml:9: YAML syntax error"),
    ("yaml-bad-indent", HEADER + "backbone:\n  - [-1, 1, Conv, [16]]\n   - [-1, 1, Conv, [16]]\n",
     ".yaml:10: YAML syntax error"),
    ("yaml-python-tag", HEADER + f"backbone: !!python/object/apply:os.system ['touch {MARKER}']\n",
     ".yaml:8: YAML syntax error"),
    ("not-a-mapping", "- [-1, 1, Conv, [16]]\n", ":1"),
    ("no-backbone", HEADER + "head:\n  - [-1, 1, Conv, [16]]\n", "backbone"),
    ("empty-backbone", HEADER + "backbone: []\n", "empty"),
    ("empty-head", HEADER + GOOD_BACKBONE + "head:\n", "empty"),
    ("unknown-module", body("[-1, 1, Cnov, [64, 1, 1]]"), "row 5 (Cnov)"),
    ("from-out-of-range", body("[-9, 1, Conv, [64, 1, 1]]"), "row 5"),
    ("from-forward", body("[7, 1, Conv, [64, 1, 1]]", "[-1, 1, Conv, [64, 1, 1]]"), "row 5"),
    ("from-self", body("[5, 1, Conv, [64, 1, 1]]"), "this row"),
    ("from-string", body("[a, 1, Conv, [64, 1, 1]]"), "row 5"),
    ("from-empty-list", body("[[], 1, Concat, [1]]"), "row 5"),
    ("from-bool", body("[true, 1, Conv, [64, 1, 1]]"), "row 5"),
    ("repeats-zero", body("[-1, 0, C3, [64]]"), "row 5"),
    ("repeats-negative", body("[-1, -3, C3, [64]]"), "row 5"),
    ("repeats-string", body("[-1, '3', C3, [64]]"), "row 5"),
    ("repeats-float", body("[-1, 1.5, C3, [64]]"), "row 5"),
    ("too-many-args", body("[-1, 1, Conv, [64, 1, 1, 0, 1, 1, true, 9, 9]]"), "row 5 (Conv)"),
    ("no-args", body("[-1, 1, Conv, []]"), "row 5 (Conv)"),
    ("channels-word", body("[-1, 1, C3, [wide]]"), "row 5 (C3)"),
    ("channels-negative", body("[-1, 1, Conv, [-64, 3, 2]]"), "row 5 (Conv)"),
    ("concat-spatial-mismatch", body("[[-1, 2], 1, Concat, [1]]"), "row 5 (Concat)"),
    ("import-in-args", body(f"[-1, 1, Conv, [\"__import__('os').system('touch {MARKER}')\"]]"), "row 5"),
    ("eval-in-args", body("[-1, 1, Conv, [\"eval('64')\"]]"), "row 5"),
    ("lambda-in-args", body("[-1, 1, Conv, [64, 'lambda: 3']]"), "row 5"),
    ("nested-injection", body(f"[-1, 1, SPP, [64, [\"__import__('os').system('touch {MARKER}')\"]]]"),
     "row 5"),
    ("nn-attribute-in-args", body("[-1, 1, Conv, [64, 1, 1, None, 1, 1, 'nn.Module()']]"), "row 5"),
    ("activation-injection",
     HEADER + f"activation: __import__('os').system('touch {MARKER}')\n" + GOOD_BACKBONE, "activation"),
    ("activation-kwargs", HEADER + "activation: nn.ReLU(inplace=True)\n" + GOOD_BACKBONE, "activation"),
    ("activation-not-allowed", HEADER + "activation: nn.Softmax(1)\n" + GOOD_BACKBONE, "activation"),
    ("activation-subclass-walk",
     HEADER + "activation: nn.SiLU().__class__.__bases__[0].__subclasses__()\n" + GOOD_BACKBONE, "activation"),
    ("nc-negative", HEADER.replace("nc: 80", "nc: -1") + GOOD_BACKBONE, "nc"),
    ("nc-word", HEADER.replace("nc: 80", "nc: eighty") + GOOD_BACKBONE, "nc"),
    ("depth-zero", HEADER.replace("depth_multiple: 0.33", "depth_multiple: 0") + GOOD_BACKBONE, "depth_multiple"),
    ("width-word", HEADER.replace("width_multiple: 0.25", "width_multiple: big") + GOOD_BACKBONE,
     "width_multiple"),
    ("anchors-word", "nc: 80\nanchors: many\n" + GOOD_BACKBONE, "anchors"),
    ("anchors-odd", "nc: 80\nanchors: [[10, 13, 16]]\n" + GOOD_BACKBONE, "anchors"),
    ("anchor-levels-mismatch", body("[[3, 4], 1, Detect, [nc, anchors]]"), "row 5 (Detect)"),
    ("row-not-a-list", body("Conv"), "row 5"),
    ("row-three-items", body("[-1, 1, Conv]"), "row 5"),
    ("module-number", body("[-1, 1, 5, [64]]"), "row 5"),
    ("args-mapping", body("[-1, 1, Conv, {c2: 64}]"), "row 5"),
    ("family-unknown", "family: mmdet\n" + HEADER + GOOD_BACKBONE, "family"),
    ("scales-bad", "nc: 80\nscales:\n  n: [0.33, big]\n" + GOOD_BACKBONE, "scales"),
    ("scales-and-multiples", HEADER + "scales:\n  n: [0.33, 0.25]\n" + GOOD_BACKBONE, "scales"),
    ("stride-zero", body("[-1, 1, Conv, [64, 3, 0]]"), "row 5 (Conv)"),
    ("downsampled-to-nothing", body(*["[-1, 1, nn.MaxPool2d, [2, 2, 0]]"] * 9), "row"),
    ("detect-single-input", body("[-1, 1, Detect, [nc, anchors]]"), "row 5 (Detect)"),
    ("segment-bad-nm", body("[[2, 3, 4], 1, Segment, [nc, anchors, -32, 256]]"), "row 5 (Segment)"),
    ("bad-gain", body("[-1, 1, Contract, [0]]"), "row 5 (Contract)"),
    ("depth-inf", HEADER.replace("depth_multiple: 0.33", "depth_multiple: .inf") + GOOD_BACKBONE,
     "depth_multiple"),
    ("width-inf", HEADER.replace("width_multiple: 0.25", "width_multiple: .inf") + GOOD_BACKBONE,
     "width_multiple"),
    ("width-huge", HEADER.replace("width_multiple: 0.25", "width_multiple: 1e9") + GOOD_BACKBONE,
     "width_multiple"),
    ("deep-nesting", body("[-1, 1, Conv, " + "[" * 3000 + "]" * 3000 + "]"), "nest"),
    ("repeats-huge", body("[-1, 100000000, C3, [64]]"), "row 5 (C3)"),
    ("repeats-times-depth", HEADER.replace("depth_multiple: 0.33", "depth_multiple: 16") + GOOD_BACKBONE
     + "head:\n  - [-1, 900, Bottleneck, [128]]\n", "row 5 (Bottleneck)"),
    # integers of 2**1024 and more, wherever a number enters
    ("nc-2**1024", HEADER.replace("nc: 80", f"nc: {BIG}") + GOOD_BACKBONE, "nc: must be an integer from 1 to"),
    ("ch-2**1024", HEADER + f"ch: {BIG}\n" + GOOD_BACKBONE, "ch: must be an integer from 1 to"),
    ("depth-2**1024", HEADER.replace("depth_multiple: 0.33", f"depth_multiple: {BIG}") + GOOD_BACKBONE,
     "depth_multiple: must be a number in (0, 16.0], got 2**1024+"),
    ("width-2**1024", HEADER.replace("width_multiple: 0.25", f"width_multiple: {BIG}") + GOOD_BACKBONE,
     "width_multiple"),
    ("max-channels-2**1024", f"nc: 80\nscales:\n  n: [0.33, 0.25, {BIG}]\n" + GOOD_BACKBONE, "scales"),
    ("scale-depth-2**1024", f"nc: 80\nscales:\n  n: [{BIG}, 0.25]\n" + GOOD_BACKBONE, "scales"),
    ("anchors-count-2**1024", f"nc: 80\nanchors: {BIG}\n" + GOOD_BACKBONE, "anchors: an anchor count"),
    ("anchor-size-2**1024", f"nc: 80\nanchors: [[10, {BIG}]]\n" + GOOD_BACKBONE, "anchors: each level"),
    ("channels-2**1024", body(f"[-1, 1, Conv, [{BIG}, 3, 2]]"), "row 5 (Conv) [line 15]: argument 2**1024+ is out"),
    ("nested-arg-2**1024", body(f"[-1, 1, nn.ZeroPad2d, [[0, {BIG}, 0, 1]]]"), "row 5 (nn.ZeroPad2d)"),
    ("string-arg-2**1024", body(f"[-1, 1, Conv, ['{BIG}', 3, 2]]"), "row 5 (Conv)"),
    ("from-2**1024", body(f"[{BIG}, 1, Conv, [64, 3, 2]]"), "row 5 (Conv)"),
    ("from-minus-2**1024", body(f"[-{BIG}, 1, Conv, [64, 3, 2]]"), "row 5 (Conv)"),
    ("repeats-2**1024", body(f"[-1, {BIG}, C3, [64]]"), "row 5 (C3)"),
    ("arg-infinite", body("[-1, 1, nn.Upsample, [None, .inf, nearest]]"), "argument inf is not a finite number"),
    ("arg-nan", body("[-1, 1, nn.Upsample, [None, .nan, nearest]]"), "is not a finite number"),
    ("arg-float-overflow", body("[-1, 1, nn.Upsample, [None, '1e999', nearest]]"), "is not a finite number"),
    # counts that drive unbounded loops or allocations
    ("anchors-1e9", "nc: 80\nanchors: 1000000000\n" + GOOD_BACKBONE
     + "head:\n  - [[2, 3, 4], 1, Detect, [nc, anchors]]\n", "anchors: an anchor count must be from 1 to 64"),
    ("detect-anchors-count-huge", body("[[2, 3, 4], 1, Detect, [nc, 100000]]"), "row 5 (Detect)"),
    ("detect-anchors-float", body("[[2, 3, 4], 1, Detect, [nc, 3.5]]"), "row 5 (Detect) [line 15]: anchors:"),
    ("detect-anchors-none", body("[[2, 3, 4], 1, Detect, [nc, None]]"), "row 5 (Detect) [line 15]: anchors:"),
    ("detect-anchors-ragged", body("[[2, 3, 4], 1, Detect, [nc, [[1, 2], [1, 2, 3, 4], [5, 6]]]]"),
     "same number of anchors"),
    ("segment-anchors-float", body("[[2, 3, 4], 1, Segment, [nc, 2.5, 32, 256]]"), "row 5 (Segment) [line 15]: anchors:"),
    ("dynamicconv-experts-huge", body("[-1, 1, DynamicConv, [64, 3, 1, None, 1, 1, True, 1000000]]"),
     "num_experts must be an integer from 1 to 64"),
    ("dynamicconv-experts-zero", body("[-1, 1, DynamicConv, [64, 3, 1, None, 1, 1, True, 0]]"), "num_experts"),
    ("rtdetr-decoder-layers-huge", RTDETR + "  - [[1, 3, 5], 1, RTDETRDecoder, [nc, 256, 300, 4, 8, 1000000]]\n",
     "row 6 (RTDETRDecoder) [line 12]: cannot build"),
    ("rtdetr-queries-huge", RTDETR + "  - [[1, 3, 5], 1, RTDETRDecoder, [nc, 256, 1000000]]\n", "nq (queries)"),
    ("rtdetr-heads-huge", RTDETR + "  - [[1, 3, 5], 1, RTDETRDecoder, [nc, 256, 300, 4, 1000000]]\n", "nh (heads)"),
    ("aifi-heads-huge", RTDETR.replace("head:\n", "") + "  - [-1, 1, AIFI, [1024, 1000000]]\n", "num_heads"),
    ("sppf-pools-huge", "nc: 80\nscales:\n  n: [0.33, 0.25, 1024]\n" + GOOD_BACKBONE
     + "  - [-1, 1, SPPF, [128, 5, 1000000]]\n", "n (pools)"),
    ("ch-50000", HEADER + "ch: 50000\n" + GOOD_BACKBONE, ":8: ch: must be an integer from 1 to 1,024"),
    # names quoted in errors never reach the terminal raw
    ("module-escape-sequence", body('[-1, 1, "Cnov\\e[31mRED\\e[2J", [64]]'), "row 5 (Cnov\\x1b[31mRED\\x1b[2J)"),
    ("module-newline", body('[-1, 1, "Cnov\\nerror: forged", [64]]'), "Cnov\\nerror: forged"),
    ("module-bidi-override", body('[-1, 1, "Conv\\u202e", [64]]'), "Conv\\u202e"),
]


@pytest.fixture(autouse=True)
def _no_marker():
    Path(MARKER).unlink(missing_ok=True)
    yield
    assert not Path(MARKER).exists(), "a config executed code"


def test_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case,text,expected", CASES, ids=[c[0] for c in CASES])
def test_hostile_config_gives_one_line_error(tmp_path, capsys, case: str, text: str, expected: str) -> None:
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    code = cli.main(["validate", str(path)])
    err = capsys.readouterr().err
    assert code == 1
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert "\x1b" not in err and "\u202e" not in err
    assert str(path) in lines[0]
    assert expected in lines[0], lines[0]


def one_error_line(capsys, code: int) -> str:
    """The command's single stderr line, after checking exit 1 and that nothing else was printed there."""
    err = capsys.readouterr().err
    assert code == 1, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _command(name: str, path: Path, tmp: Path) -> list[str]:
    return {"validate": ["validate", str(path)],
            "profile": ["profile", str(path), "--no-latency", "--no-cross-check"],
            "edit": ["edit", str(path), "--delete", "1", "-o", str(tmp / "out.yaml")],
            "search-space": ["search", "yolov5n", "--budget-ms", "10", "--space", str(path), "--no-progress",
                             "--storage", f"sqlite:///{tmp / 's.db'}", "-o", str(tmp / "o")]}[name]


@pytest.mark.parametrize("command", ["validate", "profile", "edit", "search-space"])
@pytest.mark.parametrize("case,raw,expected", READER_CASES, ids=[c[0] for c in READER_CASES])
def test_every_yaml_reading_command_gives_one_line(tmp_path, capsys, command: str, case: str, raw: bytes,
                                                     expected: str) -> None:
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(raw)
    line = one_error_line(capsys, cli.main(_command(command, path, tmp_path)))
    assert f"{path}{expected}" in line or (str(path) in line and expected in line), line
    assert not (tmp_path / "out.yaml").exists() and not (tmp_path / "o").exists()


def test_an_alias_bomb_is_small_and_stopped_by_the_node_limit(tmp_path, capsys) -> None:
    text = alias_bomb()
    assert len(text.encode()) < 500
    path = tmp_path / "bomb.yaml"
    path.write_text(text + GOOD_BACKBONE)
    line = one_error_line(capsys, cli.main(["validate", str(path)]))
    assert f"more than {limits.MAX_YAML_NODES:,} nodes once its aliases are expanded" in line


BAD_ROWS = [
    ("--row", "[-1, 1, Conv, [!!int x]]", "--row:1: YAML value 'x' is not a valid !!int"),
    ("--row", alias_bomb().replace("\n", ", ").join("{}"), "--row:1: YAML document has more than"),
    ("--row", "[-1, 5000, C3, [64]]", "row 2 (C3): repeats must be an integer from 1 to 1000"),
    ("--row", f"[-1, 1, Conv, [{BIG}]]", "row 2 (Conv): argument 2**1024+ is out of range"),
    ("--row", "[-1, 1, Conv, [\"__import__('os').system('true')\"]]", "row 2 (Conv): argument"),
]


@pytest.mark.parametrize("flag,text,expected", BAD_ROWS, ids=["value-error", "alias-bomb", "repeats", "huge-int",
                                                              "injection"])
def test_edit_checks_the_new_row_like_the_loader(tmp_path, capsys, flag: str, text: str, expected: str) -> None:
    code = cli.main(["edit", "yolov5n", "--insert-after", "1", flag, text, "-o", str(tmp_path / "out.yaml")])
    assert expected in one_error_line(capsys, code)
    assert not (tmp_path / "out.yaml").exists()


OPTION_CASES = [
    (["profile", "yolov5n", "--imgsz", "16384", "--no-latency"], "error: --imgsz 16384 must be an integer from 1 to 8,192"),
    (["profile", "yolov5n", "--batch", "100000", "--no-latency"], "error: --batch 100000 must be an integer"),
    (["profile", "yolov5n", "--threads", "100000", "--no-latency"], "--threads 100000"),
    (["profile", "yolov5n", "--nc", BIG, "--no-latency"], "yolov5n: --nc 2**1024+ must be an integer from 1 to"),
    (["validate", "yolov5n", "--nc", BIG], "--nc 2**1024+"),
    (["validate", "yolov5n", "--nc", "0"], "--nc 0"),
    (["profile", "yolov5n", "--device", "cuda:x", "--no-latency"], "--device cuda:x is not a device"),
    (["score", "yolov5n", "--method", "forward", "--imgsz", "16384"], "--imgsz 16384 must be an integer"),
    (["score", "yolov5n", "--nc", BIG], "--nc 2**1024+"),
    (["search", "yolov5n", "--budget-ms", "10", "--imgsz", "16384", "--no-progress"], "--imgsz 16384"),
    (["validate", "yolov5s-effnetv2", "--scale", "s"], "--scale s is given but the config has no 'scales'"),
]


@pytest.mark.parametrize("argv,expected", OPTION_CASES, ids=[" ".join(a[:1] + a[2:4]) for a, _ in OPTION_CASES])
def test_bad_options_give_one_line_naming_the_flag(tmp_path, monkeypatch, capsys, argv: list[str],
                                                    expected: str) -> None:
    monkeypatch.chdir(tmp_path)  # `zoo search` would otherwise leave a study behind
    assert expected in one_error_line(capsys, cli.main(argv))
    assert not list(tmp_path.iterdir())


def test_api_errors_name_the_parameter() -> None:
    from profiles.profile import profile_model
    from zoo import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"^yolov5n: imgsz=16384 must be an integer from 1 to 8,192$"):
        profile_model("yolov5n", imgsz=16384, latency=False)
    with pytest.raises(ConfigError, match=r"^yolov5n: batch=100000 "):
        profile_model("yolov5n", batch=100000, latency=False)
    with pytest.raises(ConfigError, match=r"^yolov5n: imgsz=300 is not a positive multiple .*max stride 32"):
        profile_model("yolov5n", imgsz=300, latency=False)
    with pytest.raises(ConfigError, match=r"^yolov5n: nc=2\*\*1024\+ must be"):
        load_config("yolov5n", nc=2 ** 1024)


WARNS = """\
import warnings
from torch import nn
from zoo import register_module


@register_module("WarnConv", io="out_arg")
class WarnConv(nn.Conv2d):
    def __init__(self, c1, c2):
        warnings.warn("WarnConv is deprecated\\nsee the docs")
        super().__init__(c1, c2, 1)
"""


@pytest.fixture
def warning_plugin(tmp_path):
    from zoo.registry import REGISTRY

    plugin = tmp_path / "warns.py"
    plugin.write_text(WARNS)
    yield plugin
    REGISTRY.remove("WarnConv", "shared")
    REGISTRY.loaded.discard(str(plugin.resolve()))


def test_warnings_while_building_become_one_line_each(tmp_path, capsys, warning_plugin) -> None:
    path = tmp_path / "warns.yaml"
    path.write_text(body("[-1, 1, WarnConv, [64]]", "[-1, 1, WarnConv, [64]]"))
    assert cli.main(["--plugin", str(warning_plugin), "validate", str(path)]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    # twice raised, once shown, first line; named by the file validated (validate checks several)
    assert err == [f"warning: {path}: UserWarning: WarnConv is deprecated"]


def test_a_failing_command_prints_only_its_error_not_its_warnings(tmp_path, capsys) -> None:
    path = tmp_path / "zero.yaml"
    path.write_text(body("[-1, 1, SqueezeExcite, [128, 0.0]]"))  # torch warns on zero-element weights
    line = one_error_line(capsys, cli.main(["validate", str(path)]))
    assert "row 5 (SqueezeExcite)" in line


def test_unknown_module_suggests_a_name(tmp_path, capsys) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(body("[-1, 1, Cnov, [64, 1, 1]]"))
    assert cli.main(["validate", str(path)]) == 1
    assert "did you mean Conv" in capsys.readouterr().err


def test_row_errors_name_the_yaml_line(tmp_path, capsys) -> None:
    path = tmp_path / "line.yaml"
    path.write_text(body("[-1, 1, Cnov, [64, 1, 1]]"))
    cli.main(["validate", str(path)])
    line = 1 + (HEADER + GOOD_BACKBONE + "head:\n").count("\n")
    assert f"[line {line}]" in capsys.readouterr().err


def test_missing_file_and_unknown_builtin(capsys) -> None:
    assert cli.main(["validate", "/nonexistent/model.yaml"]) == 1
    assert cli.main(["validate", "yolov5q"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "no such" in err[0] and "did you mean" in err[1]


def test_bad_scale_flag(capsys) -> None:
    assert cli.main(["validate", "yolov5s", "--scale", "q"]) == 1
    assert "scale 'q'" in capsys.readouterr().err


def test_real_process_prints_no_traceback(tmp_path) -> None:
    path = tmp_path / "inject.yaml"
    path.write_text(body(f"[-1, 1, Conv, [\"__import__('os').system('touch {MARKER}')\"]]"))
    proc = subprocess.run([sys.executable, "-m", "cli", "validate", str(path)], capture_output=True, text=True,
                          cwd=Path(cli.__file__).parent)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


