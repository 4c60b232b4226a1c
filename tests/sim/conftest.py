"""Helpers for the lambda-sim tests: run the sandbox with real test processes."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SIM = REPO / "tools" / "lambda-sim" / "lambda-sim"
PROCS = HERE / "procs"
RUNTIME = PROCS / "runtime.py"
EXT = PROCS / "ext.py"
OWN_FIXTURES = HERE / "fixtures"
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"


def shared_fixtures_or_skip(sub=""):
    path = SHARED_FIXTURES / sub
    if not path.is_dir():
        pytest.skip("shared fixtures not present: %s" % path)
    return path


def read_jsonl(path):
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


class Run:
    def __init__(self, workdir, code, summary, stdout, stderr, cmd):
        self.dir = workdir
        self.code = code
        self.summary = summary
        self.stdout = stdout
        self.stderr = stderr
        self.cmd = cmd

    def describe(self):
        return "cmd: %s\nexit %s\nsummary: %s\nstderr: %s" % (
            " ".join(self.cmd), self.code, json.dumps(self.summary, indent=1)[:6000], self.stderr[-3000:])

    def ext(self, name):
        """Observation lines of the test extension `name`."""
        return read_jsonl(self.dir / (name + ".out"))

    def rt(self):
        return read_jsonl(self.dir / "runtime.out")

    def batches(self, name):
        return [r for r in self.ext(name) if r["k"] == "batch"]

    def events(self, name):
        """Every telemetry event the extension received, in order of receipt."""
        return [ev for b in self.batches(name) for ev in b["events"]]


class Sandbox:
    """Builds extensions in a temp dir and runs lambda-sim there."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        (tmp_path / "opt-extensions").mkdir()

    def ext(self, name, **cfg):
        """A copy of the configurable test extension named `name` (see procs/ext.py)."""
        path = self.dir / "opt-extensions" / name
        shutil.copy(EXT, path)
        path.chmod(0o755)
        cfg.setdefault("out", str(self.dir / (name + ".out")))
        (self.dir / "opt-extensions" / (name + ".json")).write_text(json.dumps(cfg))
        return path

    def run(self, extensions=(), bootstrap=RUNTIME, args=(), env=None, timeout=90, expect=None):
        summary = self.dir / "summary.json"
        if summary.exists():
            summary.unlink()
        cmd = [str(SIM)]
        for e in extensions:
            cmd += ["--extension", str(e)]
        cmd += ["--bootstrap", str(bootstrap), "--summary", str(summary)]
        cmd += ["--env", "RT_OUT=%s" % (self.dir / "runtime.out")]
        for k, v in (env or {}).items():
            cmd += ["--env", "%s=%s" % (k, v)]
        cmd += [str(a) for a in args]
        penv = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KTE_", "RT_"))}
        p = subprocess.run(cmd, cwd=str(self.dir), env=penv, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        data = None
        if summary.exists():
            data = json.loads(summary.read_text())
        run = Run(self.dir, p.returncode, data, p.stdout.decode(errors="replace"),
                  p.stderr.decode(errors="replace"), cmd)
        if expect is not None:
            assert p.returncode == expect, run.describe()
        return run


@pytest.fixture
def sandbox(tmp_path):
    return Sandbox(tmp_path)


ALL_TYPES = ["platform", "function", "extension"]
FAST = {"timeoutMs": 25}
