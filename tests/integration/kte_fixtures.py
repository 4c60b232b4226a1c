"""pytest fixtures shared by the suites that run the real extension
(tests/integration, tests/faults): import them into a conftest.py."""

import pytest

import harness


@pytest.fixture(scope="session")
def extension_bin():
    return harness.require_executable(harness.EXTENSION, "the extension binary")


@pytest.fixture(scope="session")
def lambda_sim():
    return harness.require_executable(harness.LAMBDA_SIM, "lambda-sim")


@pytest.fixture(scope="session")
def kinesis_local(tmp_path_factory):
    yield from harness.kinesis_local_fixture(tmp_path_factory)
