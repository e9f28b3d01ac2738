"""The one YAML reader (limits, duplicate keys, value errors, lines) and the one writer (round trips)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from zoo import limits, surgery, yamlio
from zoo.config import builtin_names
from zoo.errors import ConfigError


def read(text: str | bytes) -> yamlio.Document:
    return yamlio.read_text(text, source="t.yaml")


def error(text: str | bytes) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        read(text)
    return info.value


def bomb(levels: int, fan: int = 9) -> str:
    """The "billion laughs" document: each level an anchored list of `fan` aliases of the level before."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * fan) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


def test_reads_data_and_the_lines_of_keys_and_rows() -> None:
    doc = read("nc: 3\n\nbackbone:\n  - [-1, 1, Conv, [16]]\n  # comment\n  - [-1, 1, Conv, [32]]\nhead: []\n")
    assert doc.data == {"nc": 3, "backbone": [[-1, 1, "Conv", [16]], [-1, 1, "Conv", [32]]], "head": []}
    assert dict(doc.lines.keys) == {"nc": 1, "backbone": 3, "head": 7}
    assert doc.lines.item("backbone", 0) == 4 and doc.lines.item("backbone", 1) == 6
    assert doc.lines.item("backbone", 2) is None and doc.lines.item("head", 0) is None


def test_a_billion_laughs_is_refused_by_the_node_limit() -> None:
    text = bomb(9)  # 9**9 strings once expanded, from under 500 bytes
    assert len(text.encode()) < 500
    e = error(text)
    assert f"more than {limits.MAX_YAML_NODES:,} nodes" in e.text and "aliases" in e.text
    assert e.line is not None and e.line <= 9


def test_aliases_below_the_limit_are_expanded() -> None:
    doc = read(bomb(3, fan=3))  # 3**3 strings
    assert doc.data["l2"] == [[["lol"] * 3] * 3] * 3


@pytest.mark.parametrize("text", ["a: &a [1, *a]", "a: &a {b: *a}", "a: &a [[[*a]]]"])
def test_recursive_aliases_are_refused(text: str) -> None:
    assert "inside its own anchor" in error(text).text


def test_nesting_is_bounded() -> None:
    deep = limits.MAX_YAML_DEPTH
    assert read("a: " + "[" * (deep - 1) + "]" * (deep - 1)).data is not None
    e = error("a: " + "[" * deep + "]" * deep)
    assert f"deeper than {deep} levels" in e.text and e.line == 1


def test_size_is_bounded() -> None:
    e = error("a: " + "x" * limits.MAX_YAML_BYTES)
    assert f"larger than {limits.MAX_YAML_BYTES:,} bytes" in e.text


@pytest.mark.parametrize(("text", "line", "first"), [
    ("nc: 80\nch: 3\nnc: 3\n", 3, 1),
    ("a: 1\nb:\n  c: 1\n  c: 2\n", 4, 3),
    ("a: {x: 1, y: 2, x: 3}\n", 1, 1),
    ("s: !!set {p, q, p}\n", 1, 1),
])
def test_duplicate_keys_are_errors_naming_both_lines(text: str, line: int, first: int) -> None:
    e = error(text)
    assert e.line == line and f"first given at line {first}" in e.text and "duplicate key" in e.text


def test_merge_keys_may_be_overridden() -> None:
    assert read("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n").data["d"] == {"x": 3, "y": 2}


@pytest.mark.parametrize(("value", "tag"), [
    ("2023-02-30", "!!timestamp"),
    ("!!timestamp garbage", "!!timestamp"),
    ("!!float garbage", "!!float"),
    ("!!int garbage", "!!int"),
    ("1" * 5000, "!!int"),
    ("!!binary ZZZ", "!!binary"),
])
def test_values_a_tag_cannot_hold_name_their_line(value: str, tag: str) -> None:
    e = error(f"nc: 80\nmade: {value}\n")
    assert e.line == 2 and (tag in e.text or "YAML syntax error" in e.text), e.text
    assert len(e.message) < 300  # the value is quoted, not a 5,000-digit number


def test_code_tags_are_refused() -> None:
    e = error("backbone: !!python/object/apply:os.system ['true']\n")
    assert e.line == 1 and "YAML syntax error" in e.text


def test_non_utf8_and_control_characters_name_their_line() -> None:
    e = error(b"nc: 80\nname: \xff\xfe\n")
    assert e.line == 2 and "not UTF-8" in e.text and "0xff" in e.text
    e = error("nc: 80\nname: a\x1bb\n")
    assert e.line == 2 and "#x001b" in e.text


def test_read_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"a: 1\na: 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:2: duplicate key 'a'"):
        yamlio.read_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        yamlio.read_file(tmp_path / "missing.yaml")


def test_every_builtin_and_published_config_reads_as_safe_load_does(shared_dir: Path) -> None:
    paths = sorted({p for p, _ in builtin_names().values()}) + sorted(shared_dir.rglob("*.yaml"))
    assert len(paths) > 20
    for p in paths:
        assert yamlio.read_file(p).data == yaml.safe_load(p.read_text()), p


def test_dump_config_is_readable_and_reads_back(tmp_path: Path) -> None:
    data = surgery.load("yolov5s-gfpn")
    text = yamlio.dump_config(data, header="test\nsecond line")
    lines = text.splitlines()
    assert lines[:2] == ["# test", "# second line"]
    assert "  - [[14, -1, 6], 1, Concat, [1]]" in text
    assert "# 16" in lines[next(i for i, ln in enumerate(lines) if "[14, -1, 6]" in ln)]
    assert yaml.safe_load(text) == data
    path = yamlio.write_config(data, tmp_path / "sub" / "x.yaml")
    assert yamlio.read_file(path).data == data == surgery.load(path)


def test_every_builtin_round_trips_through_the_writer() -> None:
    for name, (path, _) in builtin_names().items():
        data = yamlio.read_file(path).data
        assert read(yamlio.dump_config(data)).data == data, name
