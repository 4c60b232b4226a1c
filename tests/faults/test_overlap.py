"""Overlapping flushes (issue 10, item 3): SIGTERM arrives while the
end-of-invoke flush is retrying during a Kinesis outage. The two flushes must
compose: the end-of-invoke flush ending at its own (shorter) deadline must
not end the SIGTERM flush's retries, so everything is delivered once Kinesis
is back within the SIGTERM flush's 1.5 s.

Real binary under lambda-sim; the outage comes from the fault proxy.
Timing: SIGTERM is sent once the extension has logged its first retry (the
end-of-invoke flush is running); the outage ends 0.6 s later, after that
flush's KTE_FLUSH_TIMEOUT_MS=400 and well before the SIGTERM flush's end.
"""

import os
import signal
import time

import faultlib
import harness
from faultlib import KTE


def test_sigterm_during_retrying_end_of_invoke_flush(kinesis_local, tmp_path):
    invokes, lines = 2, 10
    with faultlib.proxied_stream(kinesis_local, tmp_path, "sigterm-overlap") as (proxy, stream):
        run = faultlib.start(proxy, stream, tmp_path, invokes=invokes, lines=lines,
                             kte={"FLUSH_TIMEOUT_MS": 400}, event={"sleepMs": 300})
        faultlib.wait_for_output(run, faultlib.invoke_done_marker(1))
        proxy.outage()
        faultlib.wait_for_output(run, "retrying with backoff")
        (pid,) = harness.find_processes_by_exe(harness.EXTENSION, ancestor=run.pid)
        os.kill(pid, signal.SIGTERM)
        time.sleep(0.6)
        proxy.end_outage()
        harness.wait_for(lambda: harness.process_exited(pid), 10, interval=0.005,
                         what="exit after SIGTERM")
        o = faultlib.finish(run, kinesis_local, stream)
    ext = o.summary["extensions"][KTE]
    assert ext["exitCode"] == 0 and ext["killed"] is False, ext
    faultlib.assert_emf_complete(o)
    # Invoke 2's lines (and everything else) reached the stream: none was
    # counted as dropped at the deadline.
    assert o.m("EventsDropped") == 0, o.emf
    assert o.m("EventsDelivered") == o.m("EventsReceived"), o.emf
    assert len(o.events()) == o.m("EventsDelivered")
    got = o.function_lines()
    assert all(l in got for l in o.expected_lines(lines)[:invokes * lines]), o.describe()
