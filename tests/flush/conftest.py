"""Fixtures for the flush-strategy end-to-end tests: one kinesis-local for
the session and flush_lib's RecordingSink (a pass-through proxy that stamps
every stored record) in front of it."""
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "tests" / "bench"))

import flush_lib  # noqa: E402
from kte_fixtures import extension_bin, kinesis_local  # noqa: E402,F401


@pytest.fixture(scope="session")
def recording_sink(kinesis_local):
    sink = flush_lib.RecordingSink(kinesis_local.endpoint).start()
    yield sink
    sink.stop()
