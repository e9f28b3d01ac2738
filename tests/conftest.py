"""Shared test fixtures (where the reference configs live: ../shared beside the checkout) and the
pytest-xdist workers' thread setting."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist worker computes on one torch thread: workers that each spread over every core fight
    for them. On the 2-core VM: one process 482 s; two workers of one thread 260 s; two of two threads
    had saved only 10-13% (536 s against 598-616 s, 17 CPU-minutes)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # and the `zoo` processes a test starts


def _load_by_path(path: Path, name: str, register: bool = False):
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def load_test_module(relpath: str):
    """Import a helper file of tests/ by path (tests/ is not a package and must not shadow `search`)."""
    path = Path(__file__).parent / relpath
    return _load_by_path(path, f"zoo_tests_{path.stem}")


def load_bench_script(name: str):
    """Import bench/NAME.py by path (bench/ is scripts, not a package), to test its metrics."""
    return _load_by_path(ROOT / "bench" / f"{name}.py", f"zoo_bench_{name}", register=True)


@pytest.fixture(scope="session")
def test_module():
    """`test_module("search/test_study.py")` imports a file of tests/ to reuse its fixtures-as-data."""
    return load_test_module


@pytest.fixture(scope="session")
def bench_script():
    """`bench_script("yolobench")` imports bench/yolobench.py to test the benchmark's own metrics."""
    return load_bench_script


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside this checkout (reference configs live there)")
    return SHARED


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a fresh PostgreSQL database on loopback (skips when PostgreSQL is not installed)."""
    pg = load_test_module("pg_server.py")
    find_pg_bin, postgres_server = pg.find_pg_bin, pg.postgres_server

    if find_pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
    pytest.importorskip("psycopg2", reason="the pg extra (psycopg2-binary) is not installed")
    with postgres_server() as url:
        yield url
