"""Conformance: subscription requests get their expected status; delivered events have
the documented field names and types (our fixtures, and ../shared's when present)."""
import json
import re
import uuid
from pathlib import Path

import pytest

from conftest import ALL_TYPES, FAST, OWN_FIXTURES, SHARED_FIXTURES, Sandbox

RIE_DIR = SHARED_FIXTURES / "extensions" / "aws-lambda-runtime-interface-emulator"
TELEMETRY_DIR = SHARED_FIXTURES / "telemetry"
OWN_SUBSCRIBE = sorted(p.name for p in (OWN_FIXTURES / "subscribe").iterdir())
SHARED_SUBSCRIBE = sorted(p.name for p in RIE_DIR.glob("telemetry-subscribe.request.*")) if RIE_DIR.is_dir() else []
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def expected_status(name):
    return int(re.search(r"\.expect-(\d{3})", name).group(1))


def run_probes(tmp_path_factory, directory, names):
    sb = Sandbox(tmp_path_factory.mktemp("conformance"))
    probes = [{"id": n, "method": "PUT", "path": "/2022-07-01/telemetry", "file": str(directory / n)} for n in names]
    ext = sb.ext("prober", probes=probes)
    run = sb.run([ext], args=["--invokes", "1", "--idle-ms", "0"], expect=0)
    return {r["id"]: r for r in run.ext("prober") if r["k"] == "probe"}


@pytest.fixture(scope="module")
def own_results(tmp_path_factory):
    return run_probes(tmp_path_factory, OWN_FIXTURES / "subscribe", OWN_SUBSCRIBE)


SHARED_MISSING = ("%s not present: the team's shared fixtures beside the repository are optional "
                  "(a fresh clone has none); the own copies in tests/sim/fixtures run the same checks" % SHARED_FIXTURES)


@pytest.fixture(scope="module")
def shared_results(tmp_path_factory):
    return run_probes(tmp_path_factory, RIE_DIR, SHARED_SUBSCRIBE)


def check_answer(result, name):
    status = expected_status(name)
    assert result["status"] == status, (name, result)
    assert result["headers"].get("Content-Type") == "application/json"
    if status == 200:
        assert result["body"] == '"OK"'
    else:
        body = json.loads(result["body"])
        assert set(body) == {"errorType", "errorMessage"}
        assert body["errorType"] == "ValidationError"
        assert isinstance(body["errorMessage"], str) and body["errorMessage"]


@pytest.mark.parametrize("name", OWN_SUBSCRIBE)
def test_own_subscription_fixture(own_results, name):
    check_answer(own_results[name], name)


# Without ../shared one explicit skip with its reason, not pytest's "got empty parameter set".
@pytest.mark.parametrize("name", SHARED_SUBSCRIBE or [pytest.param(None, marks=pytest.mark.skip(SHARED_MISSING))])
def test_shared_rie_subscription_fixture(shared_results, name):
    check_answer(shared_results[name], name)


def test_fixture_lists_are_not_empty():
    assert len(OWN_SUBSCRIBE) >= 20
    assert any(n.endswith(".expect-200.json") for n in OWN_SUBSCRIBE)


def test_error_bodies_for_identifiers(sandbox):
    unknown = str(uuid.uuid4())
    body = {"schemaVersion": "2022-12-13", "types": ["platform"],
            "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243"}}
    probes = [
        {"id": "unknown-telemetry", "path": "/2022-07-01/telemetry", "body": body, "identifier": unknown},
        {"id": "missing-telemetry", "path": "/2022-07-01/telemetry", "body": body, "identifier": None},
        {"id": "unknown-next", "method": "GET", "path": "/2020-01-01/extension/event/next", "identifier": unknown},
        {"id": "unknown-init-error", "method": "POST", "path": "/2020-01-01/extension/init/error",
         "identifier": unknown, "headers": {"Lambda-Extension-Function-Error-Type": "X.Y"}, "body": "{}"},
    ]
    run = sandbox.run([sandbox.ext("prober", probes=probes)], args=["--idle-ms", "0"], expect=0)
    res = {r["id"]: r for r in run.ext("prober") if r["k"] == "probe"}
    template_file = RIE_DIR / "telemetry-subscribe.error.Extension.UnknownExtensionIdentifier.TEMPLATE.txt"
    template = template_file.read_text() if template_file.exists() else \
        '{"errorMessage":"Unknown extension %s","errorType":"Extension.UnknownExtensionIdentifier"}'
    for key in ("unknown-telemetry", "unknown-next", "unknown-init-error"):
        assert res[key]["status"] == 403
        assert res[key]["body"] == template.replace("%s", unknown) + "\n"
    assert res["missing-telemetry"]["status"] == 403
    assert json.loads(res["missing-telemetry"]["body"])["errorType"] == "Extension.MissingExtensionIdentifier"


# ---------------------------------------------------------------------------
# Event shapes

OPTIONAL = {  # documented fields the sandbox does not produce for that event
    "platform.initRuntimeDone": {"spans"},
    "platform.initReport": {"spans"},
    "platform.report": {"errorType"},
    "platform.runtimeDone": {"errorType"},
}
SUB_OBJECTS = {  # shared.* fixture -> (event type, path in the record)
    "shared.InitReportMetrics.json": ("platform.initReport", ["metrics"]),
    "shared.ReportMetrics.json": ("platform.report", ["metrics"]),
    "shared.RuntimeDoneMetrics.json": ("platform.runtimeDone", ["metrics"]),
    "shared.Span.responseLatency.json": ("platform.runtimeDone", ["spans", 0]),
    "shared.TraceContext.json": ("platform.start", ["tracing"]),
}


def shape_errors(actual, example, path="", optional=()):
    """Differences in field names/JSON types between an actual value and a documented example."""
    errs = []
    if isinstance(example, dict):
        if not isinstance(actual, dict):
            return ["%s: object expected, got %r" % (path, actual)]
        for k, v in example.items():
            if k not in actual:
                if k not in optional:
                    errs.append("%s.%s missing" % (path, k))
                continue
            errs += shape_errors(actual[k], v, path + "." + k)
    elif isinstance(example, list):
        if not isinstance(actual, list):
            return ["%s: array expected" % path]
        if example:
            if not actual:
                errs.append("%s: empty array" % path)
            for i, a in enumerate(actual):
                errs += shape_errors(a, example[0], "%s[%d]" % (path, i))
    elif isinstance(example, bool):
        if not isinstance(actual, bool):
            errs.append("%s: boolean expected" % path)
    elif isinstance(example, int):
        if not isinstance(actual, int) or isinstance(actual, bool):
            errs.append("%s: integer expected, got %r" % (path, actual))
    elif isinstance(example, float):
        if not isinstance(actual, (int, float)) or isinstance(actual, bool):
            errs.append("%s: number expected, got %r" % (path, actual))
    elif isinstance(example, str):
        if not isinstance(actual, str):
            errs.append("%s: string expected, got %r" % (path, actual))
    return errs


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    """Events delivered in a text-format run and in a JSON-format run."""
    out = {}
    for fmt in ("text", "json"):
        sb = Sandbox(tmp_path_factory.mktemp("shapes-" + fmt))
        ext = sb.ext("shapes", subscribe={"types": ALL_TYPES, "buffering": FAST}, shutdown_wait_report_ms=1500)
        crashy = sb.ext("short-lived", subscribe=None, events=["INVOKE"])
        run = sb.run([ext, crashy], args=["--invokes", "2", "--idle-ms", "0", "--log-format", fmt],
                     env={"RT_ERR_LINES": "1", "RT_JSON_LINE": '{"hello": "world"}'}, expect=0)
        out[fmt] = run.events("shapes")
        assert out[fmt]
    # a subscriber that falls behind gets platform.logsDropped
    sb = Sandbox(tmp_path_factory.mktemp("shapes-drop"))
    ext = sb.ext("shapes", subscribe={"types": ["platform", "function"], "buffering": FAST}, slow_ms=100,
                 shutdown_wait_report_ms=1500, shutdown_linger_ms=300)
    run = sb.run([ext], args=["--idle-ms", "0", "--subscriber-queue-max", "10"], env={"RT_LINES": "200"}, expect=0)
    out["drop"] = run.events("shapes")
    return out


def candidates(delivered, example):
    etype = example["type"]
    if etype == "platform.logsDropped":
        return [ev for ev in delivered["drop"] if ev["type"] == etype]
    if etype in ("function", "extension"):
        fmt = "text" if isinstance(example["record"], str) else "json"
    else:
        fmt = "text"
    return [ev for ev in delivered[fmt] if ev["type"] == etype]


def assert_matches_some(delivered, example, label):
    cands = candidates(delivered, example)
    assert cands, "%s: no %s event delivered" % (label, example["type"])
    optional = OPTIONAL.get(example["type"], set())
    errors = []
    for ev in cands:
        e = shape_errors(ev, {"time": "", "type": ""}, "event") + \
            shape_errors(ev["record"], example["record"], "record", optional)
        if not e:
            return
        errors.append(e)
    raise AssertionError("%s: no delivered %s has the documented shape: %s" % (label, example["type"], errors[0]))


def test_every_event_type_is_delivered(delivered):
    types = {ev["type"] for ev in delivered["text"]}
    for t in ("platform.initStart", "platform.initRuntimeDone", "platform.initReport", "platform.start",
              "platform.runtimeDone", "platform.report", "platform.extension", "platform.telemetrySubscription",
              "function", "extension"):
        assert t in types, t
    for fmt in ("text", "json"):
        for ev in delivered[fmt]:
            assert set(ev) == {"time", "type", "record"}
            assert ISO_MS.match(ev["time"]), ev["time"]


def test_runtime_done_and_report_values(delivered):
    evs = delivered["text"]
    done = [e["record"] for e in evs if e["type"] == "platform.runtimeDone"]
    reports = [e["record"] for e in evs if e["type"] == "platform.report"]
    assert len(done) == 2 and len(reports) == 2
    for d, r in zip(done, reports):
        assert d["requestId"] == r["requestId"] and d["status"] == "success"
        assert [s["name"] for s in d["spans"]] == ["responseLatency", "responseDuration", "runtimeOverhead"]
        assert d["metrics"]["producedBytes"] == 2  # the runtime echoes the event "{}"
        assert r["metrics"]["memorySizeMB"] == 128
        assert r["metrics"]["billedDurationMs"] >= r["metrics"]["durationMs"]
        assert r["metrics"]["durationMs"] >= d["metrics"]["durationMs"]
        assert d["tracing"] == r["tracing"]
    ext_events = [e["record"] for e in evs if e["type"] == "platform.extension"]
    assert {e["name"]: e["events"] for e in ext_events} == {"shapes": ["INVOKE", "SHUTDOWN"],
                                                           "short-lived": ["INVOKE"]}


# platform.report.error.json is checked in test_error_report_shape (it needs a failing runtime)
@pytest.mark.parametrize("name", sorted(p.name for p in (OWN_FIXTURES / "telemetry").glob("*.json")
                                        if p.name != "platform.report.error.json"))
def test_own_telemetry_example(delivered, name):
    example = json.loads((OWN_FIXTURES / "telemetry" / name).read_text())
    assert_matches_some(delivered, example, name)


def shared_examples():
    if not TELEMETRY_DIR.is_dir():
        return []
    out = []
    for p in sorted(TELEMETRY_DIR.rglob("*.json")):
        n = p.name
        if any(s in n for s in ("INVALID", "DOC-BUG", "restore", "managed-instance")):
            continue
        if n.startswith("shared.") and n not in SUB_OBJECTS:
            continue  # a sub-object no event type maps to: nothing to compare it with
        out.append(str(p.relative_to(TELEMETRY_DIR)))
    return out


@pytest.mark.parametrize("rel", shared_examples() or [pytest.param(None, marks=pytest.mark.skip(SHARED_MISSING))])
def test_shared_telemetry_example(delivered, rel):
    data = json.loads((TELEMETRY_DIR / rel).read_text())
    name = Path(rel).name
    if name in SUB_OBJECTS:
        etype, path = SUB_OBJECTS[name]
        cands = [ev["record"] for ev in delivered["text"] if ev["type"] == etype]
        assert cands
        for rec in cands:
            for key in path:
                rec = rec[key]
            optional = {"initDurationMs"}  # only on the first report, as documented
            assert shape_errors(rec, data, rel, optional) == []
        return
    examples = data if isinstance(data, list) else [data]
    for ex in examples:
        assert_matches_some(delivered, ex, rel)


def test_error_report_shape(sandbox):
    ext = sandbox.ext("shapes", subscribe={"types": ["platform"], "buffering": FAST}, shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--idle-ms", "0"], env={"RT_MODE": "error", "RT_ERROR_TYPE": "Function.MyError"},
                      expect=0)
    example = json.loads((OWN_FIXTURES / "telemetry" / "platform.report.error.json").read_text())
    reports = [ev for ev in run.events("shapes") if ev["type"] == "platform.report"]
    assert len(reports) == 1
    errs = shape_errors(reports[0]["record"], example["record"], "record")
    assert errs == []
    assert reports[0]["record"]["errorType"] == "Function.MyError"
