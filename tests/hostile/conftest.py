"""Fixtures for the hostile-client suite (tests/hostile).

Reuses the integration fixtures (tests/integration/kte_fixtures.py):
kinesis_local (session), stream (fresh per test), extension_bin, lambda_sim.
A missing binary or sim FAILS the tests unless KTE_ALLOW_SKIP=1.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))

from kte_fixtures import extension_bin, kinesis_local, lambda_sim, stream  # noqa: E402,F401


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "kte(**vars): KTE_* overrides (names without the prefix) for the extension under attack"
    )
