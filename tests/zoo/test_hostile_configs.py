"""Malformed and hostile configs: exit code 1, one stderr line naming the file and the row (or the YAML
line), no traceback, nothing executed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import cli

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
    assert str(path) in lines[0]
    assert expected in lines[0], lines[0]


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


