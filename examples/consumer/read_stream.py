#!/usr/bin/python3
"""Read the records kinesis-telemetry-extension wrote to a Kinesis stream.

Reads every shard from TRIM_HORIZON until caught up, drops duplicates (the
extension delivers at least once: a resent PutRecords can store a record
twice; (environment, seq) identifies an event), orders each environment's
events by seq, and prints one line per event:

    <environment> <seq> <event time> <event type> <record, shortened>

or, with --json, the record's data exactly as stored (one JSON object per
line). kte.dropped records (events the extension had to drop) are printed
like any event and summed up on stderr, with every gap in the seq numbers
that no kte.dropped record accounts for.

Reads every KTE_RECORD_FORMAT: `event` (one envelope per record), `kpl`
(KPL aggregated records, decoded here by hand: magic, protobuf, MD5 checked)
and `ndjson` (envelopes, one per line), gzip- or zstd-compressed records
where the Python has the module (gzip always; zstd: python3-zstandard).

Needs only botocore (Debian: python3-botocore). Credentials come from the
usual chain; with --endpoint-url and no credentials, dummy ones are used
(kinesis-local does not check them).

    examples/consumer/read_stream.py --stream my-stream --region eu-west-1
    examples/consumer/read_stream.py --stream s --endpoint-url http://127.0.0.1:4567 --json
"""

import argparse
import gzip
import hashlib
import json
import sys

import botocore.session


def client(region, endpoint_url):
    session = botocore.session.Session()
    kwargs = {"region_name": region, "endpoint_url": endpoint_url}
    if endpoint_url and session.get_credentials() is None:
        kwargs.update(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="dummy")
    return session.create_client("kinesis", **kwargs)


def shards(kinesis, stream):
    out, kwargs = [], {"StreamName": stream}
    while True:
        resp = kinesis.list_shards(**kwargs)
        out += [s["ShardId"] for s in resp["Shards"]]
        if not resp.get("NextToken"):
            return sorted(out)
        kwargs = {"NextToken": resp["NextToken"]}


def read_shard(kinesis, stream, shard):
    """Every record of a shard from TRIM_HORIZON until caught up (or closed)."""
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    while it:
        resp = kinesis.get_records(ShardIterator=it, Limit=10000)
        yield from resp["Records"]
        it = resp.get("NextShardIterator")
        if not resp["Records"] and resp.get("MillisBehindLatest", 0) == 0:
            return


KPL_MAGIC = b"\xf3\x89\x9a\xc2"


def _varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _fields(buf):
    """(field number, wire type, value) of a protobuf message; values of
    length-delimited fields are bytes, varints ints."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
        yield field, wire, value


def kpl_user_records(data):
    """The user records' data of a KPL aggregated record (AggregatedRecord:
    1 partition_key_table, 2 explicit_hash_key_table, 3 records; Record:
    3 data), or None when data is not one."""
    if len(data) < 20 or not data.startswith(KPL_MAGIC):
        return None
    message, digest = data[4:-16], data[-16:]
    if hashlib.md5(message).digest() != digest:
        raise ValueError("KPL aggregate with a wrong MD5 checksum")
    return [next(v for f, _, v in _fields(rec) if f == 3)
            for field, _, rec in _fields(message) if field == 3]


def decompress(data):
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard  # python3-zstandard
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def envelopes(data):
    """The envelopes (bytes) in one record's data, whatever the format."""
    users = kpl_user_records(data)
    if users is not None:
        return users
    data = decompress(data)
    return [line for line in data.split(b"\n") if line]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stream", required=True, help="stream name")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--endpoint-url", help="endpoint override, e.g. http://127.0.0.1:4567")
    ap.add_argument("--json", action="store_true", help="print each event's envelope as stored (JSON lines)")
    a = ap.parse_args(argv)

    kinesis = client(a.region, a.endpoint_url)
    seen = {}          # (environment, seq) -> (envelope, data bytes)
    records = duplicates = unreadable = 0
    for shard in shards(kinesis, a.stream):
        for rec in read_shard(kinesis, a.stream, shard):
            records += 1
            try:
                datas = envelopes(bytes(rec["Data"]))
            except (ValueError, IndexError, StopIteration, OSError, EOFError):
                unreadable += 1
                continue
            for data in datas:
                try:
                    env = json.loads(data)
                    key = (env["environment"], env["seq"])
                except (ValueError, KeyError, TypeError):
                    unreadable += 1
                    continue
                if key in seen:
                    duplicates += 1
                    continue
                seen[key] = (env, data)

    out = sys.stdout
    dropped_total = 0
    for environment in sorted({k[0] for k in seen}):
        seqs = sorted(s for e, s in seen if e == environment)
        explained = set()
        for seq in seqs:
            env, data = seen[(environment, seq)]
            event = env.get("event")
            etype = event.get("type") if isinstance(event, dict) else "(truncated)"
            if etype == "kte.dropped":
                r = event["record"]
                dropped_total += r["droppedEvents"]
                explained.update(range(r["firstSeq"], r["lastSeq"] + 1))
                print(f"kte.dropped: environment {environment} seq {seq}: {r['droppedEvents']} events "
                      f"(seq {r['firstSeq']}..{r['lastSeq']}) {json.dumps(r.get('reasons', {}))}",
                      file=sys.stderr)
            if a.json:
                out.write(data.decode("utf-8") + "\n")
            else:
                record = event.get("record") if isinstance(event, dict) else event
                text = record if isinstance(record, str) else json.dumps(record, separators=(",", ":"))
                time_ = event.get("time", "-") if isinstance(event, dict) else "-"
                out.write(f"{environment} {seq} {time_} {etype} {text[:200]}\n")
        present = set(seqs)
        gaps = [s for s in range(1, seqs[-1] + 1) if s not in present and s not in explained]
        if gaps:
            print(f"environment {environment}: {len(gaps)} seq numbers missing and not reported "
                  f"by kte.dropped (first: {gaps[:10]})", file=sys.stderr)
    print(f"{records} records read, {duplicates} duplicates dropped, {unreadable} unreadable, "
          f"{len(seen)} events in {len({k[0] for k in seen})} environments, "
          f"{dropped_total} events reported dropped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
