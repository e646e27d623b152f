"""Shared pytest fixtures for the black-box tests in tests/py.

The sandbox fixtures start the built `rolecall-sandbox` binary (from $ROLECALL_BIN_DIR, default
<repo>/target/debug) on a free loopback port, read its base URL from the first stdout line, and
stop it at teardown. `admin(method, path, json)` calls its admin API under /_sandbox/.
"""

import json
import os
import pathlib
import select
import subprocess
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def bin_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("ROLECALL_BIN_DIR", REPO / "target" / "debug"))


def bin_path(name: str) -> pathlib.Path:
    path = bin_dir() / name
    if not path.exists():
        pytest.fail(f"{path} not found: build it (cargo build) or set ROLECALL_BIN_DIR")
    return path


class Sandbox:
    """A running rolecall-sandbox process."""

    def __init__(self, auto_approve: bool = False, seed: "str | os.PathLike | None" = None):
        args = [str(bin_path("rolecall-sandbox")), "--listen", "127.0.0.1:0"]
        if auto_approve:
            args.append("--auto-approve")
        if seed is not None:
            args += ["--seed", str(seed)]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline().strip() if ready else ""
        if not line.startswith("http://127.0.0.1:"):
            # Its last words first: stop() closes the pipes.
            self.proc.kill()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.stop()
            raise RuntimeError(f"rolecall-sandbox did not start: {line!r} {err}")
        self.url = line

    def admin(self, method: str, path: str, body=None):
        """Calls /_sandbox{path}; returns (status, parsed JSON)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/_sandbox{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def admin_ok(self, method: str, path: str, body=None):
        status, value = self.admin(method, path, body)
        assert 200 <= status < 300, f"admin {method} {path}: {status} {value}"
        return value

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture
def start_sandbox():
    """Factory: start_sandbox(auto_approve=False, seed=None) -> Sandbox; all stopped at teardown."""
    started = []

    def start(auto_approve: bool = False, seed=None) -> Sandbox:
        sb = Sandbox(auto_approve=auto_approve, seed=seed)
        started.append(sb)
        return sb

    yield start
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox(start_sandbox) -> Sandbox:
    """A fresh sandbox that leaves browser steps pending until the admin API decides."""
    return start_sandbox()


@pytest.fixture
def sandbox_auto(start_sandbox) -> Sandbox:
    """A fresh sandbox that approves browser steps as soon as they are visited."""
    return start_sandbox(auto_approve=True)


@pytest.fixture
def admin(sandbox):
    """admin(method, path, json=None) -> parsed JSON, asserting a 2xx answer."""
    return sandbox.admin_ok
