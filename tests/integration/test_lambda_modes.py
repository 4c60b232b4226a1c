"""The extension in lambda-sim's lifecycle modes (issue 14): SnapStart restores,
container credentials that rotate, a missing-credentials init error, resets
after timeouts, tenant partition keys, managed instances and provisioned
concurrency with container credentials.

Ground truth, as in test_extension.py: lambda-sim's --telemetry-log holds the
exact bytes of every event it delivered to the extension (over every
environment of the run); the stream must hold each of them exactly once per
environment that received it.

Credentials are checked for real: a relay in front of lambda-sim's container
credentials endpoint records every set it hands out, and a proxy in front of
kinesis-local (which checks no signature) verifies each PutRecords' SigV4
signature and session token against the set that was valid when the request
arrived; a request signed otherwise is refused as Kinesis would
(ExpiredTokenException / InvalidSignatureException).
"""

import collections
import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import harness
from test_extension import FUNCTION, HEX32, KTE, Run, assert_clean_run, sim_options

INIT_EVENTS = {"platform.initStart", "platform.initRuntimeDone", "platform.initReport"}
# What only an init phase produces (kte_restore.c, init_phase_event).
INIT_PHASE_EVENTS = INIT_EVENTS | {"platform.extension", "platform.telemetrySubscription"}
NO_KEYS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": ""}


# --------------------------------------------------------------------------
# credentials: a recording relay and a verifying proxy


class CredentialsRelay:
    """Forwards GETs to lambda-sim's container credentials endpoint (the
    Authorization header as the extension sent it) and records each answer:
    the sets handed out, with when they were handed out."""

    def __init__(self, upstream_port):
        import http.client

        relay = self
        self.lock = threading.Lock()
        self.fetches = []  # (time, set)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                conn = http.client.HTTPConnection(harness.LOOPBACK, upstream_port, timeout=10)
                hdrs = {}
                if self.headers.get("Authorization") is not None:
                    hdrs["Authorization"] = self.headers["Authorization"]
                conn.request("GET", self.path, headers=hdrs)
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                if resp.status == 200:
                    with relay.lock:
                        relay.fetches.append((time.time(), json.loads(body)))
                self.send_response(resp.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((harness.LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def uri(self):
        return f"http://{harness.LOOPBACK}:{self.server.server_address[1]}/2021-04-23/credentials"

    def sets(self):
        """Distinct sets in the order first handed out."""
        with self.lock:
            out = {}
            for _, s in self.fetches:
                out.setdefault(s["AccessKeyId"], s)
            return list(out.values())

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def expiration(s):
    return datetime.strptime(s["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


class VerifyingProxy(harness.KinesisProxy):
    """KinesisProxy whose signature check uses the credentials the relay
    handed out instead of fixed ones: the key, secret and token of the set
    named in the request, which must not have expired when it arrived."""

    def __init__(self, upstream, relay):
        super().__init__(upstream)
        self.relay = relay
        self.checked = []  # (access key, ok)
        self.problems = []

    def _put_records(self, path, headers, body):
        h = {k.lower(): v for k, v in headers.items()}
        auth = h.get("authorization", "")
        key = auth.split("Credential=")[1].split("/")[0] if "Credential=" in auth else ""
        known = {s["AccessKeyId"]: s for s in self.relay.sets()}
        s = known.get(key)
        problem, etype = None, "InvalidSignatureException"
        if s is None:
            problem = f"access key {key!r} was never handed out"
        else:
            problem = harness.sigv4_problem("POST", path, headers, body, key, s["SecretAccessKey"], self.region)
            if not problem and h.get("x-amz-security-token") != s["Token"]:
                problem = "X-Amz-Security-Token is not the set's token"
            # Signed while the set was valid: X-Amz-Date (whole seconds) not
            # past its Expiration (whole seconds; the sandbox's set really
            # ends within the second after). The signing time, not the
            # arrival, so that a loaded machine does not fail the test.
            signed = datetime.strptime(h.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ").replace(
                tzinfo=timezone.utc).timestamp()
            if not problem and signed > expiration(s):
                problem, etype = f"set {key[:8]} expired {signed - expiration(s):.0f} s before signing", \
                    "ExpiredTokenException"
        with self.lock:
            self.checked.append((key, problem is None))
            if problem:
                self.problems.append(problem)
        if problem:
            with self.lock:
                self.calls.append({"records": 0, "bytes": 0, "status": 400, "failed": 0})
            return self._error(400, etype, problem)
        # The base class checks the Kinesis limits; its own signature check
        # (against fixed dummy keys) does not apply here.
        return super()._put_records(path, headers, body)


@pytest.fixture
def relay_proxy(kinesis_local):
    """(port for lambda-sim's API server, relay, verifying proxy)."""
    port = harness.free_port()
    relay = CredentialsRelay(port)
    proxy = VerifyingProxy(kinesis_local.endpoint, relay).start()
    try:
        yield port, relay, proxy
    finally:
        proxy.stop()
        relay.stop()


def run_modes(kinesis_local, proxy, stream, tmp_path, *, relay=None, port=None, sim_args=(),
              process_env=None, function=FUNCTION, **kwargs):
    proxy.region = function["region"]
    opts = sim_options(proxy.endpoint, stream, tmp_path, **kwargs)
    extra = list(sim_args)
    if relay is not None:
        extra += ["--port", str(port)]
        opts["env"]["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = relay.uri
    opts["extra_args"] = extra
    res = harness.run_sim(run_timeout=600, process_env=process_env, **opts)
    records = harness.Kinesis(kinesis_local.endpoint, function["region"]).read_all(stream)
    delivered = harness.read_telemetry_log(opts["telemetry_log"], KTE)
    return Run(res, records, delivered, tmp_path, function, proxy)


def by_environment(run):
    envs = collections.defaultdict(list)
    for e in run.envelopes:
        envs[e["environment"]].append(e)
    return envs


SCHEMA = json.loads((harness.REPO / "docs" / "record.schema.json").read_text())


def assert_envelope_fields(run):
    """Every envelope uses only the members docs/record.schema.json names."""
    allowed = set(SCHEMA["properties"])
    for e in run.envelopes:
        members = {k for k in e if not k.startswith("_")}
        assert members <= allowed, members - allowed
        assert set(SCHEMA["required"]) <= members
        if "restoredFrom" in e:
            assert HEX32.match(e["restoredFrom"]) and e["restoredFrom"] != e["environment"]
        assert e.get("redelivered", True) is True


def assert_each_event_once(run):
    """The stream holds every delivered event exactly once (as a multiset of
    exact bytes: an event delivered again, like a re-delivered init event,
    is delivered once more), and no (environment, seq) repeats."""
    keys = [(e["environment"], e["seq"]) for e in run.envelopes]
    assert len(set(keys)) == len(keys), [k for k, c in collections.Counter(keys).items() if c > 1][:5]
    got = collections.Counter(harness.raw_event_text(r["data"]) for r in run.records)
    want = collections.Counter(run.delivered)
    # What the extension says it received (its EMF lines, one per process)
    # matches the sim's log. (Not the summary's subscriber counters: under
    # --snapstart the sim adds each environment's running total.)
    assert sum(m["EventsReceived"] for m in run.emf) == len(run.delivered), run.describe()
    assert got == want, (f"missing {sum((want - got).values())}, extra {sum((got - want).values())}\n"
                         + run.describe())
    assert_envelope_fields(run)
    for env_id, es in by_environment(run).items():
        assert HEX32.match(env_id), env_id
        # Each environment numbers its events 1, 2, 3... without gaps.
        assert sorted(e["seq"] for e in es) == list(range(1, len(es) + 1)), env_id


def emf(run):
    lines = run.emf
    assert len(lines) >= 1, run.describe()
    return lines[-1]


# --------------------------------------------------------------------------
# SnapStart


def test_snapstart_restores_get_distinct_environments_and_each_event_once(
        kinesis_local, kinesis_proxy, stream, extension_bin, lambda_sim, tmp_path):
    """Three environments restored from one snapshot (lambda-sim resumes the
    same frozen processes each time, so an id or counter the extension does
    not regenerate would repeat): each has its own environment id naming the
    snapshot's, its own seq from 1, no (environment, seq) pair repeats, every
    event arrives once per environment that received it, the snapshot's init
    events re-delivered after each restore are marked, and the credentials
    are fetched again after each restore."""
    restores = 3
    # KTE_FLUSH=end: each restored environment then sends before it is frozen
    # for good, so each restore's fresh credentials are fetched (and counted)
    # in it; with adaptive, 200 ms gaps let the last invoke's lines wait for
    # the next restore, which fetches once for both.
    run = run_modes(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=6, lines=2, idle_ms=200,
                    kte={"FLUSH": "end"}, sim_args=["--snapstart", "--restores", str(restores)])
    assert_clean_run(run, 6)
    s = run.summary
    assert s["restores"] == restores and s["initializationType"] == "snap-start", s
    assert_each_event_once(run)
    envs = by_environment(run)
    assert len(envs) == 1 + restores, list(envs)
    snapshot = [k for k, es in envs.items() if not any("restoredFrom" in e for e in es)]
    assert len(snapshot) == 1, snapshot
    snapshot = snapshot[0]
    restored = [k for k in envs if k != snapshot]
    snap_types = [e["event"]["type"] for e in sorted(envs[snapshot], key=lambda e: e["seq"])]
    # The snapshot's own end-of-init events (emitted once every extension waits
    # in next, i.e. after the snapshot was taken) reach the extension only after
    # the first restore: before that restore's INVOKE they keep the snapshot's
    # identity, after it they belong to the restored environment and are marked
    # (docs/lifecycle.md, SnapStart). Either way each arrives exactly once.
    late = []
    for k in restored:
        es = sorted(envs[k], key=lambda e: e["seq"])
        assert {e["restoredFrom"] for e in es} == {snapshot}, k
        types = [e["event"]["type"] for e in es]
        marks = [e.get("redelivered", False) for e in es]
        n = marks.count(True)
        # The marked events come first, are init-phase events only, and end
        # with the snapshot's init events delivered again; nothing else is marked.
        assert marks == [True] * n + [False] * (len(es) - n), types
        assert set(types[:n]) <= INIT_PHASE_EVENTS, types
        assert types[n - 3:n] == ["platform.initStart", "platform.initRuntimeDone", "platform.initReport"], types
        late += types[:n - 3]
    assert not set(late) & set(snap_types), (late, snap_types)
    assert INIT_EVENTS <= set(snap_types) | set(late), (late, snap_types)
    assert len(late) == len(set(late)), late
    for k in restored:
        es = sorted(envs[k], key=lambda e: e["seq"])
        types = [e["event"]["type"] for e in es]
        assert "platform.restoreStart" in types and "platform.restoreReport" in types
        assert types.count("platform.start") == 2, types
        assert {e["_partition_key"] for e in es} == {k}
    # The snapshot's environment holds init only, nothing marked.
    assert set(snap_types) <= INIT_PHASE_EVENTS, snap_types
    assert not any(e.get("redelivered") for e in envs[snapshot])
    # Request ids of each restored environment's invokes are its own.
    rids = collections.defaultdict(set)
    for k in restored:
        for e in envs[k]:
            if e["event"]["type"] == "platform.start":
                rids[k].add(e["event"]["record"]["requestId"])
    assert sum(len(v) for v in rids.values()) == 6
    # Fresh credentials after each restore (SnapStart has container credentials only).
    assert s["credentials"]["mode"] == "container"
    assert s["credentials"]["issued"] >= 1
    assert s["credentials"]["requests"] == 1 + restores, s["credentials"]
    m = emf(run)
    assert m["EventsDropped"] == 0 and m["EventsDelivered"] == len(run.delivered), m


def test_snapstart_with_rotating_credentials(kinesis_local, stream, extension_bin, lambda_sim, tmp_path,
                                             relay_proxy):
    """SnapStart and credentials that expire every 2 s: every PutRecords is
    signed with a set valid when it arrives."""
    port, relay, proxy = relay_proxy
    run = run_modes(kinesis_local, proxy, stream, tmp_path, relay=relay, port=port, process_env=NO_KEYS,
                    invokes=6, lines=2, idle_ms=700,
                    sim_args=["--snapstart", "--restores", "2", "--credentials-ttl", "2"])
    assert_clean_run(run, 6)
    assert proxy.problems == [], proxy.problems[:5]
    assert_each_event_once(run)
    assert len(by_environment(run)) == 3
    assert len({k for k, ok in proxy.checked if ok}) >= 2, proxy.checked


# --------------------------------------------------------------------------
# credentials


def test_container_credentials_rotate_and_sign_every_request(kinesis_local, stream, extension_bin, lambda_sim,
                                                             tmp_path, relay_proxy):
    """Container credentials that live 2 s, over a run of about 8 s: the
    extension refreshes before Expiration (several sets used), signs every
    PutRecords with the set valid at that moment (the proxy refuses any
    other), and does not fetch per request."""
    port, relay, proxy = relay_proxy
    run = run_modes(kinesis_local, proxy, stream, tmp_path, relay=relay, port=port, process_env=NO_KEYS,
                    invokes=10, lines=2, idle_ms=800, kte={"FLUSH": "end"},
                    sim_args=["--credentials", "container", "--credentials-ttl", "2"])
    assert_clean_run(run, 10)
    assert proxy.problems == [], proxy.problems[:5]
    used = [k for k, ok in proxy.checked if ok]
    assert len(used) == len(proxy.checked) >= 10
    assert len(set(used)) >= 3, collections.Counter(used)
    assert len(relay.sets()) >= 3
    print(f"credential sets {len(relay.sets())}, fetches {len(relay.fetches)}, "
          f"PutRecords {len(proxy.checked)}")
    # Cached: a set is fetched a few times near its end at most (the
    # endpoint hands out the same set until it expires), never per request.
    assert len(relay.fetches) <= 4 * len(relay.sets()), (len(relay.fetches), len(relay.sets()))
    assert_each_event_once(run)
    assert emf(run)["EventsDropped"] == 0
    # The secrets never reach the extension's output.
    out = run.res.stderr + run.res.stdout
    for s in relay.sets():
        assert s["SecretAccessKey"] not in out and s["Token"] not in out


def test_expired_token_refreshes_and_retries_without_drop(kinesis_local, stream, extension_bin, lambda_sim,
                                                          tmp_path, relay_proxy):
    """Kinesis refuses the first PutRecords with ExpiredTokenException (as it
    does for credentials revoked or expired early): the extension fetches new
    credentials and sends again; nothing is dropped."""
    port, relay, proxy = relay_proxy
    proxy.fault = lambda index, n: ("call", 400, "ExpiredTokenException") if index == 0 else None
    run = run_modes(kinesis_local, proxy, stream, tmp_path, relay=relay, port=port, process_env=NO_KEYS,
                    invokes=3, lines=2, sim_args=["--credentials", "container"])
    assert_clean_run(run, 3)
    assert proxy.problems == []
    assert [c["status"] for c in proxy.calls][:2] == [400, 200], proxy.calls
    # Fetched at init, then once more after the refusal.
    assert len(relay.fetches) == 2, relay.fetches
    assert_each_event_once(run)
    m = emf(run)
    assert m["EventsDropped"] == 0 and m["DroppedPermanentError"] == 0, m


def test_missing_credentials_is_an_init_error_naming_both_sources(kinesis_local, kinesis_proxy, stream,
                                                                  extension_bin, lambda_sim, tmp_path):
    opts = sim_options(kinesis_proxy.endpoint, stream, tmp_path, invokes=1, extra_env=NO_KEYS)
    res = harness.run_sim(run_timeout=300, **opts)
    s = res.summary
    assert res.exit_code == 1 and s["exitReason"] == "initFailed", res.describe()
    err = s["init"]["errors"][0]
    assert err["source"] == f"extension:{KTE}" and err["errorType"] == "Extension.ConfigMissing", err
    assert "AWS_ACCESS_KEY_ID" in err["body"] and "AWS_CONTAINER_CREDENTIALS_FULL_URI" in err["body"], err
    assert kinesis_proxy.calls == []


def test_container_endpoint_refusing_the_token_is_an_init_error(kinesis_local, kinesis_proxy, stream,
                                                                 extension_bin, lambda_sim, tmp_path):
    opts = sim_options(kinesis_proxy.endpoint, stream, tmp_path, invokes=1,
                       extra_env={"AWS_CONTAINER_AUTHORIZATION_TOKEN": "not-the-token"})
    opts["extra_args"] = ["--credentials", "container"]
    res = harness.run_sim(run_timeout=300, **opts)
    s = res.summary
    assert res.exit_code == 1, res.describe()
    err = s["init"]["errors"][0]
    assert err["errorType"] == "Extension.InitFailed" and "403" in err["body"], err
    assert "not-the-token" not in res.stderr
    assert s["credentials"]["denied"] >= 1


# --------------------------------------------------------------------------
# resets


def test_timeout_resets_deliver_every_environments_events(kinesis_local, kinesis_proxy, stream, extension_bin,
                                                          lambda_sim, tmp_path):
    """Every invoke times out (1 s timeout, 1.5 s invoke): Lambda shuts the
    environment down (SHUTDOWN, reason timeout) and starts new processes for
    the next invoke. Each extension process delivers what it accepted within
    its shutdown, and each has its own environment id."""
    run = run_modes(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=2, lines=2,
                    event={"sleepMs": 1500}, timeout=1)
    s = run.summary
    assert [i["status"] for i in s["invokes"]] == ["timeout"] * 2, s["invokes"]
    envs_sim = s["environments"]
    assert len(envs_sim) >= 2 and [e["resetReason"] for e in envs_sim[:2]] == ["timeout", "timeout"], envs_sim
    assert_each_event_once(run)
    envs = by_environment(run)
    assert len(envs) == len(envs_sim), (list(envs), len(envs_sim))
    for k, es in envs.items():
        types = [e["event"]["type"] for e in es]
        assert "platform.initStart" in types, types
    # Both timed-out invokes' lines arrived, each in its own environment.
    lines = [e["event"]["record"] for e in run.envelopes if e["event"]["type"] == "function"]
    assert len(lines) == 4, lines
    for e in emf_all(run):
        assert e["EventsDropped"] == 0, e


def emf_all(run):
    assert len(run.emf) >= 2, run.describe()
    return run.emf


# --------------------------------------------------------------------------
# tenants


def test_tenant_partition_key(kinesis_local, kinesis_proxy, stream, extension_bin, lambda_sim, tmp_path):
    """KTE_PARTITION_KEY=tenant: events that carry a tenantId (start,
    runtimeDone, report, and log records the sandbox builds) use it; the
    others (init events, and the example runtime's own JSON lines, which
    carry none) use the environment."""
    run = run_modes(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=3, lines=2, log_format="json",
                    kte={"PARTITION_KEY": "tenant"}, sim_args=["--tenant-id", "blue-42"])
    assert_clean_run(run, 3)
    assert_each_event_once(run)
    (env_id,) = by_environment(run)
    tenant = [e for e in run.envelopes if isinstance(e["event"].get("record"), dict)
              and e["event"]["record"].get("tenantId")]
    assert {e["event"]["type"] for e in tenant} >= {"platform.start", "platform.runtimeDone",
                                                    "platform.report"}
    assert len([e for e in tenant if e["event"]["type"] == "platform.start"]) == 3
    assert {e["_partition_key"] for e in tenant} == {"blue-42"}
    others = [e for e in run.envelopes if e not in tenant]
    assert others and {e["_partition_key"] for e in others} == {env_id}


# --------------------------------------------------------------------------
# managed instances and provisioned concurrency keep working, with refresh


@pytest.mark.parametrize("mode", ["managed-instances", "provisioned-concurrency"])
def test_other_modes_with_rotating_container_credentials(kinesis_local, stream, extension_bin, lambda_sim,
                                                         tmp_path, relay_proxy, mode):
    port, relay, proxy = relay_proxy
    args = ["--credentials", "container", "--credentials-ttl", "2"]
    kw = {}
    if mode == "managed-instances":
        # Invokes run concurrently here: long ones keep the run going while
        # the credentials expire.
        kw.update(mode="managed-instances", event={"sleepMs": 3500})
    else:
        args += ["--provisioned-concurrency", "--provisioned-idle-ms", "2500"]
    run = run_modes(kinesis_local, proxy, stream, tmp_path, relay=relay, port=port, process_env=NO_KEYS,
                    invokes=6, lines=2, idle_ms=700, sim_args=args, **kw)
    assert_clean_run(run, 6)
    assert proxy.problems == [], proxy.problems[:5]
    assert len({k for k, ok in proxy.checked if ok}) >= 2, proxy.checked
    assert_each_event_once(run)
    assert len(by_environment(run)) == 1
