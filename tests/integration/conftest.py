"""Fixtures for the integration suite (see harness.py for the helpers).

* kinesis_local (session): one kinesis-local for the whole run, its log under
  the pytest tmp dir (path printed on failure).
* kinesis_proxy: harness.KinesisProxy in front of it (real PutRecords limits,
  SigV4 check, injected failures), reset for each test.
* stream: a fresh 1-shard stream per test, deleted afterwards.
* extension_bin / lambda_sim: paths of build/kinesis-telemetry-extension and
  tools/lambda-sim/lambda-sim. A missing one FAILS the test; it is skipped
  only when KTE_ALLOW_SKIP=1 is set (CI must never go green by skipping).
"""

import pytest

import harness
from kte_fixtures import extension_bin, kinesis_local, lambda_sim, stream  # noqa: E402,F401


@pytest.fixture(scope="session")
def kinesis_proxy_session(kinesis_local):
    with harness.KinesisProxy(kinesis_local.endpoint) as proxy:
        yield proxy


@pytest.fixture
def kinesis_proxy(kinesis_proxy_session):
    """The strict PutRecords proxy in front of kinesis-local, reset for this test."""
    kinesis_proxy_session.reset(region=harness.REGION)
    yield kinesis_proxy_session
    kinesis_proxy_session.reset(region=harness.REGION)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and "kinesis_local" in getattr(item, "fixturenames", ()):
        kl = item.funcargs.get("kinesis_local") if hasattr(item, "funcargs") else None
        if kl is not None:
            rep.sections.append(("kinesis-local log", f"{kl.log_path}\n{kl.log_tail(20)}"))
