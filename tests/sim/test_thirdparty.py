"""An extension and a runtime the sandbox has never seen (tests/sim/thirdparty), through N invokes."""
import json
from collections import Counter

from conftest import HERE, read_jsonl

THIRD = HERE / "thirdparty"


def test_never_seen_extension_and_bootstrap(sandbox):
    out = sandbox.dir / "acme.jsonl"
    invokes, lines, idle = 5, 7, 250
    probe = sandbox.run([], bootstrap=THIRD / "bootstrap", args=["--idle-ms", 0], expect=0)
    env = {"ACME_TELEMETRY_OUT": out}
    if not probe.summary["hostsMap"].startswith("unshare"):
        env["ACME_LISTENER_HOST"] = "127.0.0.1"  # the extension still subscribes with sandbox.localdomain
    run = sandbox.run([THIRD / "acme-telemetry"], bootstrap=THIRD / "bootstrap",
                      args=["--invokes", invokes, "--idle-ms", idle, "--log-format", "json",
                            "--event", json.dumps({"lines": lines})],
                      env=env, expect=0)
    s = run.summary
    assert s["exitReason"] == "completed" and s["shutdown"]["killed"] == []
    rids = [i["requestId"] for i in s["invokes"]]
    assert len(rids) == invokes and all(i["status"] == "success" for i in s["invokes"])
    recs = read_jsonl(out)
    assert [r for r in recs if r["kind"] == "subscribed"][0]["status"] == 200
    batches = [r for r in recs if r["kind"] == "telemetry"]
    events = [e for b in batches for e in b["batch"]]
    # the extension may exit before answering its last POST (then that batch does not count as delivered)
    assert len(events) - s["subscribers"]["acme-telemetry"]["delivered"] in (0, len(batches[-1]["batch"]))

    # every function line arrives exactly once (JSON objects: the runtime's own, or wrapped plain lines)
    fn = [e["record"] for e in events if e["type"] == "function"]
    assert all(isinstance(r, dict) for r in fn)
    messages = Counter(r["message"] for r in fn)
    expected = Counter(["acme-fn %s %d" % (rid, i) for rid in rids for i in range(lines)] +
                       ["acme-stderr %s" % rid for rid in rids] + ["cold start of function.handler"])
    assert messages == expected
    for r in fn:
        if r["message"].startswith("acme-fn"):
            assert r == {"timestamp": "2030-01-01T00:00:00.000Z", "level": "INFO", "logger": "acme",
                         "requestId": r["message"].split()[1], "message": r["message"]}
        elif r["message"].startswith("acme-stderr"):
            assert set(r) == {"timestamp", "level", "requestId", "message"}
            assert r["requestId"] == r["message"].split()[1]
        else:
            assert "requestId" not in r  # logged during init
    ext_msgs = [e["record"]["message"] for e in events if e["type"] == "extension"]
    expected_ext = ["[acme] registered as acme-telemetry"] + ["[acme] invoke %s" % r for r in rids]
    # the line logged after SHUTDOWN arrives only if the extension is still there to receive it
    assert ext_msgs in (expected_ext, expected_ext + ["[acme] shutting down: spindown"])

    # one start, runtimeDone and report per request id
    for t in ("platform.start", "platform.runtimeDone", "platform.report"):
        assert sorted(e["record"]["requestId"] for e in events if e["type"] == t) == sorted(rids), t

    # the report of the last invoke arrives during the shutdown phase; earlier ones after the next INVOKE
    arrival = {}
    for b in batches:
        for e in b["batch"]:
            if e["type"] == "platform.report":
                arrival[e["record"]["requestId"]] = b["at"]
    invoke_at = {r["event"]["requestId"]: r["at"] for r in recs
                 if r["kind"] == "event" and r["event"]["eventType"] == "INVOKE"}
    shutdown = [r for r in recs if r["kind"] == "event" and r["event"]["eventType"] == "SHUTDOWN"]
    assert len(shutdown) == 1 and shutdown[0]["event"]["shutdownReason"] == "spindown"
    assert arrival[rids[-1]] * 1000 >= s["shutdown"]["startMs"]
    assert [r for r in recs if r["kind"] == "exit"][0]["had_last_report"] is True
    for a, b in zip(rids, rids[1:]):
        assert arrival[a] >= invoke_at[b] - 0.05

    # frozen between invokes: the heartbeat shows gaps of at least idle-ms
    beats = [r["at"] for r in recs if r["kind"] == "heartbeat"]
    gaps = sorted(b - a for a, b in zip(beats, beats[1:]))
    assert len([g for g in gaps if g >= idle / 1000.0]) >= invokes  # 4 between invokes + 1 before shutdown
