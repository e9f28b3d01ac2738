"""Fixtures of the model tests: the shared helpers of tests/helpers.py."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def helpers(test_module):
    """tests/helpers.py as a module: params, randomise_bn, rel_diff."""
    return test_module("helpers.py")
