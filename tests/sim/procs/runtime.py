#!/usr/bin/env python3
"""Test runtime (custom runtime speaking the Runtime API 2018-06-01).

Behaviour comes from RT_* environment variables (given with lambda-sim --env):
  RT_OUT        file: one JSON line per invoke (headers, event, times) + "env" line at start
  RT_LINES      lines printed per invoke on stdout (default 3), "fn <requestId> <i>"
  RT_ERR_LINES  lines printed per invoke on stderr, "err <requestId> <i>"
  RT_INIT_LINES lines printed during init, "init <i>"
  RT_JSON_LINE  if set, also print this JSON object line per invoke
  RT_SLEEP_MS   sleep before responding
  RT_AFTER_MS   after the response print "after <requestId>" and wait this long before next
  RT_CREDS      fetch container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI) at init and per invoke
  RT_RESTORE_HOOK  SnapStart: wait in /restore/next at the end of init (after-restore hooks)
  RT_ERROR_TYPE Lambda-Runtime-Function-Error-Type of RT_MODE=error (default MyError)
  RT_MODE       ok | error | timeout | crash | init-error | init-crash | ignore-term | partial-line
                | timeout-once | crash-once | init-crash-once | init-error-once | init-hang-once
                ("-once": only the first runtime process of the run misbehaves, the
                processes of a new environment after a reset behave)
  RT_INIT_ERROR_TYPE  error type of init-error (default InitBoom)
  RT_WORKERS    threads calling next concurrently (managed instances)
"""
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
OUT = os.environ.get("RT_OUT")
MODE = os.environ.get("RT_MODE", "ok")
if MODE.endswith("-once"):
    # the first runtime process of the run creates the marker and misbehaves
    try:
        os.close(os.open((OUT or "/tmp/rt") + ".once", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        MODE = MODE[:-len("-once")]
    except FileExistsError:
        MODE = "ok"
LINES = int(os.environ.get("RT_LINES", "3"))
ERR_LINES = int(os.environ.get("RT_ERR_LINES", "0"))
SLEEP = int(os.environ.get("RT_SLEEP_MS", "0")) / 1000.0
JSON_LINE = os.environ.get("RT_JSON_LINE")
ERROR_TYPE = os.environ.get("RT_ERROR_TYPE", "MyError")
AFTER_MS = int(os.environ.get("RT_AFTER_MS", "0"))
lock = threading.Lock()


def record(obj):
    if not OUT:
        return
    with lock, open(OUT, "a") as f:
        f.write(json.dumps(obj) + "\n")


def call(method, path, body=None, headers=None):
    req = urllib.request.Request(API + path, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.status, dict(r.headers), r.read()


def fetch_creds(when, token="env"):
    uri = os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not uri:
        record({"k": "creds", "when": when, "status": None})
        return
    headers = {}
    if token == "env":
        headers["Authorization"] = os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN", "")
    elif token:
        headers["Authorization"] = token
    try:
        with urllib.request.urlopen(urllib.request.Request(uri, headers=headers), timeout=10) as r:
            st, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        st, body = e.code, e.read()
    record({"k": "creds", "when": when, "t": time.time(), "status": st, "body": json.loads(body or b"null")})


def worker():
    # deliver SIGTERM to the main thread (a signal taken by a thread blocked in recv
    # would leave the main thread asleep)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    while True:
        status, headers, body = call("GET", "/invocation/next")
        rid = headers["Lambda-Runtime-Aws-Request-Id"]
        record({"k": "invoke", "t": time.time(), "headers": headers, "event": json.loads(body)})
        if os.environ.get("RT_CREDS"):
            fetch_creds(rid)
        with lock:
            for i in range(LINES):
                sys.stdout.write("fn %s %d\n" % (rid, i))
            if JSON_LINE:
                sys.stdout.write(JSON_LINE + "\n")
            sys.stdout.flush()
            for i in range(ERR_LINES):
                sys.stderr.write("err %s %d\n" % (rid, i))
            sys.stderr.flush()
        if SLEEP:
            time.sleep(SLEEP)
        if MODE == "timeout":
            time.sleep(3600)
        if MODE == "crash":
            os._exit(3)
        if MODE == "partial-line":
            # a line without its newline at the end of the invoke
            sys.stdout.write("tail-of-%s" % rid)
            sys.stdout.flush()
        if MODE == "error":
            st, _, rb = call("POST", "/invocation/%s/error" % rid,
                             json.dumps({"errorMessage": "boom", "errorType": ERROR_TYPE}).encode(),
                             {"Lambda-Runtime-Function-Error-Type": ERROR_TYPE})
        else:
            st, _, rb = call("POST", "/invocation/%s/response" % rid, body)
        record({"k": "posted", "t": time.time(), "requestId": rid, "status": st, "body": rb.decode()})
        if AFTER_MS:
            # logged between the response and the next call: still part of this invoke
            print("after %s" % rid, flush=True)
            time.sleep(AFTER_MS / 1000.0)


def main():
    try:
        resolved = socket.gethostbyname("sandbox.localdomain")
    except OSError:
        resolved = None
    record({"k": "env", "env": dict(os.environ), "cwd": os.getcwd(), "resolved": resolved, "pid": os.getpid()})
    if MODE == "ignore-term":
        signal.signal(signal.SIGTERM, lambda *a: record({"k": "sigterm", "t": time.time()}))
    else:
        def on_term(*a):
            record({"k": "sigterm", "t": time.time()})
            os._exit(0)
        signal.signal(signal.SIGTERM, on_term)
    for i in range(int(os.environ.get("RT_INIT_LINES", "0"))):
        print("init %d" % i, flush=True)
    if MODE == "init-error":
        etype = os.environ.get("RT_INIT_ERROR_TYPE", "InitBoom")
        # the sandbox's SIGTERM (init failed) waits until the probes below are done
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        st, _, rb = call("POST", "/init/error", json.dumps({"errorMessage": "bad init", "errorType": etype}).encode(),
                         {"Lambda-Runtime-Function-Error-Type": etype})
        record({"k": "init-error", "status": st, "body": rb.decode()})
        # no Runtime API call succeeds after init/error
        for method, path in (("GET", "/invocation/next"), ("POST", "/init/error")):
            try:
                st, _, rb = call(method, path, b"{}" if method == "POST" else None,
                                 {"Lambda-Runtime-Function-Error-Type": etype})
            except urllib.error.HTTPError as e:
                st, rb = e.code, e.read()
            record({"k": "after-init-error", "path": path, "status": st, "body": rb.decode()})
        sys.exit(1)
    if MODE == "init-hang":
        time.sleep(3600)
    if MODE == "init-crash":
        sys.exit(7)
    if os.environ.get("RT_CREDS"):
        fetch_creds("init")
        fetch_creds("no-token", token=None)
        fetch_creds("bad-token", token="nope")
    if os.environ.get("RT_RESTORE_HOOK"):
        st, _, _ = call("GET", "/restore/next")
        record({"k": "restored", "t": time.time(), "status": st})
    n = int(os.environ.get("RT_WORKERS", "1"))
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
