"""End-to-end fixtures: an isolated rolecall installation per test, driving the built binaries.

Import the fixtures into a test module: ``from e2e_fixtures import world, installation``.

- ``Installation``: a temporary HOME with its own rolecall config, state and runtime dirs, AWS
  config files and XDG dirs; ``env`` is the environment every process of the test runs with
  (nothing inherited but PATH); ``run(...)`` runs ``rolecall`` (or any program) with it; a
  ``$BROWSER`` script that counts its launches; every process started for the installation
  (found by its runtime dir in /proc/<pid>/environ) is killed at teardown.
- ``world`` fixture: an auto-approving sandbox (stderr to a file, so it never blocks on a full
  pipe), an installation whose identity-center source ``corp`` points at it, and profiles of the
  sandbox's default directory, with matching ``credential_process`` profiles in ``~/.aws/config``.
"""

import json
import os
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

from conftest import bin_path

START_URL = "https://d-9067c2e5f7.awsapps.com/start"
REGION = "eu-west-1"

# Profiles of the sandbox's default directory (user alice).
PROFILES = {
    "dev-admin": ("111111111111", "DeveloperAdmin"),
    "dev-ro": ("111111111111", "DeveloperReadOnly"),
    "staging-power": ("222222222222", "DeveloperPowerUser"),
    "prod-ro": ("333333333333", "DeveloperReadOnly"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class E2ESandbox:
    """rolecall-sandbox as a process, its log in a file."""

    def __init__(self, workdir: pathlib.Path, auto_approve: bool = True):
        self.log_path = workdir / "sandbox.log"
        args = [str(bin_path("rolecall-sandbox")), "--listen", "127.0.0.1:0"]
        if auto_approve:
            args.append("--auto-approve")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
            )
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"rolecall-sandbox did not start: {line!r}")
        self.url = line
        # Keep draining stdout so that the sandbox can never block on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        try:
            while self.proc.stdout.read(65536):
                pass
        except (OSError, ValueError):
            pass

    def admin(self, method: str, path: str, body=None):
        if body is None and method in ("POST", "DELETE"):
            body = {}
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/_sandbox{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def counts(self) -> dict:
        return self.admin("GET", "/counts")

    def count(self, op: str) -> int:
        return int(self.counts().get(op, 0))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


class Installation:
    """An isolated rolecall installation."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.home = root / "home"
        self.config = self.home / ".config/rolecall/config.toml"
        self.state_dir = self.home / ".local/state/rolecall"
        self.runtime_dir = root / "run"
        self.aws_config = self.home / ".aws/config"
        self.aws_credentials = self.home / ".aws/credentials"
        xdg_runtime = root / "xdg"
        for d in (self.home / ".config/rolecall", self.home / ".aws", self.home / ".cache"):
            d.mkdir(parents=True, exist_ok=True)
        for d in (self.state_dir, self.runtime_dir, xdg_runtime):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o700)
        path = os.pathsep.join([str(bin_path("rolecall").parent), os.environ.get("PATH", "/usr/bin:/bin")])
        self.env = {
            "PATH": path,
            "HOME": str(self.home),
            "USER": os.environ.get("USER", "root"),
            "LANG": "C.UTF-8",
            "NO_COLOR": "1",
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_STATE_HOME": str(self.home / ".local/state"),
            "XDG_DATA_HOME": str(self.home / ".local/share"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_RUNTIME_DIR": str(xdg_runtime),
            "ROLECALL_CONFIG": str(self.config),
            "ROLECALL_STATE_DIR": str(self.state_dir),
            "ROLECALL_RUNTIME_DIR": str(self.runtime_dir),
            "AWS_CONFIG_FILE": str(self.aws_config),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.aws_credentials),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        self.browser_log = root / "browser.log"

    # --- files -------------------------------------------------------------------------------

    def write_ic_setup(self, sandbox_url: str, profiles=PROFILES, daemon_extra: str = ""):
        """rolecall config with source `corp` on the sandbox + credential_process AWS profiles."""
        cfg = [
            "[daemon]",
            'secret_store = "file"',
            "notifications = false",
            f'container_listen = "127.0.0.1:{free_port()}"',
            daemon_extra,
            "",
            "[sources.corp]",
            'kind = "identity-center"',
            f'start_url = "{START_URL}"',
            f'region = "{REGION}"',
            f'endpoint_url = "{sandbox_url}"',
            "",
        ]
        aws = []
        for name, (account, role) in profiles.items():
            cfg += [
                f"[profiles.{name}]",
                'source = "corp"',
                f'account = "{account}"',
                f'role = "{role}"',
                f'region = "{REGION}"',
                "",
            ]
            aws += [
                f"[profile {name}]",
                f"credential_process = {bin_path('rolecall')} credential-process {name}",
                f"region = {REGION}",
                "",
            ]
        self.config.write_text("\n".join(cfg))
        self.aws_config.write_text("\n".join(aws))

    def use_browser(self, follow: bool = True, sandbox_bin=None):
        """$BROWSER: record each launch; with follow, run the sandbox's robot browser
        (SANDBOX_BIN, default the built rolecall-sandbox)."""
        script = self.root / "browser.sh"
        robot = sandbox_bin or bin_path("rolecall-sandbox")
        tail = f"exec '{robot}' browse \"$1\"\n" if follow else "exit 0\n"
        script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{self.browser_log}'\n{tail}")
        script.chmod(0o755)
        self.env["BROWSER"] = str(script)

    def browser_launches(self) -> int:
        if not self.browser_log.exists():
            return 0
        return len(self.browser_log.read_text().splitlines())

    # --- processes ---------------------------------------------------------------------------

    def run(self, args, *, program=None, timeout=60, input=None, extra_env=None):
        """Runs `rolecall ARGS` (or PROGRAM ARGS) with the installation's env; stdin is not a
        terminal. Returns subprocess.CompletedProcess with text output."""
        cmd = [str(program or bin_path("rolecall"))] + list(args)
        env = dict(self.env)
        env.update(extra_env or {})
        return subprocess.run(
            cmd,
            env=env,
            cwd=self.home,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def processes(self):
        """Pids of every process started for this installation."""
        marker = f"ROLECALL_RUNTIME_DIR={self.runtime_dir}".encode()
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        pids.append(int(entry))
            except OSError:
                continue
        return pids

    def daemon_pids(self):
        out = []
        for pid in self.processes():
            try:
                comm = pathlib.Path(f"/proc/{pid}/comm").read_text().strip()
                state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if comm == "rolecalld" and state != "Z":
                out.append(pid)
        return out

    def daemon_log(self) -> str:
        text = ""
        for p in sorted(self.state_dir.glob("rolecalld*log*")):
            text += p.read_text(errors="replace")
        return text

    def kill_all(self):
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class World:
    def __init__(self, sandbox: E2ESandbox, inst: Installation):
        self.sandbox = sandbox
        self.inst = inst

    def login(self):
        r = self.inst.run(["login", "corp"], timeout=60)
        assert r.returncode == 0, f"login failed: {r.stderr}"
        return r

    def credential_process(self, profile: str):
        return self.inst.run(["credential-process", profile])


@pytest.fixture
def installation():
    root = pathlib.Path(tempfile.mkdtemp(prefix="rcpy"))
    inst = Installation(root)
    yield inst
    inst.kill_all()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def world(installation):
    """Auto-approving sandbox + installation with source `corp` and a following $BROWSER."""
    sandbox = E2ESandbox(installation.root, auto_approve=True)
    installation.use_browser(follow=True)
    installation.write_ic_setup(sandbox.url)
    yield World(sandbox, installation)
    installation.kill_all()
    sandbox.stop()


def wait_until(pred, timeout=20.0, interval=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return pred()
