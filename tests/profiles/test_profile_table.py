"""`zoo profile`'s table fits the terminal: every row's index, params, GFLOPs and module at 80, 100 and 120
columns, in a real pseudo-terminal, no number ever cut; args as YOLOv5 writes them."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from rich.console import Console

import cli
from profiles import profile_model
from profiles.rows import args_text
from face.render_profile import COMPACT_BELOW, REQUIRED, fitted_table, render_table

ROOT = Path(cli.__file__).parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
DETECT_ARGS = (80, [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]],
               [64, 128, 256])


def in_terminal(argv: list[str], columns: int) -> str:
    """Run `python -m cli ARGV` with stdout and stderr on a pseudo-terminal `columns` wide; what it showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm-256color"}
    proc = subprocess.Popen([sys.executable, "-m", "cli", *argv], stdin=slave, stdout=slave, stderr=slave,
                            cwd=ROOT, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=600) == 0
    return ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r\n", "\n")


@pytest.fixture(scope="module")
def n640():
    return profile_model("yolov5n", latency=False)


def row_lines(text: str, n_rows: int) -> dict[int, str]:
    """The table's row lines by their `#` cell (the first token of a line that is a row index)."""
    rows: dict[int, str] = {}
    for line in text.splitlines():
        first = line.split()[:1]
        if first and first[0].isdigit() and int(first[0]) < n_rows and int(first[0]) not in rows:
            rows[int(first[0])] = line
    return rows


def assert_every_row_shown(text: str, p, columns: int) -> None:
    rows = row_lines(text, len(p.layers))
    assert sorted(rows) == list(range(len(p.layers))), text
    for lay in p.layers:
        line = rows[lay.index]
        assert len(line.rstrip()) <= columns, line
        cells = line.split()
        assert f"{lay.params:,}" in cells and f"{lay.gflops:.3f}" in cells and lay.module in cells, line
        assert "…" not in line, line  # nothing cut (args are abbreviated as `[...]`, never mid-number)


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_table_fits_a_real_terminal(n640, columns: int) -> None:
    text = in_terminal(["profile", "yolov5n", "--no-latency"], columns)
    assert_every_row_shown(text, n640, columns)
    assert "yolov5n summary: 214 layers, 1872157 parameters, 4.52 GFLOPs" in text
    rows = row_lines(text, 25)
    assert "[None, 2, 'nearest']" in rows[11]  # nn.Upsample's args, no longer eaten as markup


@pytest.mark.parametrize("columns", [80, 120])
def test_table_with_latency_fits_the_terminal(n640, columns: int) -> None:
    text = in_terminal(["profile", "yolov5n", "--runs", "1"], columns)
    assert_every_row_shown(text, n640, columns)
    for line in row_lines(text, 25).values():
        assert "…" not in line, line  # at 120 columns with latency no args cell is cut to `[…`
        if columns < COMPACT_BELOW:
            assert re.search(r" \d+\.\d\d +\d+\.\d%$", line.rstrip()), line  # ms and share, whole


def render(p, columns: int, *, wide: bool = False) -> str:
    buf = io.StringIO()
    render_table([p], Console(file=buf, width=columns, color_system=None, soft_wrap=False), wide=wide)
    return buf.getvalue()


@pytest.mark.parametrize("columns", [80, 90, 99, 100, 120, 160, 220])
def test_layouts_by_width(n640, columns: int) -> None:
    text = render(n640, columns)
    assert_every_row_shown(text, n640, columns)
    line = next(ln for ln in text.splitlines() if ln.split()[:1] == ["#"])
    header = set(re.split(r"\s{2,}", line.strip()))
    assert set(REQUIRED) | {"args"} <= header
    extras = {"out shape", "stride", "GMACs", "uncounted"}
    if columns < COMPACT_BELOW:  # the compact layout
        assert not extras & header
    if columns >= 160:  # the full layout with room for the args
        assert {"from", "n", "out shape", "stride"} <= header
    if columns >= 220:  # a pipe's width: every column
        assert extras <= header and "[80, [[...], [...], [...]], [64, 128, 256]]" in text


def test_wide_shows_everything_at_any_width(n640) -> None:
    text = render(n640, 80, wide=True)
    header = next(ln for ln in text.splitlines() if ln.split()[:1] == ["#"])
    for h in ("from", "n", "out shape", "stride", "GMACs", "share (MACs)", "uncounted"):
        assert h in header
    assert args_text(DETECT_ARGS) in text and "max_pool2d×3, silu×2" in text
    con = Console(file=io.StringIO(), width=80)
    assert len(fitted_table(n640, con, wide=True).columns) == 12


def test_args_as_yolov5_writes_them() -> None:
    assert args_text((None, 2, "nearest")) == "[None, 2, 'nearest']"
    assert args_text((3, 16, 6, 2, 2)) == "[3, 16, 6, 2, 2]" and args_text(()) == "[]"
    assert args_text((256, 0.5, True)) == "[256, 0.5, True]"
    full = ("[80, [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]], "
            "[64, 128, 256]]")
    assert args_text(DETECT_ARGS) == full
    assert args_text(DETECT_ARGS, 60) == "[80, [[...], [...], [...]], [64, 128, 256]]"  # deepest first
    assert args_text(DETECT_ARGS, 30) == "[80, [...], [...]]"
    assert args_text(DETECT_ARGS, 12) == "[80, ...]"
    assert args_text((3, 16, 6, 2, 2), 12) == "[3, 16, ...]"
    assert args_text((3, 16, 6, 2, 2), 3) == "[...]"
