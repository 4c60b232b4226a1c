"""The fault proxy itself: each fault does what it claims, against kinesis-local.

These run first and fast, so that a failure of test_delivery.py can be
trusted to be the extension's, not the proxy's.
"""

import base64
import http.client
import json
import socket
import time

import cbor2
import pytest

import harness
from fault_proxy import FaultProxy

AUTH = {
    # kinesis-local wants the header but does not verify the signature.
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/kinesis/aws4_request, "
                     "SignedHeaders=host;x-amz-date, Signature=00",
    "X-Amz-Date": "20260101T000000Z",
    "Content-Type": "application/x-amz-json-1.1",
}


def put_body(stream, datas):
    return json.dumps({"StreamName": stream, "Records": [
        {"Data": base64.b64encode(d).decode(), "PartitionKey": "pk"} for d in datas]}).encode()


def put(conn, stream, datas):
    conn.request("POST", "/", body=put_body(stream, datas),
                 headers={**AUTH, "X-Amz-Target": "Kinesis_20131202.PutRecords"})
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"null"), r


def stored(kinesis_local, stream):
    return [r["data"] for r in kinesis_local.read_all(stream)]


def connect(proxy, timeout=10):
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)


def test_passes_other_calls_through_and_keeps_the_connection(proxy, kinesis_local, stream):
    k = harness.Kinesis(proxy.url)
    assert k.stream_status(stream) == "ACTIVE"
    resp = k.put_records(stream, [(b"a", "k"), (b"b", "k")])
    assert resp["FailedRecordCount"] == 0
    assert stored(kinesis_local, stream) == [b"a", b"b"]
    s = proxy.stats()
    assert s["put_records_requests"] == 1 and s["records_forwarded"] == 2
    assert s["other_requests"] >= 1
    assert s["connections_accepted"] == 1  # botocore kept its connection alive


def test_per_record_failures_are_merged_in_order(proxy, kinesis_local, stream):
    proxy.set_record_failure_rate("ProvisionedThroughputExceededException", 0.3)
    proxy.set_record_failure_rate("InternalFailure", 0.2)
    datas = [b"rec-%03d" % i for i in range(200)]
    c = connect(proxy)
    status, doc, _ = put(c, stream, datas)
    assert status == 200
    recs = doc["Records"]
    assert len(recs) == 200
    failed = [i for i, r in enumerate(recs) if r.get("ErrorCode")]
    assert doc["FailedRecordCount"] == len(failed)
    codes = {recs[i]["ErrorCode"] for i in failed}
    assert codes == {"ProvisionedThroughputExceededException", "InternalFailure"}
    assert all(recs[i]["ErrorMessage"] for i in failed)
    ok = [i for i in range(200) if i not in set(failed)]
    assert all(recs[i]["SequenceNumber"] and recs[i]["ShardId"] for i in ok)
    # 200 draws at 50 %: far from 0 and from 200 (seeded, so this is fixed).
    assert 60 < len(failed) < 140
    # Exactly the records answered OK were stored, in order.
    assert stored(kinesis_local, stream) == [datas[i] for i in ok]
    s = proxy.stats()
    assert s["records_forwarded"] == len(ok)
    assert s["records_failed_total"] == len(failed)
    assert s["records_failed"]["InternalFailure"] == sum(recs[i]["ErrorCode"] == "InternalFailure" for i in failed)


def test_all_records_failing_forwards_nothing(proxy, kinesis_local, stream):
    proxy.force("InternalFailure")
    status, doc, _ = put(connect(proxy), stream, [b"x", b"y", b"z"])
    assert status == 200 and doc["FailedRecordCount"] == 3
    assert [r["ErrorCode"] for r in doc["Records"]] == ["InternalFailure"] * 3
    assert stored(kinesis_local, stream) == []


def test_same_seed_same_failures(kinesis_local, stream):
    patterns = []
    for _ in range(2):
        with FaultProxy(kinesis_local.endpoint, seed=99) as p:
            p.set_record_failure_rate("ProvisionedThroughputExceededException", 0.4)
            p.set_fault_rate("http500", 0.3)
            c = connect(p)
            run = []
            for i in range(12):
                status, doc, _ = put(c, stream, [b"s%d-%d" % (i, j) for j in range(10)])
                run.append((status, [bool(r.get("ErrorCode")) for r in doc["Records"]] if status == 200 else None))
            patterns.append(run)
    assert patterns[0] == patterns[1]
    assert {s for s, _ in patterns[0]} == {200, 500}


@pytest.mark.parametrize("kind,status,type_", [
    ("http500", 500, "InternalFailure"),
    ("http503", 503, "ServiceUnavailable"),
    ("throttle", 400, "ProvisionedThroughputExceededException"),
    ("permanent", 400, "ResourceNotFoundException"),
])
def test_request_errors_are_not_forwarded_and_keep_alive(proxy, kinesis_local, stream, kind, status, type_):
    proxy.inject_next(kind, 2)
    c = connect(proxy)
    for _ in range(2):
        st, doc, r = put(c, stream, [b"lost"])
        assert st == status and doc["__type"] == type_
        assert r.getheader("Content-Length") is not None
    st, doc, _ = put(c, stream, [b"kept"])  # same connection, no fault left
    assert st == 200 and doc["FailedRecordCount"] == 0
    assert stored(kinesis_local, stream) == [b"kept"]
    s = proxy.stats()
    assert s["injected"][kind] == 2 and s["connections_accepted"] == 1
    assert s["records_in_failed_requests"] == 2


def test_inject_next_scripts_a_sequence(proxy, kinesis_local, stream):
    proxy.set_fault_rate("http500", 1.0)
    proxy.inject_next("permanent", 1)
    proxy.inject_next("ok", 2)
    proxy.inject_next("http503", 1)
    c = connect(proxy)
    statuses = [put(c, stream, [b"%d" % i])[0] for i in range(5)]
    assert statuses == [400, 200, 200, 503, 500]  # then the rate applies again
    assert stored(kinesis_local, stream) == [b"1", b"2"]


def test_slow_answer_is_stored_then_late(proxy, kinesis_local, stream):
    proxy.set_slow_seconds(1.0)
    proxy.inject_next("slow")
    c = connect(proxy, timeout=0.3)
    with pytest.raises(socket.timeout):
        put(c, stream, [b"late"])
    c.close()
    assert stored(kinesis_local, stream) == [b"late"]  # stored although unanswered in time
    c = connect(proxy, timeout=5)
    t = time.monotonic()
    proxy.inject_next("slow")
    st, doc, _ = put(c, stream, [b"late2"])
    assert st == 200 and doc["FailedRecordCount"] == 0
    assert time.monotonic() - t >= 1.0  # held back (a lower bound: cannot flake)
    assert proxy.stats()["records_forwarded_unanswered"] == 2


@pytest.mark.parametrize("kind,stored_after", [("reset", []), ("reset_after_forward", [b"r"])])
def test_reset(proxy, kinesis_local, stream, kind, stored_after):
    proxy.inject_next(kind)
    c = connect(proxy)
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        put(c, stream, [b"r"])
    assert stored(kinesis_local, stream) == stored_after
    assert proxy.stats()["injected"][kind] == 1


def test_outage_refuses_then_relistens_on_the_same_port(proxy, kinesis_local, stream):
    c = connect(proxy)
    assert put(c, stream, [b"before"])[0] == 200
    port = proxy.port
    proxy.outage()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    # The kept-alive connection was reset.
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError)):
        put(c, stream, [b"during"])
    proxy.end_outage()
    assert proxy.port == port
    assert put(connect(proxy), stream, [b"after"])[0] == 200
    assert stored(kinesis_local, stream) == [b"before", b"after"]
    assert proxy.stats()["outages"] == 1


def test_timed_outage_ends_by_itself(proxy):
    proxy.outage(2.0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    harness.wait_for(lambda: harness.port_open(proxy.port), 10, what="proxy listening again")
    assert not proxy.in_outage()


@pytest.mark.parametrize("mode", ["fin", "rst"])
def test_idle_close(proxy, kinesis_local, stream, mode):
    proxy.set_idle_close(0.2, mode)
    c = connect(proxy)
    assert put(c, stream, [b"x"])[0] == 200
    sock = c.sock
    sock.settimeout(5)
    if mode == "fin":
        assert sock.recv(10) == b""  # orderly close
    else:
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
    assert proxy.stats()["idle_closes"][mode] == 1


# ---- the CBOR protocol (KTE_PROTOCOL=cbor) ----------------------------------

CBOR_HEADERS = {**AUTH, "Content-Type": "application/x-amz-cbor-1.1",
                "X-Amz-Target": "Kinesis_20131202.PutRecords"}


def put_cbor(conn, stream, datas):
    body = cbor2.dumps({"Records": [{"Data": d, "PartitionKey": "pk"} for d in datas], "StreamName": stream})
    conn.request("POST", "/", body=body, headers=CBOR_HEADERS)
    r = conn.getresponse()
    return r.status, r.read(), r


def test_cbor_per_record_failures_are_merged_in_cbor(proxy, kinesis_local, stream):
    proxy.set_record_failure_rate("ProvisionedThroughputExceededException", 0.5)
    datas = [b"\x00\xffrec-%03d" % i for i in range(100)]  # bytes base64 would have hidden
    status, raw, r = put_cbor(connect(proxy), stream, datas)
    assert status == 200 and r.getheader("Content-Type") == "application/x-amz-cbor-1.1"
    doc = cbor2.loads(raw)
    recs = doc["Records"]
    assert len(recs) == 100
    failed = [i for i, x in enumerate(recs) if x.get("ErrorCode")]
    assert doc["FailedRecordCount"] == len(failed) and 20 < len(failed) < 80
    ok = [i for i in range(100) if i not in set(failed)]
    assert stored(kinesis_local, stream) == [datas[i] for i in ok]
    s = proxy.stats()
    assert s["protocols"] == {"json": 0, "cbor": 1}
    assert s["records_forwarded"] == len(ok) and s["records_failed_total"] == len(failed)


def test_cbor_request_faults_answer_in_cbor(proxy, kinesis_local, stream):
    proxy.inject_next("throttle", 1)
    proxy.inject_next("permanent", 1)
    c = connect(proxy)
    for want in ("ProvisionedThroughputExceededException", "ResourceNotFoundException"):
        status, raw, r = put_cbor(c, stream, [b"x"])
        assert status == 400 and r.getheader("Content-Type") == "application/x-amz-cbor-1.1"
        assert cbor2.loads(raw)["__type"] == want
    assert stored(kinesis_local, stream) == []


def test_refuse_cbor_answers_like_a_service_without_it(proxy, kinesis_local, stream):
    proxy.set_refuse_cbor(True)
    c = connect(proxy)
    status, raw, _ = put_cbor(c, stream, [b"x"])
    assert status == 404 and raw == b"<UnknownOperationException/>\n"
    # JSON passes as before.
    status, doc, _ = put(c, stream, [b"y"])
    assert status == 200 and doc["FailedRecordCount"] == 0
    assert stored(kinesis_local, stream) == [b"y"]
    s = proxy.stats()
    assert s["cbor_refused"] == 1 and s["protocols"] == {"json": 1, "cbor": 0}
