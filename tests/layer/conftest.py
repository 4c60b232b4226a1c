"""Fixtures for the Lambda layer tests (tests/layer/run.sh builds the zips first).

* layer_zip(arch): build/layer-<arch>.zip; a missing zip FAILS the tests
  (skipped only when KTE_ALLOW_SKIP=1, as in tests/integration).
* layer_bin: {arch: path} of the binary extracted from each zip at session
  start (so a later rebuild of the zips does not change what is tested).
* pki: a throw-away test CA and a certificate for localhost signed by it,
  made with Debian's openssl in the session's tmp dir (never committed), plus
  the server.json that kinesis-local reads through KINESIS_MOCK_CERT_PATH.
* kinesis_tls: kinesis-local serving https://localhost:<tls_port> with that
  certificate; its plain-http port is used to create and read the streams.
* make_root: builds a bare chroot holding only the layer binary at
  /opt/extensions/, /etc/hosts, /etc/resolv.conf, /dev/null, /dev/urandom,
  optionally a CA bundle, and for arm64 qemu-aarch64-static; returns the
  wrapper executable named kinesis-telemetry-extension that lambda-sim runs.
"""

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import harness  # noqa: E402  (tests/integration/harness.py, used as is)

ARCHES = ("x86_64", "arm64")
ENTRY = "extensions/kinesis-telemetry-extension"
EXT_NAME = "kinesis-telemetry-extension"
AMAZON_LINUX_BUNDLE = "etc/pki/tls/certs/ca-bundle.crt"
QEMU = "/usr/bin/qemu-aarch64-static"


NOTICES_DIR = "kinesis-telemetry-extension/"  # /opt/kinesis-telemetry-extension/ in Lambda


def layer_sources():
    """The NAME=VERSION pins of scripts/layer/versions.sh, in order."""
    out = subprocess.run(["bash", "-c", '. scripts/layer/versions.sh && '
                          'printf "%s\\n" "${KTE_LAYER_SOURCES[@]}"'],
                         cwd=REPO, check=True, capture_output=True, text=True).stdout
    return [line.split("=", 1) for line in out.splitlines()]


def upstream_version(debian_version):
    """1.2.5-3.1~deb13u1 -> 1.2.5 (no epoch, no Debian revision)."""
    return debian_version.split(":", 1)[-1].rsplit("-", 1)[0]


def layer_zip_path(arch):
    return REPO / "build" / f"layer-{arch}.zip"


def _missing(msg):
    if os.environ.get("KTE_ALLOW_SKIP") == "1":
        pytest.skip(msg + "; skipped because KTE_ALLOW_SKIP=1")
    pytest.fail(msg + " -- set KTE_ALLOW_SKIP=1 to skip instead", pytrace=False)


@pytest.fixture(scope="session")
def layer_bin(tmp_path_factory):
    """Each architecture's binary, extracted from its zip once per session."""
    out = {}
    d = tmp_path_factory.mktemp("layer-bin")
    for arch in ARCHES:
        z = layer_zip_path(arch)
        if not z.is_file():
            continue
        with zipfile.ZipFile(z) as zf:
            data = zf.read(ENTRY)
        p = d / arch / EXT_NAME
        p.parent.mkdir()
        p.write_bytes(data)
        p.chmod(0o755)
        out[arch] = p
    return out


@pytest.fixture
def binary(layer_bin, arch):
    if arch not in layer_bin:
        _missing(f"{layer_zip_path(arch)} not found (build it: bash scripts/build-layer.sh)")
    return layer_bin[arch]


@pytest.fixture(scope="session")
def require_root():
    if os.geteuid() != 0:
        pytest.fail("the layer tests need root (chroot, mknod)", pytrace=False)


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """Test CA + localhost server certificate (EC P-256), made now."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-sha256",
             "-subj", "/CN=kinesis-telemetry-extension layer test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-sha256",
             "-extfile", "server.ext", cwd=d)
    # kinesis-local's certificate file: {"server": {"key": PEM, "cert": PEM}}
    # (the format of node_modules/kinesis-local/server.json).
    (d / "server.json").write_text(json.dumps(
        {"server": {"key": (d / "server.key").read_text(), "cert": (d / "server.crt").read_text()}}))
    return d


@pytest.fixture(scope="session")
def kinesis_tls(pki, tmp_path_factory):
    yield from harness.kinesis_local_fixture(
        tmp_path_factory, extra_env={"KINESIS_MOCK_CERT_PATH": str(pki / "server.json")})


@pytest.fixture
def stream(kinesis_tls, request):
    name = harness.unique_stream_name(request.node.name)
    kinesis_tls.create_stream(name)
    yield name
    with contextlib.suppress(Exception):
        kinesis_tls.delete_stream(name)


def _device(root, name, major, minor, mounts):
    """/dev/<name> in root: mknod, or a bind mount of the host's node."""
    path = root / "dev" / name
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)
    except PermissionError:
        path.touch()
        subprocess.run(["mount", "--bind", f"/dev/{name}", str(path)], check=True)
        mounts.append(path)


@pytest.fixture
def make_root(tmp_path, require_root):
    """make_root(arch, binary, ca_bundle=PEM path or None, extra={path: src})
    -> wrapper executable for lambda-sim's --extension."""
    mounts = []

    def make(arch, binary, ca_bundle=None, extra=None):
        root = tmp_path / f"root-{arch}"
        (root / "opt" / "extensions").mkdir(parents=True)
        shutil.copy(binary, root / "opt" / "extensions" / EXT_NAME)
        (root / "opt" / "extensions" / EXT_NAME).chmod(0o755)
        (root / "etc").mkdir()
        (root / "etc" / "hosts").write_text(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n127.0.0.1\tsandbox.localdomain\n")
        # A resolver that is never asked: every name used is in /etc/hosts.
        (root / "etc" / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        (root / "dev").mkdir()
        _device(root, "null", 1, 3, mounts)
        _device(root, "urandom", 1, 9, mounts)
        if ca_bundle is not None:
            dst = root / AMAZON_LINUX_BUNDLE
            dst.parent.mkdir(parents=True)
            shutil.copy(ca_bundle, dst)
        for rel, src in (extra or {}).items():
            dst = root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
        cmd = ["chroot", str(root)]
        if arch == "arm64":
            shutil.copy(QEMU, root / "qemu-aarch64-static")
            cmd.append("/qemu-aarch64-static")
        cmd.append(f"/opt/extensions/{EXT_NAME}")
        wrapper = tmp_path / f"wrap-{arch}" / EXT_NAME  # registers under this name
        wrapper.parent.mkdir()
        wrapper.write_text("#!/bin/sh\nexec " + " ".join(f"'{c}'" for c in cmd) + ' "$@"\n')
        wrapper.chmod(0o755)
        return root, wrapper

    yield make
    for m in reversed(mounts):
        subprocess.run(["umount", str(m)], check=False)
