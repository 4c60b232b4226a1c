"""Processing rules (issue 15, docs/rules.md) end to end: the real binary
under lambda-sim, shipping to kinesis-local. Every event delivered to the
extension is either in the stream (redacted where a rule says so, every
other byte as sent) or counted as filtered or sampled out:

    EventsReceived = EventsDelivered + EventsDropped + EventsFiltered + EventsSampledOut

The expected outcome of each event is computed here from lambda-sim's
telemetry log with an independent model of the rules (the sampling hash
included), so a wrong decision on any single event fails the test.
"""

import json

import pytest
from test_extension import KTE, assert_clean_run, run_extension

import harness

MASK64 = (1 << 64) - 1


def sample_keep(rid: str, rate: float) -> bool:
    """The extension's per-invoke sampling decision (src/kte_rules.c)."""
    h = 1469598103934665603
    for b in rid.encode():
        h = ((h ^ b) * 1099511628211) & MASK64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK64
    h ^= h >> 33
    return (h >> 11) / 9007199254740992.0 < rate


def test_rules_accounting_and_redaction(kinesis_local, kinesis_proxy, stream, extension_bin, lambda_sim, tmp_path):
    rate = 0.5
    kte = {
        "EXCLUDE_TYPES": "platform.start,extension",
        "SAMPLE_RATE": str(rate),
        "EXCLUDE_REGEX": r"\bn=3 ",
        # An unnamed pattern (marker [REDACTED:custom]) and a named one.
        "REDACT_REGEX": json.dumps([r"inv=\d+ n=2", {"name": "request-id", "pattern": r"rid=\S+"}]),
    }
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=24, lines=3, log_format="json",
                        kte=kte)
    assert_clean_run(run, 24)

    # The model: what happens to each delivered event, by seq (1-based).
    expected = {}  # seq -> exact event bytes in the stream
    filtered = sampled = redacted = named = 0
    kept_invokes = set()
    for seq, raw in enumerate(run.delivered, 1):
        ev = json.loads(raw)
        t = ev["type"]
        if t in ("platform.start", "extension"):
            filtered += 1
            continue
        if t == "function":
            rid = ev["record"]["requestId"]
            msg = ev["record"]["message"]
            if not sample_keep(rid, rate):
                sampled += 1
                continue
            kept_invokes.add(rid)
            if " n=3 " in msg:
                filtered += 1
                continue
            if " n=2 " in msg:
                inv = msg.split("inv=")[1].split(" ")[0]
                before = f"inv={inv} n=2".encode()
                assert raw.count(before) == 1
                raw = raw.replace(before, b"[REDACTED:custom]")
                redacted += 1
            # Every kept line names its request id in the message ("rid=..."):
            # the named rule's marker replaces it, the record's requestId stays.
            before = f"rid={rid}".encode()
            assert raw.count(before) == 1 and raw.count(rid.encode()) == 2, raw
            raw = raw.replace(before, b"[REDACTED:request-id]")
            named += 1
        expected[seq] = raw

    rids = run.request_ids()
    # Both decisions occur (else the test could not fail on either).
    assert 0 < len(kept_invokes) < len(rids), (len(kept_invokes), len(rids))
    assert sampled == 3 * (len(rids) - len(kept_invokes))

    got = {}
    for e, rec in zip(run.envelopes, run.records):
        assert e["seq"] not in got, e["seq"]
        got[e["seq"]] = harness.raw_event_text(rec["data"])
        json.loads(got[e["seq"]])  # still valid JSON
    assert sorted(got) == sorted(expected)
    for seq in expected:
        assert got[seq] == expected[seq], (seq, got[seq][:300], expected[seq][:300])

    assert len(run.emf) == 1, run.res.stderr[-3000:]
    m = run.emf[0]
    assert m["EventsReceived"] == len(run.delivered)
    assert m["EventsDelivered"] == len(expected) == len(run.records)
    assert m["EventsDropped"] == 0
    assert m["EventsFiltered"] == filtered
    assert m["EventsSampledOut"] == sampled
    # RedactedCustom: every custom rule's redactions, named or not.
    assert redacted == len(kept_invokes) and named == 2 * len(kept_invokes)
    assert m["RedactedCustom"] == redacted + named
    assert m["RedactedEmail"] == 0 and m["RulesMatchLimit"] == 0
    assert m["EventsReceived"] == m["EventsDelivered"] + m["EventsDropped"] + m["EventsFiltered"] + \
        m["EventsSampledOut"]


def test_min_level_json_format(kinesis_local, kinesis_proxy, stream, extension_bin, lambda_sim, tmp_path):
    """The example function logs at INFO: KTE_MIN_LEVEL=WARN filters every line."""
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=5, lines=4, log_format="json",
                        kte={"MIN_LEVEL": "WARN"})
    assert_clean_run(run, 5)
    types = [json.loads(r)["type"] for r in run.delivered]
    assert types.count("function") == 20
    assert all(e["event"]["type"] != "function" for e in run.envelopes)
    m = run.emf[0]
    # Extension log lines at INFO or below are filtered too.
    filtered = sum(1 for r in run.delivered if json.loads(r)["type"] in ("function", "extension")
                   and json.loads(r)["record"].get("level", "INFO").upper() in ("TRACE", "DEBUG", "INFO"))
    assert m["EventsFiltered"] == filtered >= 20
    assert m["EventsReceived"] == m["EventsDelivered"] + m["EventsFiltered"] == len(run.delivered)


@pytest.mark.parametrize("kte,problem", [
    ({"REDACT": "email,phone"}, "unknown rule 'phone'"),
    # a named custom rule may not take a built-in's name
    ({"REDACT_REGEX": json.dumps(["x", {"name": "jwt", "pattern": "tok-[0-9]+"}])},
     "KTE_REDACT_REGEX: pattern 2 name 'jwt' is a built-in rule's name"),
], ids=["unknown-builtin", "named-custom-clash"])
def test_bad_rule_is_an_init_error(kinesis_local, kinesis_proxy, stream, extension_bin, lambda_sim, tmp_path,
                                   kte, problem):
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=1, read=False, kte=kte)
    errors = run.summary["init"]["errors"]
    text = json.dumps(errors) + run.res.stderr
    assert "Extension.RulesInvalid" in text, run.describe()
    assert problem in text, run.describe()
    assert KTE in text
