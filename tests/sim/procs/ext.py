#!/usr/bin/env python3
"""Configurable test extension. Its name is its file name; its configuration is
the JSON file next to it (<path>.json). Every observation is appended to
cfg["out"] as one JSON line {"k": kind, "t": epoch seconds, ...}.

Config keys (all optional):
  events               registered events (default ["INVOKE", "SHUTDOWN"])
  register_name        name sent in Lambda-Extension-Name (default: own file name)
  accept_account       send Lambda-Extension-Accept-Feature: accountId
  subscribe            {"types": [...], "buffering": {...}, "schemaVersion": "..."} or null
  host                 listener host in the destination URI (default sandbox.localdomain
                       when it resolves, else 127.0.0.1)
  uri                  full destination URI override (e.g. a listener in the test process)
  listen_delay_ms      start the listener this long after subscribing
  slow_ms              sleep in the listener per POST
  fail_first_posts     answer the first N POSTs with 500
  work_ms              sleep after each INVOKE before calling next
  wait_runtime_done_ms after an INVOKE wait (bounded) for its platform.runtimeDone before next
  shutdown             "exit" (default) | "hang" | "exit-error"
  shutdown_wait_report_ms  on SHUTDOWN wait (bounded) for the report of the last invoke
  shutdown_linger_ms   then keep receiving telemetry this long before exiting
  tick_ms              record a "tick" line this often (freeze detection)
  init_error           post /extension/init/error with this error type, then exit
  probes               list of API probes run before the first next (see run_probe)
  probes_after_init    probes run after the first INVOKE
"""
import http.server
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

NAME = os.path.basename(__file__)
CFG = {}
if os.path.exists(__file__ + ".json"):
    with open(__file__ + ".json") as f:
        CFG = json.load(f)
API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"]
OUT = CFG.get("out")
lock = threading.Lock()
cond = threading.Condition()
seen = {"runtimeDone": set(), "report": set()}
EXT_ID = None


def rec(kind, **kw):
    kw["k"] = kind
    kw["t"] = time.time()
    line = json.dumps(kw) + "\n"
    if OUT:
        with lock, open(OUT, "a") as f:
            f.write(line)


def http_call(method, path, body=None, headers=None, timeout=600):
    req = urllib.request.Request(API + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


class Listener(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    posts = 0

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        Listener.posts += 1
        if Listener.posts <= CFG.get("fail_first_posts", 0):
            rec("post-failed", n=Listener.posts)
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        events = json.loads(body)
        rec("batch", events=events, ctype=self.headers.get("Content-Type"))
        if CFG.get("slow_ms"):
            time.sleep(CFG["slow_ms"] / 1000.0)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.flush()
        # only now (answered) may the main thread act on what arrived, e.g. exit
        with cond:
            for ev in events:
                r = ev.get("record")
                if ev.get("type") == "platform.runtimeDone":
                    seen["runtimeDone"].add(r.get("requestId"))
                elif ev.get("type") == "platform.report":
                    seen["report"].add(r.get("requestId"))
            cond.notify_all()


def subscribe(sub, port):
    host = CFG.get("host")
    if host is None:
        try:
            socket.gethostbyname("sandbox.localdomain")
            host = "sandbox.localdomain"
        except OSError:
            host = "127.0.0.1"
    uri = CFG.get("uri") or "http://%s:%d/telemetry" % (host, port)
    body = {"schemaVersion": sub.get("schemaVersion", "2022-12-13"), "types": sub["types"],
            "destination": {"protocol": "HTTP", "URI": uri}}
    if sub.get("buffering"):
        body["buffering"] = sub["buffering"]
    st, h, b = http_call("PUT", "/2022-07-01/telemetry", json.dumps(body).encode(),
                         {"Lambda-Extension-Identifier": EXT_ID, "Content-Type": "application/json"})
    rec("subscribe", status=st, body=b, uri=uri)


def run_probe(p):
    headers = {"Content-Type": "application/json"}
    ident = p.get("identifier", "self")
    if ident == "self":
        headers["Lambda-Extension-Identifier"] = EXT_ID
    elif ident:
        headers["Lambda-Extension-Identifier"] = ident
    for k, v in p.get("headers", {}).items():
        headers[k] = v
    body = None
    if "file" in p:
        with open(p["file"], "rb") as f:
            body = f.read()
    elif "body" in p:
        body = p["body"].encode() if isinstance(p["body"], str) else json.dumps(p["body"]).encode()
    st, h, b = http_call(p.get("method", "PUT"), p["path"], body, headers, timeout=5)
    rec("probe", id=p.get("id"), status=st, body=b, headers=h)


def ticker(ms):
    while True:
        rec("tick")
        time.sleep(ms / 1000.0)


def main():
    global EXT_ID
    rec("start", pid=os.getpid(), env=dict(os.environ))
    headers = {"Lambda-Extension-Name": CFG.get("register_name", NAME)}
    if CFG.get("accept_account"):
        headers["Lambda-Extension-Accept-Feature"] = "accountId"
    st, h, b = http_call("POST", "/2020-01-01/extension/register",
                         json.dumps({"events": CFG.get("events", ["INVOKE", "SHUTDOWN"])}).encode(), headers)
    EXT_ID = h.get("Lambda-Extension-Identifier")
    rec("register", status=st, body=b, id=EXT_ID)
    if st != 200:
        sys.exit(2)
    if CFG.get("init_error"):
        time.sleep(CFG.get("init_error_delay_ms", 0) / 1000.0)
        st, _, b = http_call("POST", "/2020-01-01/extension/init/error",
                             json.dumps({"errorMessage": "cannot start", "errorType": CFG["init_error"]}).encode(),
                             {"Lambda-Extension-Identifier": EXT_ID,
                              "Lambda-Extension-Function-Error-Type": CFG["init_error"]})
        rec("init-error", status=st, body=b)
        st, _, b = http_call("GET", "/2020-01-01/extension/event/next", None,
                             {"Lambda-Extension-Identifier": EXT_ID}, timeout=5)
        rec("after-error", op="event/next", status=st, body=b)
        sys.exit(1)
    if CFG.get("tick_ms"):
        threading.Thread(target=ticker, args=(CFG["tick_ms"],), daemon=True).start()
    if CFG.get("listen_delay_ms"):
        # nothing listens on the port until later: connections are refused meanwhile
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        server = None
    else:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listener)
        server.daemon_threads = True
        port = server.server_address[1]
    for p in CFG.get("probes", []):
        run_probe(p)
    if CFG.get("subscribe"):
        subscribe(CFG["subscribe"], port)
    if CFG.get("listen_delay_ms"):
        def late():
            time.sleep(CFG["listen_delay_ms"] / 1000.0)
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Listener)
            srv.daemon_threads = True
            rec("listening")
            srv.serve_forever()
        threading.Thread(target=late, daemon=True).start()
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    last_rid = None
    after_init_done = False
    print("%s ready" % NAME, flush=True)
    while True:
        st, h, b = http_call("GET", "/2020-01-01/extension/event/next", None,
                             {"Lambda-Extension-Identifier": EXT_ID})
        if st != 200:
            rec("next-error", status=st, body=b)
            sys.exit(3)
        ev = json.loads(b)
        rec("next", event=ev, eventId=h.get("Lambda-Extension-Event-Identifier"))
        if ev["eventType"] == "INVOKE":
            last_rid = ev["requestId"]
            print("%s got %s" % (NAME, last_rid), flush=True)
            if not after_init_done:
                after_init_done = True
                for p in CFG.get("probes_after_init", []):
                    run_probe(p)
            if CFG.get("wait_runtime_done_ms"):
                with cond:
                    ok = cond.wait_for(lambda: last_rid in seen["runtimeDone"], CFG["wait_runtime_done_ms"] / 1000.0)
                rec("runtimeDone-wait", requestId=last_rid, ok=ok)
            if CFG.get("work_ms"):
                time.sleep(CFG["work_ms"] / 1000.0)
            continue
        # SHUTDOWN
        mode = CFG.get("shutdown", "exit")
        if mode == "hang":
            while True:
                time.sleep(60)
        if CFG.get("shutdown_wait_report_ms") and last_rid:
            with cond:
                ok = cond.wait_for(lambda: last_rid in seen["report"], CFG["shutdown_wait_report_ms"] / 1000.0)
            rec("report-wait", requestId=last_rid, ok=ok)
        if CFG.get("shutdown_linger_ms"):
            time.sleep(CFG["shutdown_linger_ms"] / 1000.0)
        if mode == "exit-error":
            st, _, b = http_call("POST", "/2020-01-01/extension/exit/error",
                                 json.dumps({"errorMessage": "flush failed", "errorType": "Extension.FlushFailed"}).encode(),
                                 {"Lambda-Extension-Identifier": EXT_ID,
                                  "Lambda-Extension-Function-Error-Type": "Extension.FlushFailed"})
            rec("exit-error", status=st, body=b)
            st, _, b = http_call("GET", "/2020-01-01/extension/event/next", None,
                                 {"Lambda-Extension-Identifier": EXT_ID}, timeout=5)
            rec("after-error", op="event/next", status=st, body=b)
        rec("exit")
        os._exit(0)


if __name__ == "__main__":
    main()
