"""Config surgery: renumbering semantics, round trips, errors naming rows, the `zoo edit` command."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import zoo
from zoo import surgery, yamlio
from zoo.config import builtin_names
from zoo.errors import ConfigError

SMALL = {
    "nc": 3,
    "backbone": [[-1, 1, "Conv", [16, 3, 2]],      # 0
                 [-1, 1, "Conv", [32, 3, 2]],      # 1
                 [-1, 1, "C3", [32]]],             # 2
    "head": [[-1, 1, "Conv", [32, 1, 1]],          # 3
             [[-1, 1], 1, "Concat", [1]],          # 4
             [-3, 1, "Conv", [8, 1, 1]],           # 5 reads 2
             [[4, -1, 1], 1, "Concat", [1]]],      # 6
}


def count(m) -> int:
    return sum(p.numel() for p in m.parameters())


def froms(data: dict) -> list:
    return [r[0] for r in data["backbone"] + data.get("head", [])]


def test_insert_renumbers_absolute_and_spanning_relative() -> None:
    row = [-1, 1, "Conv", [32, 3, 1]]
    out = surgery.insert_after(SMALL, 2, row)
    assert froms(out) == [-1, -1, -1, -1, -1, [-1, 1], -4, [5, -1, 1]]
    assert out["backbone"][3] == row  # into row 2's section, chained after it
    assert SMALL["head"][3] == [[4, -1, 1], 1, "Concat", [1]]  # input untouched


def test_insert_chain_rewires_only_the_next_rows_minus_one() -> None:
    out = surgery.insert_after(SMALL, 3, [-1, 1, "Conv", [32, 1, 1]])
    # row 4 read 3 through -1: now reads the new row (still -1); its absolute 1 stays
    assert froms(out) == [-1, -1, -1, -1, -1, [-1, 1], -4, [5, -1, 1]]
    # row 5 (-3 -> 2) spans the insertion and becomes -4; row 6's absolute 4 becomes 5


def test_delete_follows_minus_one_to_the_single_input() -> None:
    out = surgery.delete(SMALL, 3)  # row 4 read 3 via -1; 3 read 2
    assert froms(out) == [-1, -1, -1, [-1, 1], -2, [3, -1, 1]]  # row 5 (-3 -> 2) spans: -2


def test_delete_reference_errors_name_the_rows() -> None:
    with pytest.raises(ConfigError, match=r"row 2 \(C3\).*row 5 \(Conv\) reads this row through from -3"):
        surgery.delete(SMALL, 2)
    with pytest.raises(ConfigError, match=r"row 4 \(Concat\).*row 6 \(Concat\) reads this row through from 4"):
        surgery.delete(SMALL, 4)
    data = {"backbone": [[-1, 1, "Conv", [8]], [-1, 1, "Conv", [8]], [[-1, 0], 1, "Concat", [1]],
                         [-1, 1, "Conv", [8]]]}
    with pytest.raises(ConfigError, match="several inputs"):
        surgery.delete(data, 2)


def test_replace_keeps_numbering_and_errors() -> None:
    out = surgery.replace(SMALL, 5, [-4, 1, "Conv", [8, 3, 1]])
    assert froms(out)[5] == -4 and froms(out)[6] == [4, -1, 1]
    with pytest.raises(ConfigError, match="points forward"):
        surgery.replace(SMALL, 2, [3, 1, "Conv", [8]])
    with pytest.raises(ConfigError, match="does not exist"):
        surgery.insert_after(SMALL, 7, [-1, 1, "Conv", [8]])
    with pytest.raises(ConfigError, match=r"\[from, repeats, module, args\]"):
        surgery.replace(SMALL, 1, [-1, "Conv", [8]])
    with pytest.raises(ConfigError, match="empty"):
        surgery.delete({"backbone": [[-1, 1, "Conv", [8]]]}, 0)


def _configs(shared: Path) -> list[dict]:
    paths = sorted({p for p, _ in builtin_names().values()}) + sorted((shared / "configs").glob("*.yaml"))
    return [yaml.safe_load(p.read_text()) for p in paths]


def test_insert_then_delete_is_the_original(shared_dir) -> None:
    for data in _configs(shared_dir):
        n = len(data["backbone"]) + len(data.get("head", []))
        for i in range(n):
            edited = surgery.insert_after(data, i, [-1, 1, "nn.Identity", []])
            assert surgery.delete(edited, i + 1) == data, i


def test_gfpn_backbone_insert_renumbers_head_and_adds_exactly_the_row() -> None:
    data = surgery.load("yolov5s-gfpn")
    row = [-1, 1, "Conv", [256, 3, 1]]  # keeps 256 channels (128 at width 0.5) and stride 8
    edited = surgery.insert_after(data, 4, row)
    head = edited["head"]
    assert head[1][0] == 7                 # [6, 1, Conv, [512, 3, 2]] now reads backbone row 7
    assert head[5][0] == 4                 # [4, 1, Conv, [256, 3, 2]] still reads row 4
    assert head[6][0] == [15, -1, 7]       # [[14, -1, 6], ...]
    assert head[14][0] == 18 and head[15][0] == 24 and head[16][0] == [14, 25, -1]
    assert head[-1][0] == [21, 24, 28]     # Detect([20, 23, 27])
    before = zoo.build_model(data, scale="s", device="meta")
    after = zoo.build_model(edited, scale="s", device="meta")
    c = 128
    assert count(after) - count(before) == c * c * 9 + 2 * c
    assert after.layers[5].out_channels == c and after.layers[5].stride == 8.0


def test_parse_row_is_safe_load_only() -> None:
    assert surgery.parse_row("[-1, 2, GhostModuleV3, [512, 3]]") == [-1, 2, "GhostModuleV3", [512, 3]]
    with pytest.raises(ConfigError):
        surgery.parse_row("!!python/object/apply:os.system ['echo hacked']")
    with pytest.raises(ConfigError):
        surgery.parse_row("[-1, 1, Conv")


def test_edit_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main

    out = tmp_path / "out.yaml"
    rc = main(["edit", "yolov5s-gfpn", "--insert-after", "4", "--row", "[-1, 1, Conv, [256, 3, 1]]",
               "-o", str(out)])
    assert rc == 0
    assert capsys.readouterr().err.strip() == f"wrote {out} (row inserted after row 4; scale s written out)"
    assert yaml.safe_load(out.read_text())["head"][1][0] == 7
    back = tmp_path / "back.yaml"
    assert main(["edit", str(out), "--delete", "5", "-o", str(back)]) == 0
    assert yaml.safe_load(back.read_text()) == surgery.pin_scale(surgery.load("yolov5s-gfpn"), "s")
    # deleting a stride-2 conv breaks a Concat: the result is built before it is written
    assert main(["edit", str(out), "--delete", "6", "-o", str(tmp_path / "bad.yaml")]) == 1
    assert not (tmp_path / "bad.yaml").exists()
    assert main(["edit", str(out), "--replace", "5", "-o", str(back)]) == 1  # --row missing


def _conv_params(c: int) -> int:
    return c * c * 9 + 2 * c  # Conv(c, c, 3): bias-free conv + BN weight and bias


@pytest.mark.parametrize(("name", "scale", "c"), [("yolov5s-gfpn", None, 128), ("yolov5l-gfpn", None, 256),
                                                  ("yolov5l-gfpn", "s", 128)])
def test_edit_writes_the_scale_out(tmp_path: Path, name: str, scale: str | None, c: int) -> None:
    from cli import main

    # the output's name says another scale (x / s): the written-out multiples must win over it
    out = tmp_path / ("yolov5x-gfpn.yaml" if c == 128 else "yolov5s-gfpn.yaml")
    argv = ["edit", name, "--insert-after", "4", "--row", "[-1, 1, Conv, [256, 3, 1]]", "-o", str(out)]
    assert main(argv + (["--scale", scale] if scale else [])) == 0
    data = yaml.safe_load(out.read_text())
    assert "scales" not in data and data["family"] == "yolov5"
    reference = zoo.build_model(name, scale=scale, device="meta")
    assert count(zoo.build_model(out, device="meta")) == count(reference) + _conv_params(c)
    assert ("scale " + (scale or name[6]) + " written out") in out.read_text().splitlines()[0]


def test_edit_keeps_an_ultralytics_scale(tmp_path: Path) -> None:
    from cli import main

    out = tmp_path / "yolov8n.yaml"  # the name says n; the file must still build m
    assert main(["edit", "yolov8m", "--insert-after", "4", "--row", "[-1, 1, Conv, [256, 3, 1]]",
                 "-o", str(out)]) == 0
    data = yaml.safe_load(out.read_text())
    assert data["scales"] == {"m": [0.67, 0.75, 768]} and "depth_multiple" not in data
    assert data["head"][-1][0] == [16, 19, 22]  # Detect([15, 18, 21]) renumbered
    after = zoo.build_model(out, device="meta")
    assert count(after) == count(zoo.build_model("yolov8m", device="meta")) + _conv_params(192)
    assert after.layers[5].out_channels == 192  # min(256, 768) * 0.75


def test_pin_scale_api_and_errors() -> None:
    data = surgery.load("yolov5s-gfpn")
    assert surgery.builtin_scale("yolov5l-gfpn") == "l" and surgery.builtin_scale("damo-yolo-s") is None
    pinned = surgery.pin_scale(data, "l")
    assert (pinned["depth_multiple"], pinned["width_multiple"]) == (1.0, 1.0) and "scales" not in pinned
    assert list(pinned)[:4] == ["nc", "family", "depth_multiple", "width_multiple"]  # where `scales` was
    assert "scales" in data and surgery.pin_scale(data, None) == data
    # no family and no anchors: the loader infers ultralytics from `scales`, so `scales` stays
    bare = {"scales": {"a": [0.5, 0.5], "b": [1.0, 1.0]}, "backbone": SMALL["backbone"]}
    assert surgery.pin_scale(bare, "b")["scales"] == {"b": [1.0, 1.0]}
    with pytest.raises(ConfigError, match=r"scale 'x' is not in the config's scales \(s, l\)"):
        surgery.pin_scale(data, "x")
    with pytest.raises(ConfigError, match="no 'scales'"):
        surgery.pin_scale(SMALL, "s")


def test_edit_without_a_scale_checks_every_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main

    src = tmp_path / "two.yaml"
    yamlio.write_config(surgery.load("yolov5s-gfpn"), src)
    out = tmp_path / "out.yaml"
    ok = ["--insert-after", "4", "--row", "[-1, 1, Conv, [256, 3, 1]]", "-o", str(out)]
    assert main(["edit", str(src), *ok]) == 0
    assert set(yaml.safe_load(out.read_text())["scales"]) == {"s", "l"}  # no scale chosen: all kept
    # 256 groups divide 256 channels (l) but not 128 (s): only checking every scale catches it
    grouped = ["--insert-after", "4", "--row", "[-1, 1, Conv, [256, 3, 1, 1, 256]]", "-o", str(out)]
    assert main(["edit", str(src), "--scale", "l", *grouped]) == 0
    out.unlink()
    capsys.readouterr()
    assert main(["edit", str(src), *grouped]) == 1 and not out.exists()
    assert "does not build at scale s" in capsys.readouterr().err
    assert main(["edit", str(src), "--scale", "z", *ok]) == 1
