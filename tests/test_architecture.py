"""The layout's import rules, read from the source with `ast` (nothing is imported or run).

Every .py file of the project is read (cli.py, zoo/, profiles/, search/, bench/, tests/). Rules
(ARCHITECTURE.md, "Import rules"), over the shipped code (cli.py, zoo/, profiles/, search/):
- only the face (face/) imports rich or prints (print(), sys.stdout.write, sys.stderr.write);
- zoo/ imports neither profiles/ nor search/; profiles/ does not import search/;
- the library (zoo/, profiles/, search/) does not import the face;
- search/space.py builds no models (no zoo.builder, no build_model);
- there are no import cycles among the project's modules (bench/ and tests/ included).
Every import counts, at module level or inside a function. bench/ and tests/ are scripts and checks,
not the product: they may print and import what they measure or check.
"""
from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator


ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("cli.py", "zoo", "profiles", "search", "face")
PROJECT = (*SHIPPED, "bench", "tests")
FACE = "face"

@dataclass(frozen=True)
class Import:
    target: str  # absolute module name, project or external
    names: tuple[str, ...]  # the names of a `from ... import` (empty for `import x`)
    line: int


@dataclass(frozen=True)
class Source:
    module: str
    path: str  # relative to the tree's root, with "/"
    imports: tuple[Import, ...]
    prints: tuple[tuple[str, int], ...]  # (what, line)
    calls: tuple[tuple[str, int], ...]  # (called name, line)


def module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


DATA = ("profiles/lutrunner",)  # standalone programs shipped as package data (the device-side lut runner):
#                                 not library modules, they import nothing of the project and may print


def python_files(root: Path, tops: Iterable[str] = PROJECT) -> Iterator[Path]:
    for top in tops:
        p = root / top
        if p.is_file():
            yield p
        elif p.is_dir():
            yield from sorted(q for q in p.rglob("*.py") if "__pycache__" not in q.parts
                              and not any(q.relative_to(root).as_posix().startswith(d + "/") for d in DATA))


def _printed(node: ast.Call) -> str | None:
    f = node.func
    if isinstance(f, ast.Name) and f.id == "print":
        return "print()"
    if (isinstance(f, ast.Attribute) and f.attr == "write" and isinstance(f.value, ast.Attribute)
            and f.value.attr in ("stdout", "stderr") and isinstance(f.value.value, ast.Name)
            and f.value.value.id == "sys"):
        return f"sys.{f.value.attr}.write()"
    return None


def _called(node: ast.Call) -> str | None:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def read_source(root: Path, path: Path, modules: set[str]) -> Source:
    rel = path.relative_to(root)
    module = module_name(rel)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    imports, prints, calls = [], [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [Import(a.name, (), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package.split(".") if package else []
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([node.module] if node.module else []))
            names = tuple(a.name for a in node.names)
            subs = [n for n in names if f"{base}.{n}" in modules]
            imports += [Import(f"{base}.{n}", (), node.lineno) for n in subs]
            if len(subs) < len(names):
                imports.append(Import(base, tuple(n for n in names if n not in subs), node.lineno))
        elif isinstance(node, ast.Call):
            if (what := _printed(node)) is not None:
                prints.append((what, node.lineno))
            if (name := _called(node)) is not None:
                calls.append((name, node.lineno))
    return Source(module, rel.as_posix(), tuple(imports), tuple(prints), tuple(calls))


def read_tree(root: Path, tops: Iterable[str] = PROJECT) -> dict[str, Source]:
    paths = list(python_files(root, tops))
    modules = {module_name(p.relative_to(root)) for p in paths}
    return {s.module: s for s in (read_source(root, p, modules) for p in paths)}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def rule_violations(sources: dict[str, Source]) -> list[str]:
    """One line per broken rule: `path:line: what`, then the rule."""
    out: list[str] = []
    for s in sources.values():
        face = _within(s.module, FACE)
        core = _within(s.module, "zoo") and not face
        library = core or _within(s.module, "profiles") or _within(s.module, "search")
        if not (library or face or s.module == "cli"):
            continue  # bench/, tests/
        for imp in s.imports:
            t = imp.target
            if _within(t, "rich") and not face:
                out.append(f"{s.path}:{imp.line}: imports {t} (only face imports rich)")
            if core and (_within(t, "profiles") or _within(t, "search")):
                out.append(f"{s.path}:{imp.line}: imports {t} (zoo/ imports neither profiles/ nor search/)")
            if _within(s.module, "profiles") and _within(t, "search"):
                out.append(f"{s.path}:{imp.line}: imports {t} (profiles/ does not import search/)")
            if library and _within(t, FACE):
                out.append(f"{s.path}:{imp.line}: imports {t} (the library does not import the face)")
        if not face:
            out += [f"{s.path}:{line}: calls {what} (only face prints)" for what, line in s.prints]
        if s.module == "search.space":
            builds = [i.line for i in s.imports if _within(i.target, "zoo.builder") or "build_model" in i.names]
            builds += [line for name, line in s.calls if name == "build_model"]
            if builds:
                out.append(f"{s.path}: builds models (lines {', '.join(map(str, sorted(set(builds))))}); "
                           f"search/space.py builds no models")
    return sorted(set(out))


def import_graph(sources: dict[str, Source]) -> dict[str, dict[str, int]]:
    """module -> {project module it imports: line}.

    Importing a.b.c also runs a and a.b, except the packages the importer sits in (already running);
    an explicit `from a import name` inside package a still counts (a cycle when a's __init__ imports it).
    """
    graph: dict[str, dict[str, int]] = {m: {} for m in sources}
    for s in sources.values():
        own = set(_ancestors(s.module))
        for imp in s.imports:
            implied = [t for t in _ancestors(imp.target) if t not in own]
            for t in [*implied, imp.target]:
                if t in sources and t != s.module:
                    graph[s.module].setdefault(t, imp.line)
    return graph


def _components(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), members sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _cycle_through(graph: dict[str, dict[str, int]], comp: list[str]) -> list[str]:
    """A shortest cycle from the component's first module back to it (breadth first)."""
    start, members = comp[0], set(comp)
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle in component {comp}")


def import_cycles(sources: dict[str, Source]) -> list[list[str]]:
    """One cycle path (first module repeated at the end) per strongly connected component."""
    graph = import_graph(sources)
    return [_cycle_through(graph, c) for c in _components(graph) if len(c) > 1]


def cycle_text(sources: dict[str, Source], cycle: list[str]) -> str:
    graph = import_graph(sources)
    steps = [f"{a} ({sources[a].path}:{graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
    return "import cycle: " + " -> ".join(steps + [cycle[-1]])


def check_tree(root: Path, tops: Iterable[str] = PROJECT) -> list[str]:
    """Every broken rule and every import cycle of the tree at `root`, one line each."""
    sources = read_tree(root, tops)
    return rule_violations(sources) + [cycle_text(sources, c) for c in import_cycles(sources)]


# ----------------------------------------------------------------------------- the project


def test_the_project_keeps_the_import_rules() -> None:
    """No forbidden import, no print outside the face, no import cycle (the registry imports no family,
    the rules no registry, search/space.py builds no model)."""
    assert check_tree(ROOT) == []


def test_the_checker_reads_the_whole_project() -> None:
    sources = read_tree(ROOT)
    assert {"cli", "zoo", "face", "face.console", "profiles.profile", "search.export",
            "bench.counting", "tests.test_architecture", "tests.zoo.test_surgery"} <= set(sources)
    assert len(sources) == len(list(python_files(ROOT)))
    cli_imports = {i.target for i in sources["cli"].imports}
    assert "face.console" in cli_imports and "importlib" not in cli_imports


# ----------------------------------------------------------------------------- the checker itself


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


CLEAN = {
    "cli.py": "from face import console\n",
    "zoo/__init__.py": "from .config import load\n",
    "zoo/config.py": "import yaml\n",
    "face/__init__.py": "",
    "face/console.py": "import sys\nfrom rich.console import Console\n\n"
                           "def line(t):\n    from profiles import cost\n    print(t)\n    sys.stderr.write(t)\n",
    "profiles/__init__.py": "from .cost import cost\n",
    "profiles/cost.py": "from zoo.config import load\n",
    "search/__init__.py": "",
    "search/space.py": "from zoo.config import load\n",
    "bench/run.py": "from profiles import cost\n\nprint(cost)\n",  # scripts may print
}


def test_checker_passes_a_clean_tree(tmp_path: Path) -> None:
    assert check_tree(_tree(tmp_path, CLEAN)) == []


def test_checker_fails_the_project_with_one_forbidden_import_added(tmp_path: Path) -> None:
    for top in SHIPPED:
        src = ROOT / top
        if src.is_dir():
            shutil.copytree(src, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__", "*.yaml"))
        else:
            shutil.copy(src, tmp_path / top)
    before = check_tree(tmp_path)
    errors = tmp_path / "zoo" / "errors.py"
    errors.write_text(errors.read_text() + "\n\ndef _later():\n    from profiles import profile_model\n")
    line = len(errors.read_text().splitlines())
    added = [v for v in check_tree(tmp_path) if v not in before]
    assert added[0] == f"zoo/errors.py:{line}: imports profiles (zoo/ imports neither profiles/ nor search/)"
    assert len(added) == 2 and added[1].startswith("import cycle: ")
    assert f"zoo.errors (zoo/errors.py:{line})" in added[1]


def test_checker_reports_each_forbidden_import_and_print(tmp_path: Path) -> None:
    root = _tree(tmp_path, {**CLEAN,
                            "zoo/lint.py": "import yaml\n\ndef lint():\n    from profiles.cost import cost\n",
                            "profiles/cost.py": "from zoo.config import load\nfrom search import space\nimport rich\n",
                            "search/space.py": "import sys\nfrom zoo import build_model\n\n"
                                               "def f():\n    sys.stdout.write('x')\n",
                            "search/run.py": "from face.console import line\n\nprint('hi')\n"})
    assert check_tree(root) == [
        "profiles/cost.py:2: imports search.space (profiles/ does not import search/)",
        "profiles/cost.py:3: imports rich (only face imports rich)",
        "search/run.py:1: imports face.console (the library does not import the face)",
        "search/run.py:3: calls print() (only face prints)",
        "search/space.py: builds models (lines 2); search/space.py builds no models",
        "search/space.py:5: calls sys.stdout.write() (only face prints)",
        "zoo/lint.py:4: imports profiles.cost (zoo/ imports neither profiles/ nor search/)",
    ]


def test_checker_reports_a_cycle_and_a_forbidden_import(tmp_path: Path) -> None:
    root = _tree(tmp_path, {**CLEAN,
                            "zoo/__init__.py": "from .config import load\n",
                            "zoo/config.py": "def load():\n    from .rules import rule\n",
                            "zoo/rules.py": "import search\nfrom . import grids\n",
                            "zoo/grids.py": "from zoo import load\n"})
    # zoo.grids imports the package zoo, whose __init__ imports zoo.config -> zoo.rules -> zoo.grids
    assert check_tree(root) == [
        "zoo/rules.py:1: imports search (zoo/ imports neither profiles/ nor search/)",
        "import cycle: zoo (zoo/__init__.py:1) -> zoo.config (zoo/config.py:2) -> zoo.rules (zoo/rules.py:2) "
        "-> zoo.grids (zoo/grids.py:1) -> zoo"]


def test_checker_names_a_two_module_cycle(tmp_path: Path) -> None:
    root = _tree(tmp_path, {**CLEAN, "profiles/a.py": "from . import b\n", "profiles/b.py": "import profiles.a\n"})
    assert check_tree(root) == ["import cycle: profiles.a (profiles/a.py:1) -> profiles.b (profiles/b.py:1) "
                                "-> profiles.a"]
