"""The Lambda layer zips (build/layer-<arch>.zip from scripts/build-layer.sh).

For each architecture: the zip holds exactly extensions/kinesis-telemetry-
extension with mode 0755; the binary is static (no PT_INTERP, no dynamic
section), stripped and for the right machine; run from a bare chroot (only the
CA bundle at the Amazon Linux path, /etc/hosts, /etc/resolv.conf, /dev/null,
/dev/urandom) under lambda-sim -- natively for x86_64, under qemu-user for
arm64 -- it ships every telemetry event over HTTPS, with certificate
verification, to kinesis-local serving a certificate from a test CA; without
any CA bundle it fails init with Extension.TlsConfig. Rebuilding gives zips
with the same sha256.
"""

import collections
import hashlib
import os
import re
import subprocess
import zipfile

import pytest

import harness
from conftest import ARCHES, ENTRY, EXT_NAME, REPO, layer_zip_path

INVOKES = 3
LINES = 4
MACHINE = {"x86_64": ("x86-64", "X86-64"), "arm64": ("ARM aarch64", "AArch64")}
READELF = {"x86_64": "readelf", "arm64": "aarch64-linux-gnu-readelf"}


@pytest.fixture(params=ARCHES)
def arch(request):
    return request.param


@pytest.fixture(autouse=True)
def no_inherited_trust(monkeypatch):
    # lambda-sim passes its environment on; only what a test sets may count.
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "KTE_TLS_INSECURE"):
        monkeypatch.delenv(name, raising=False)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------
# the artifacts


def test_zip_holds_only_the_extension_with_mode_0755(arch, binary):
    with zipfile.ZipFile(layer_zip_path(arch)) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == [ENTRY]
        info = infos[0]
        assert info.create_system == 3, "Unix attributes"
        assert info.external_attr >> 16 == 0o100755, oct(info.external_attr >> 16)
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert zf.testzip() is None


def test_binary_is_static_stripped_and_for_the_arch(arch, binary):
    desc = subprocess.run(["file", "-b", str(binary)], check=True, capture_output=True,
                          text=True).stdout
    assert "ELF 64-bit" in desc and MACHINE[arch][0] in desc, desc
    assert "statically linked" in desc, desc
    assert ", stripped" in desc, desc
    readelf = READELF[arch]
    hdr = subprocess.run([readelf, "-h", str(binary)], check=True, capture_output=True,
                         text=True).stdout
    assert MACHINE[arch][1] in hdr and "EXEC" in hdr, hdr
    phdrs = subprocess.run([readelf, "-lW", str(binary)], check=True, capture_output=True,
                           text=True).stdout
    assert "INTERP" not in phdrs and "DYNAMIC" not in phdrs, phdrs
    sections = subprocess.run([readelf, "-SW", str(binary)], check=True, capture_output=True,
                              text=True).stdout
    assert ".symtab" not in sections and ".debug" not in sections, sections
    assert binary.stat().st_size < 1_500_000


# --------------------------------------------------------------------------
# running in a bare chroot


def run_in_root(wrapper, endpoint, stream, tmp_path, **env):
    # Default log level (warn): at info the extension's own SHUTDOWN line comes
    # back as telemetry during shutdown and may miss the last flush.
    kte = harness.kte_env(stream, endpoint)
    kte["LINES_PER_INVOKE"] = str(LINES)
    kte.update(env)
    return harness.run_sim(
        extensions=[wrapper],
        invokes=INVOKES,
        idle_ms=20,
        env=kte,
        telemetry_log=tmp_path / "telemetry.jsonl",
        verbose=1,
        workdir=tmp_path / "sim",
        run_timeout=300,
    )


def tls_endpoint(kl):
    return f"https://localhost:{kl.tls_port}"


def assert_every_event_delivered(res, kl, stream, tmp_path):
    s = res.summary or {}
    assert res.exit_code == 0, res.describe()
    assert s["init"]["errors"] == [], res.describe()
    assert [i["status"] for i in s["invokes"]] == ["success"] * INVOKES, res.describe()
    ext = s["extensions"][EXT_NAME]
    assert ext["registered"] is True and ext["initError"] is None, res.describe()
    assert ext["exitCode"] == 0 and ext["killed"] is False, res.describe()

    delivered = harness.read_telemetry_log(tmp_path / "telemetry.jsonl", EXT_NAME)
    records = kl.read_all(stream)  # through the plain-http port
    envs = [harness.parse_envelope(r) for r in records]
    assert len(delivered) > 0
    assert len(records) == len(delivered), (
        f"{len(records)} records for {len(delivered)} events delivered\n" + res.describe())
    # One record per event, byte for byte, seq 1..n in order (one shard).
    assert [e["seq"] for e in envs] == list(range(1, len(envs) + 1))
    for e, rec in zip(envs, records):
        assert harness.raw_event_text(rec["data"]) == delivered[e["seq"] - 1], e["seq"]

    # Every line the function wrote arrived, once.
    rids = [inv["requestId"] for inv in s["invokes"]]
    want = [f"kte-line inv={i} n={n} rid={rid} pad=" for i, rid in enumerate(rids, 1)
            for n in range(1, LINES + 1)]
    got = [e["event"]["record"] for e in envs
           if isinstance(e["event"], dict) and e["event"].get("type") == "function"]
    assert collections.Counter(got) == collections.Counter(want), (got, want)

    emf = harness.emf_lines(res.stderr)
    assert len(emf) == 1, res.stderr[-3000:]
    m = emf[0]
    assert m["EventsReceived"] == m["EventsDelivered"] == len(records), m
    assert m["EventsDropped"] == 0 and m["BatchesFailed"] == 0, m


def root_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def test_delivers_over_verified_https_from_a_bare_chroot(arch, binary, make_root, pki,
                                                         kinesis_tls, stream, tmp_path):
    root, wrapper = make_root(arch, binary, ca_bundle=pki / "ca.crt")
    expected = ["dev/null", "dev/urandom", "etc/hosts", "etc/pki/tls/certs/ca-bundle.crt",
                "etc/resolv.conf", "opt/extensions/kinesis-telemetry-extension"]
    if arch == "arm64":
        expected.append("qemu-aarch64-static")
    assert root_files(root) == sorted(expected)
    res = run_in_root(wrapper, tls_endpoint(kinesis_tls), stream, tmp_path)
    assert_every_event_delivered(res, kinesis_tls, stream, tmp_path)


def test_without_a_ca_bundle_init_fails_with_tls_config(arch, binary, make_root, kinesis_tls,
                                                       stream, tmp_path):
    root, wrapper = make_root(arch, binary, ca_bundle=None)
    res = run_in_root(wrapper, tls_endpoint(kinesis_tls), stream, tmp_path)
    s = res.summary
    assert s is not None, res.describe()
    errors = s["init"]["errors"]
    assert [(e["source"], e["errorType"]) for e in errors][:1] == [
        (f"extension:{EXT_NAME}", "Extension.TlsConfig")], res.describe()
    init_error = s["extensions"][EXT_NAME]["initError"]
    assert init_error["errorType"] == "Extension.TlsConfig", res.describe()
    for path in ("/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt",
                 "/etc/ssl/cert.pem"):
        assert path in init_error["body"], init_error
    assert s["invokes"] == [], res.describe()
    assert kinesis_tls.read_all(stream) == []


@pytest.mark.parametrize("arch", ["x86_64"])
def test_ssl_cert_dir_works_with_mbedtls_curl(arch, binary, make_root, pki, kinesis_tls, stream,
                                              tmp_path):
    """CURLOPT_CAPATH (SSL_CERT_DIR) in the mbedTLS build: a directory of PEM
    files, no bundle at any default path."""
    root, wrapper = make_root(arch, binary, ca_bundle=None,
                              extra={"certs/test-ca.pem": pki / "ca.crt"})
    res = run_in_root(wrapper, tls_endpoint(kinesis_tls), stream, tmp_path, SSL_CERT_DIR="/certs")
    assert_every_event_delivered(res, kinesis_tls, stream, tmp_path)


@pytest.mark.parametrize("arch", ["x86_64"])
def test_untrusted_certificate_is_refused(arch, binary, make_root, pki, kinesis_tls, stream, tmp_path):
    """Verification is really on: a bundle without the test CA delivers nothing."""
    other = tmp_path / "other-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(tmp_path / "o.key"),
                    "-out", str(other), "-days", "1", "-subj", "/CN=unrelated CA"],
                   check=True, capture_output=True)
    root, wrapper = make_root(arch, binary, ca_bundle=other)
    res = run_in_root(wrapper, tls_endpoint(kinesis_tls), stream, tmp_path,
                      KTE_FLUSH_TIMEOUT_MS="300")
    assert kinesis_tls.read_all(stream) == [], res.describe()
    # curl's mbedTLS message ("Cert verify failed: BADCERT_NOT_TRUSTED") or
    # its error code, whichever the extension logs.
    assert re.search(r"BADCERT_NOT_TRUSTED|curl error 60\b|SSL peer certificate", res.stderr), \
        res.describe()
    emf = harness.emf_lines(res.stderr)
    assert len(emf) == 1 and emf[0]["EventsDelivered"] == 0 and emf[0]["BatchesFailed"] > 0, \
        res.stderr[-3000:]


# --------------------------------------------------------------------------
# reproducibility (last: it rebuilds the zips in place)


def test_rebuild_gives_the_same_sha256(layer_bin):
    zips = {a: layer_zip_path(a) for a in ARCHES}
    missing = [str(z) for z in zips.values() if not z.is_file()]
    if missing:
        pytest.fail(f"missing {missing} (bash scripts/build-layer.sh)", pytrace=False)
    before = {a: sha256(z) for a, z in zips.items()}
    # Same inputs, extension built again from nothing (cached dependencies).
    subprocess.run(["rm", "-rf", str(REPO / "build" / "layer-build")], check=True)
    for z in zips.values():
        os.unlink(z)
    out = subprocess.run(["bash", str(REPO / "scripts" / "build-layer.sh")], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    after = {a: sha256(z) for a, z in zips.items()}
    assert after == before
