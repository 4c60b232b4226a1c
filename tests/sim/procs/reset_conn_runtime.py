#!/usr/bin/env python3
"""Runtime that dies messily in init: a half-sent request on a connection it
resets (SO_LINGER 0), then init/error, then exit. The sandbox must report the
init error without a Python traceback of the reset connection."""
import os, socket, struct, time, urllib.request
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
host, port = api.split(":")
s = socket.create_connection((host, int(port)))
s.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n")
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
time.sleep(0.2)
req = urllib.request.Request("http://%s/2018-06-01/runtime/init/error" % api, data=b"{}", method="POST",
                             headers={"Lambda-Runtime-Function-Error-Type": "Runtime.Boom"})
urllib.request.urlopen(req).read()
os._exit(1)
