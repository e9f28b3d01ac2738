"""Mutated configs for fuzzing (hypothesis strategies) and the one check of a mutant's outcome.

A mutant starts from a built-in or a published reference config and changes it at one or more places:
a number (to 0, negatives, huge ints, NaN...), a module name, the rows (deleted, duplicated, swapped,
inserted), a row's `from`, an argument's type, the document's structure (keys dropped, retyped,
added), or the YAML text itself (lines cut, duplicated, characters inserted). The promise checked is
that building it on the meta device (what `zoo validate` does) gives a model or a ConfigError, nothing
else. Used by tests/test_fuzz.py (a short run) and bench/fuzz.py (10,000 mutants).
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
NUMBERS = (0, 1, 2, 3, -1, -2, 7, 64, 1000, 65536, 2 ** 20 + 1, 2 ** 31, 2 ** 63, 2 ** 64, 2 ** 1024, 10 ** 5000,
           -(2 ** 1024), 0.0, 0.5, -0.5, 1e-9, 1.5, 3.7, 1e300, -1e300, math.inf, -math.inf, math.nan, True, False)
NAMES = ("Conv", "C3", "SPPF", "Detect", "Segment", "Concat", "nn.Upsample", "Bottleneck", "C2f", "RTDETRDecoder",
         "GhostConv", "DWConv", "Focus", "conv", "C33", "nn.Conv2d", "nn.Identity", "torch.zeros", "os.system",
         "__import__", "", " ", "Conv\x1b[31m", "Détect", "a" * 300, "Conv.", "nn.", "nn.Module", "nn.Sequential")
ODD = (None, "", "x", "nc", "anchors", "None", [], [1], [[1, 2]], {}, {"a": 1}, [None], "\x00", "1e400", -1, 0,
       2 ** 1024, math.nan, True, [[10, 13], 5], "nearest")


def config_files() -> list[Path]:
    """The built-in configs and, when ../shared is beside the checkout, the published reference configs."""
    files = sorted((ROOT / "zoo" / "configs").glob("*.yaml"))
    if SHARED.is_dir():
        files += sorted(SHARED.rglob("*.yaml"))
    return files


BASES: tuple[tuple[str, str], ...] = tuple((p.name, p.read_text(encoding="utf-8")) for p in config_files())


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in nested lists and dicts (the root excluded)."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out.append((*prefix, k))
        out += _paths(v, (*prefix, k))
    return out


def _set(root: Any, path: tuple[Any, ...], value: Any) -> None:
    node = root
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


def _get(root: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        root = root[k]
    return root


def _rows(data: Any) -> list[tuple[str, int]]:
    return [(sec, i) for sec in ("backbone", "head") if isinstance(data, dict) and isinstance(data.get(sec), list)
            for i in range(len(data[sec]))]


@st.composite
def mutate_data(draw: Any, data: Any) -> Any:
    """One structural mutation of parsed config data."""
    data = copy.deepcopy(data)
    kind = draw(st.sampled_from(("number", "module", "rows", "from", "arg", "structure", "repeats")))
    rows = _rows(data)
    if kind == "number":
        spots = [p for p in _paths(data) if isinstance(_get(data, p), (int, float))]
        if spots:
            _set(data, draw(st.sampled_from(spots)), draw(st.sampled_from(NUMBERS) | st.integers(-10 ** 6, 10 ** 6)))
    elif kind in ("module", "from", "arg", "repeats") and rows:
        sec, i = draw(st.sampled_from(rows))
        row = data[sec][i]
        if not isinstance(row, list) or len(row) < 4:
            data[sec][i] = draw(st.sampled_from(ODD))
        elif kind == "module":
            row[2] = draw(st.sampled_from(NAMES) | st.text(max_size=12))
        elif kind == "from":
            row[0] = draw(st.sampled_from(ODD) | st.integers(-60, 60) | st.lists(st.integers(-60, 60), max_size=4))
        elif kind == "repeats":
            row[1] = draw(st.sampled_from(NUMBERS + ODD))
        elif isinstance(row[3], list) and row[3]:
            row[3][draw(st.integers(0, len(row[3]) - 1))] = draw(st.sampled_from(ODD + NUMBERS))
        else:
            row[3] = draw(st.sampled_from(ODD))
    elif kind == "rows" and rows:
        sec, i = draw(st.sampled_from(rows))
        op = draw(st.sampled_from(("delete", "duplicate", "swap", "insert")))
        section = data[sec]
        if op == "delete":
            del section[i]
        elif op == "duplicate":
            section.insert(i, copy.deepcopy(section[i]))
        elif op == "swap":
            j = draw(st.integers(0, len(section) - 1))
            section[i], section[j] = section[j], section[i]
        else:
            section.insert(i, [draw(st.integers(-5, 5)), draw(st.integers(0, 4)), draw(st.sampled_from(NAMES)),
                               draw(st.lists(st.sampled_from(ODD + NUMBERS), max_size=4))])
    elif isinstance(data, dict):
        key = draw(st.sampled_from(sorted(map(str, data)) + ["extra_key"]))
        op = draw(st.sampled_from(("drop", "retype", "add")))
        if op == "drop":
            data.pop(key, None)
        elif op == "retype":
            data[key] = draw(st.sampled_from(ODD + NUMBERS))
        else:
            data[draw(st.sampled_from(("family", "activation", "ch", "nc", "anchors", "scales", "search",
                                       "depth_multiple", "kpt_shape", "zzz")))] = draw(st.sampled_from(ODD + NUMBERS))
    else:
        data = draw(st.sampled_from(ODD))
    return data


@st.composite
def mutate_text(draw: Any, text: str) -> str:
    """One mutation of the YAML text (what a broken editor or a truncated download leaves)."""
    lines = text.splitlines(keepends=True)
    op = draw(st.sampled_from(("cut", "duplicate", "insert", "truncate", "indent")))
    i = draw(st.integers(0, max(0, len(lines) - 1)))
    if op == "cut" and lines:
        del lines[i]
    elif op == "duplicate" and lines:
        lines.insert(i, lines[i])
    elif op == "insert":
        lines.insert(i, draw(st.sampled_from(("&a [1, *a]\n", "- !!python/object:os.system [ls]\n", "x: !!int y\n",
                                              ":\n", "[[[[[[[[\n", "nc: 2023-02-30\n", "\t- [-1]\n", "'\n",
                                              "*unknown\n", "nc: 1e999\n", "nc: 0x7fffffffffffffffffff\n"))
                               | st.text(max_size=20).map(lambda t: t + "\n")))
    elif op == "truncate":
        return text[:draw(st.integers(0, len(text)))]
    elif lines:
        lines[i] = "  " + lines[i]
    return "".join(lines)


@st.composite
def mutants(draw: Any) -> tuple[str, Any]:
    """(base file name, mutated data or text): 1 to 3 mutations of one base config."""
    name, text = draw(st.sampled_from(BASES))
    if draw(st.integers(0, 4)) == 0:
        return name, draw(mutate_text(text))
    data = yaml.safe_load(text)
    for _ in range(draw(st.integers(1, 3))):
        data = draw(mutate_data(data))
    return name, data


class Outcome(NamedTuple):  # (not a dataclass: this file is imported by path, outside sys.modules)
    kind: str  # "model" | "ConfigError" | "crash"
    seconds: float
    detail: str = ""  # the crash's type and first line


def build_outcome(mutant: Any, folder: Path, name: str = "mutant.yaml") -> Outcome:
    """Build a mutant on the meta device as `zoo validate` does: a model, a ConfigError, or a crash."""
    from zoo import build_model
    from zoo.errors import ConfigError

    source: Any = mutant
    if isinstance(mutant, str):  # text: through the file reader
        path = folder / name
        path.write_text(mutant, encoding="utf-8", errors="surrogatepass")
        source = str(path)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build_model(source, device="meta")
    except ConfigError:
        return Outcome("ConfigError", time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001  what fuzzing is for
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        return Outcome("crash", time.perf_counter() - t0, f"{type(e).__name__}: {lines[0] if lines else ''}")
    return Outcome("model", time.perf_counter() - t0)


class Agreement(NamedTuple):
    kind: str  # "agree" | "disagree" | "no file" (a mapping YAML cannot write: the CLI reads files only)
    validate: str  # "ok", the one `error:` line, or "exit N: last stderr line"
    profile: str


def _cli(argv: list[str]) -> str:
    """One `zoo` command in this process: "ok", its `error:` line, or what else it ended with."""
    import contextlib
    import io

    from cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main(argv)
        except Exception as e:  # noqa: BLE001  a traceback is an outcome of its own
            lines = [ln for ln in str(e).splitlines() if ln.strip()]
            return f"crash {type(e).__name__}: {lines[0] if lines else ''}"
    errors = [ln for ln in err.getvalue().splitlines() if ln.startswith("error: ")]
    if code == 0 and not errors:
        return "ok"
    if code == 1 and len(errors) == 1:
        return errors[0]
    return f"exit {code}: {err.getvalue().strip().splitlines()[-1:] or ''}"


def cli_agreement(mutant: Any, folder: Path, name: str = "mutant.yaml") -> Agreement:
    """`zoo validate FILE` against `zoo profile FILE --no-latency` (real weights, fvcore's counting pass):
    both ok, or both refuse with the same one-line error. The promise of issue 19: what validate passes
    profiles, and what it refuses profile refuses in the same words."""
    path = folder / name
    if isinstance(mutant, str):
        path.write_text(mutant, encoding="utf-8", errors="surrogatepass")
    else:
        try:
            path.write_text(yaml.safe_dump(mutant, sort_keys=False), encoding="utf-8")
        except (ValueError, yaml.YAMLError):  # an int past Python's 4,300 digits has no YAML text
            return Agreement("no file", "", "")
    validated = _cli(["validate", str(path)])
    profiled = _cli(["profile", str(path), "--no-latency", "--format", "json", "-o", str(folder / "profile.json")])
    return Agreement("agree" if validated == profiled else "disagree", validated, profiled)
