"""`kinesis-telemetry-extension --version` (dev build): the extension's version
and those of the libraries it runs with, asked from the libraries themselves,
without a Lambda environment. The layer binary's output is checked against the
pinned Debian source packages in tests/layer."""

import os
import re
import subprocess

import harness


def pkg_version(module):
    return subprocess.run(["pkg-config", "--modversion", module], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_version_lists_the_linked_libraries_without_a_lambda_environment():
    res = subprocess.run([str(harness.EXTENSION), "--version"], env={}, capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res
    assert res.stderr == ""
    version = re.search(r"project\([^)]*VERSION ([0-9.]+)",
                        (harness.REPO / "CMakeLists.txt").read_text()).group(1)
    glibc = os.confstr("CS_GNU_LIBC_VERSION").split()[1]
    # The host's libraries (what the dev build links), by their pkg-config files.
    assert res.stdout.splitlines() == [
        f"kinesis-telemetry-extension {version}",
        f"libcurl/{pkg_version('libcurl')} OpenSSL/{pkg_version('openssl')} "
        f"libmicrohttpd/{pkg_version('libmicrohttpd')} yajl/{pkg_version('yajl')} "
        f"PCRE2/{pkg_version('libpcre2-8')} zlib/{pkg_version('zlib')} zstd/{pkg_version('libzstd')} "
        f"libcbor/{pkg_version('libcbor')} glibc/{glibc}",
    ], res.stdout


def test_without_version_and_lambda_environment_it_still_refuses_to_run():
    res = subprocess.run([str(harness.EXTENSION)], env={}, capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 1
    assert "AWS_LAMBDA_RUNTIME_API is not set" in res.stderr
