"""Fixtures of the latency-table tests: build protocols cut to what a test can afford, and the tiny config
(tests/tiny.py's LUT) written as a YAML file for the CLI."""
from __future__ import annotations

import pytest

from profiles.latency import TimingProtocol

QUICK = TimingProtocol(runs=2, warmup_runs=1, warmup_s=0.0)


@pytest.fixture
def quick(monkeypatch):
    """The build's protocols cut to 1-2 runs and no process warm-up (what a test can afford)."""
    from profiles import lutbuild

    monkeypatch.setattr(lutbuild, "ROW_PROTOCOL", QUICK)
    monkeypatch.setattr(lutbuild, "MODEL_PROTOCOL", QUICK)
    monkeypatch.setattr(lutbuild, "BUILD_WARMUP_S", 0.0)


@pytest.fixture
def tiny_yaml(tmp_path, test_module):
    """tests/tiny.py's LUT config as tmp_path/tiny.yaml."""
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(test_module("tiny.py").LUT))
    return path
