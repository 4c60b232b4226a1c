"""Fixtures for the fault-injection suite.

* kinesis_local (session): one kinesis-local for the run (harness.KinesisLocal).
* stream: a fresh 1-shard stream per test, deleted afterwards.
* proxy: a FaultProxy (tests/faults/fault_proxy.py) in front of kinesis-local,
  fresh per test (fresh counters, seed 1234), its log in the test's tmp dir.
* extension_bin / lambda_sim: paths; a missing one FAILS the test unless
  KTE_ALLOW_SKIP=1 (CI must never go green by skipping).

tests/integration/harness.py is imported (not modified): its directory is put
on sys.path here.
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))

from fault_proxy import FaultProxy  # noqa: E402
from kte_fixtures import extension_bin, kinesis_local, lambda_sim, stream  # noqa: E402,F401


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Our own base temp dir unless --basetemp is given: other pytest sessions
    on the machine rotate /tmp/pytest-of-<user> (keeping the last 3) and would
    delete a long run's workdirs under it. Keeps our last 3 runs."""
    if config.option.basetemp:
        return
    root = Path(tempfile.gettempdir()) / f"kte-faults-{os.getuid()}"
    root.mkdir(exist_ok=True)
    runs = sorted(root.glob("run-*"), key=lambda p: p.stat().st_mtime)
    for old in runs[:-2]:
        shutil.rmtree(old, ignore_errors=True)
    config.option.basetemp = str(root / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")


@pytest.fixture
def proxy(kinesis_local, tmp_path):
    log = open(tmp_path / "fault-proxy.log", "a")
    p = FaultProxy(kinesis_local.endpoint, seed=1234, log=log).start()
    yield p
    p.stop()
    log.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed or not hasattr(item, "funcargs"):
        return
    kl = item.funcargs.get("kinesis_local")
    if kl is not None:
        rep.sections.append(("kinesis-local log", f"{kl.log_path}\n{kl.log_tail(8)}"))
    p = item.funcargs.get("proxy")
    if p is not None:
        rep.sections.append(("fault-proxy stats", repr(p.stats())))
