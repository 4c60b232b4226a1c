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


@pytest.fixture
def stream(kinesis_local, request):
    name = harness.unique_stream_name(request.node.name)
    kinesis_local.create_stream(name)
    yield name
    try:
        kinesis_local.delete_stream(name)
    except Exception:
        pass  # kinesis-local is gone or the stream already deleted
