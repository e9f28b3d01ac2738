"""Shared test fixtures: where the reference configs live (../shared beside the checkout)."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside this checkout (reference configs live there)")
    return SHARED


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a fresh PostgreSQL database on loopback (skips when PostgreSQL is not installed)."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from pg_server import find_pg_bin, postgres_server

    if find_pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
    pytest.importorskip("psycopg2", reason="the pg extra (psycopg2-binary) is not installed")
    with postgres_server() as url:
        yield url
