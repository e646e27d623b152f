"""End to end: the container credentials endpoint, IMDSv2, `rolecall exec`, `rolecall env`,
`rolecall relay` and `rolecall container setup`, with the real daemon, the sandbox and real
clients (boto3/botocore).

Each test gets its own installation (temp HOME, config, state and runtime dirs) whose
identity-center source points at a fresh auto-approving sandbox, and a `rolecalld --foreground`.
"""

import json
import os
import pathlib
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest

from conftest import Sandbox, bin_path

PY = sys.executable
PROFILE = "dev-admin"
ROLE = "DeveloperAdmin"
REGION = "eu-west-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Install:
    """An isolated rolecall installation with a running daemon."""

    def __init__(self, sandbox: Sandbox, imds_port: "int | None" = None):
        self.sandbox = sandbox
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="rcc"))
        self.home = self.dir / "home"
        for d in ("home", "state", "run"):
            (self.dir / d).mkdir(mode=0o700)
        self.config = self.dir / "config.toml"
        imds = (
            f'\n[daemon.imds]\nlisten = "127.0.0.1:{imds_port}"\nprofile = "{PROFILE}"\n'
            if imds_port
            else ""
        )
        self.config.write_text(
            f"""[daemon]
secret_store = "file"
notifications = false
container_listen = "127.0.0.1:0"
{imds}
[sources.corp]
kind = "identity-center"
start_url = "https://d-9067c2e5f7.awsapps.com/start"
region = "{REGION}"
endpoint_url = "{sandbox.url}"

[profiles.dev-admin]
source = "corp"
account = "111111111111"
role = "{ROLE}"
region = "{REGION}"

[profiles.prod-ro]
source = "corp"
account = "333333333333"
role = "DeveloperReadOnly"
region = "{REGION}"
"""
        )
        self.env = {
            "PATH": f"{bin_path('rolecall').parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "ROLECALL_CONFIG": str(self.config),
            "ROLECALL_STATE_DIR": str(self.dir / "state"),
            "ROLECALL_RUNTIME_DIR": str(self.dir / "run"),
            "AWS_CONFIG_FILE": str(self.dir / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.dir / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL_STS": sandbox.url,
            "BROWSER": f"{bin_path('rolecall-sandbox')} browse",
            # The test starts (and stops) the daemon itself; a CLI call racing a restart must
            # not autostart a second one that outlives the test.
            "ROLECALL_NO_AUTOSTART": "1",
        }
        self.log = open(self.dir / "rolecalld.out", "w")
        self.daemon = subprocess.Popen(
            [str(bin_path("rolecalld")), "--foreground"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.time() + 10
        while not (self.dir / "run" / "rolecalld.sock").exists():
            assert time.time() < deadline, self.daemon_output()
            time.sleep(0.05)

    def daemon_output(self) -> str:
        return (self.dir / "rolecalld.out").read_text()

    def rc(self, *args, check=True, env=None, **kw) -> subprocess.CompletedProcess:
        e = dict(self.env)
        e.update(env or {})
        r = subprocess.run(
            [str(bin_path("rolecall")), *args],
            env=e,
            capture_output=True,
            text=True,
            timeout=kw.pop("timeout", 60),
            stdin=subprocess.DEVNULL,
            **kw,
        )
        if check:
            assert r.returncode == 0, f"rolecall {args}: {r.returncode} {r.stderr}"
        return r

    def login(self):
        self.rc("login", "corp")

    def status(self) -> dict:
        return json.loads(self.rc("status", "--json").stdout)

    def container_vars(self, *args) -> dict:
        out = self.rc("container", PROFILE, *args).stdout
        return dict(line.split("=", 1) for line in out.splitlines())

    def stop(self):
        if self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def inst(sandbox_auto):
    i = Install(sandbox_auto)
    yield i
    i.stop()


def sdk_env(inst: Install, extra: dict) -> dict:
    """A clean environment for an SDK process: only what the test hands it."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(inst.home),
        "AWS_CONFIG_FILE": str(inst.dir / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(inst.dir / "none"),
        "AWS_ENDPOINT_URL_STS": inst.sandbox.url,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.update(extra)
    return env


WHOAMI = """
import boto3
s = boto3.Session()
c = s.get_credentials()
print(c.method)
print(s.client("sts").get_caller_identity()["Arn"])
"""


def http_get(url: str, headers: dict, timeout=5):
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def raw_request(addr, head: bytes, timeout=5) -> bytes:
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(head)
        buf = b""
        try:
            while chunk := s.recv(65536):
                buf += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return buf


def test_boto3_full_uri_and_token_name_the_role(inst):
    inst.login()
    v = inst.container_vars()
    assert set(v) == {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    }
    r = subprocess.run(
        [PY, "-c", WHOAMI], env=sdk_env(inst, v), capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    method, arn = r.stdout.split()
    assert method == "container-role"
    assert f"assumed-role/AWSReservedSSO_{ROLE}_" in arn and ":111111111111:" in arn

    # The token-file variant (0600), through botocore too.
    tok = inst.dir / "token"
    v2 = inst.container_vars("--token-file", str(tok))
    assert "AWS_CONTAINER_AUTHORIZATION_TOKEN" not in v2
    assert v2["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == str(tok)
    assert tok.stat().st_mode & 0o777 == 0o600
    r = subprocess.run(
        [PY, "-c", WHOAMI], env=sdk_env(inst, v2), capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert f"AWSReservedSSO_{ROLE}_" in r.stdout


def test_a_needed_login_is_answered_at_once_and_started(inst):
    v = inst.container_vars()
    url, tok = v["AWS_CONTAINER_CREDENTIALS_FULL_URI"], v["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    t = time.monotonic()
    status, body = http_get(url, {"Authorization": tok})
    elapsed = time.monotonic() - t
    assert status == 503, body
    assert elapsed < 1.0, f"the endpoint held the request {elapsed:.2f}s"
    err = json.loads(body)
    assert err["Code"] == "NotSignedIn"
    assert "rolecall login corp" in err["Message"]
    # That request started the (auto-approved) login: credentials follow without `rolecall login`.
    deadline = time.monotonic() + 30
    while True:
        status, body = http_get(url, {"Authorization": tok})
        if status == 200:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.3)
    assert json.loads(body)["AccessKeyId"].startswith("ASIA")


def test_refusals_against_the_real_daemon(inst):
    inst.login()
    v = inst.container_vars()
    url, tok = v["AWS_CONTAINER_CREDENTIALS_FULL_URI"], v["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    other = json.loads(
        inst.rc("container", "prod-ro", "--format", "compose").stdout.split(
            "AWS_CONTAINER_AUTHORIZATION_TOKEN: ", 1
        )[1].splitlines()[0]
    )
    hostport = url.split("/")[2]
    addr = (hostport.split(":")[0], int(hostport.split(":")[1]))
    path = "/" + url.split("/", 3)[3]

    assert http_get(url, {"Authorization": tok})[0] == 200
    for what, headers in [
        ("no token", {}),
        ("wrong token", {"Authorization": "rct_" + "A" * 43}),
        ("other profile's token", {"Authorization": other}),
    ]:
        status, body = http_get(url, headers)
        assert status == 401, (what, body)
        assert json.loads(body)["Code"] == "Unauthorized"
        assert "SecretAccessKey" not in body

    def code(resp: bytes) -> int:
        return int(resp.split(b" ", 2)[1])

    evil = raw_request(
        addr, f"GET {path} HTTP/1.1\r\nHost: evil.example\r\nAuthorization: {tok}\r\n\r\n".encode()
    )
    assert code(evil) == 403 and b"SecretAccessKey" not in evil
    origin = raw_request(
        addr,
        f"GET {path} HTTP/1.1\r\nHost: {hostport}\r\nOrigin: http://evil.example\r\nAuthorization: {tok}\r\n\r\n".encode(),
    )
    assert code(origin) == 403
    big = raw_request(
        addr,
        f"GET {path} HTTP/1.1\r\nHost: {hostport}\r\nX-Big: {'a' * (1 << 20)}\r\nAuthorization: {tok}\r\n\r\n".encode(),
    )
    # One defined answer: 431 (a connection cut without it fails).
    assert big and code(big) == 431, big[:200]

    inst.rc("container", "--revoke", PROFILE)
    assert http_get(url, {"Authorization": tok})[0] == 401, "revoked token still works"
    assert http_get(url.replace(PROFILE, "prod-ro"), {"Authorization": other})[0] == 200
    # The revocation survives a daemon restart, and so do the other tokens.
    inst.daemon.terminate()
    inst.daemon.wait(timeout=10)
    inst.daemon = subprocess.Popen(
        [str(bin_path("rolecalld")), "--foreground"],
        env=inst.env,
        stdin=subprocess.DEVNULL,
        stdout=inst.log,
        stderr=inst.log,
    )
    url2 = None
    deadline = time.monotonic() + 10
    while url2 is None:
        try:
            url2 = inst.status()["daemon"]["container_listen"]
        except (AssertionError, KeyError, json.JSONDecodeError):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    base = f"http://{url2}/v1/container/"
    assert http_get(base + PROFILE, {"Authorization": tok})[0] == 401
    assert http_get(base + "prod-ro", {"Authorization": other})[0] == 200


# The container endpoint keeps at most this many connections (its built-in limit), and closes
# a connection that has not sent its request head within DAEMON_HEADER_TIMEOUT seconds.
DAEMON_MAX_CONNECTIONS = 256
DAEMON_HEADER_TIMEOUT = 5


def closed_by_peer(s: socket.socket) -> bool:
    """EOF or a reset waiting on the socket; a live idle connection has nothing to read."""
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def count_closed_by_peer(socks, want: int, timeout: float = 10) -> int:
    """How many of SOCKS the peer closed, waiting up to TIMEOUT for at least WANT."""
    deadline = time.monotonic() + timeout
    while True:
        closed = sum(closed_by_peer(s) for s in socks)
        if closed >= want or time.monotonic() > deadline:
            return closed
        time.sleep(0.1)


def test_ten_thousand_idle_connections_do_not_stop_good_clients(inst):
    inst.login()
    v = inst.container_vars()
    url, tok = v["AWS_CONTAINER_CREDENTIALS_FULL_URI"], v["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    hostport = url.split("/")[2]
    addr = (hostport.split(":")[0], int(hostport.split(":")[1]))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 10_500:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below 10,500")
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20_000) if hard != resource.RLIM_INFINITY else 20_000, hard))

    held, opened_at, stop = [], [], threading.Event()
    results = {"ok": 0, "worst": 0.0, "errors": []}

    def good_client():
        while not stop.is_set():
            t = time.monotonic()
            try:
                status, _ = http_get(url, {"Authorization": tok}, timeout=5)
                if status == 200:
                    results["ok"] += 1
                else:
                    results["errors"].append(status)
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                results["errors"].append(repr(e))
            results["worst"] = max(results["worst"], time.monotonic() - t)
            time.sleep(0.02)

    g = threading.Thread(target=good_client)
    g.start()
    refused = 0
    try:
        for _ in range(10_000):
            try:
                held.append(socket.create_connection(addr, timeout=3))
                opened_at.append(time.monotonic())
            except OSError:
                refused += 1
        # Sockets opened in the last seconds cannot have met the header timeout yet: only the
        # eviction closes them. At most the cap of them may still be open, and not none.
        young_open, young = DAEMON_MAX_CONNECTIONS + 1, []
        deadline = time.monotonic() + 1
        while young_open > DAEMON_MAX_CONNECTIONS and time.monotonic() < deadline:
            cutoff = time.monotonic() - (DAEMON_HEADER_TIMEOUT - 2)
            young = [s for s, t in zip(held, opened_at) if t > cutoff]
            young_open = sum(not closed_by_peer(s) for s in young)
        time.sleep(1)
    finally:
        stop.set()
        g.join()
    try:
        closed = count_closed_by_peer(held, want=len(held) - DAEMON_MAX_CONNECTIONS)
    finally:
        for s in held:
            s.close()
    still_open = len(held) - closed
    print(f"good requests: {results['ok']}, worst {results['worst']:.3f}s, idle opened "
          f"{len(held)}, refused {refused}, closed by the daemon {closed}, still open {still_open}; "
          f"of the {len(young)} opened in the last {DAEMON_HEADER_TIMEOUT - 2}s, {young_open} open")
    # Every connection is accepted: the cap evicts the oldest idle sockets, it refuses no one.
    assert len(held) == 10_000, f"{refused} connections refused"
    assert len(young) > DAEMON_MAX_CONNECTIONS, "the flood was too slow to check the eviction"
    assert 0 < young_open <= DAEMON_MAX_CONNECTIONS, (
        f"{young_open} of the {len(young)} newest idle connections still open")
    # And in the end (eviction or header timeout) at most the cap stays open.
    assert still_open <= DAEMON_MAX_CONNECTIONS, f"{still_open} idle connections still open"
    assert not results["errors"], results["errors"][:5]
    assert results["ok"] > 10
    assert http_get(url, {"Authorization": tok})[0] == 200


def test_imds_v2_with_botocore(sandbox_auto):
    port = free_port()
    inst = Install(sandbox_auto, imds_port=port)
    try:
        inst.login()
        env = sdk_env(
            inst,
            {
                "AWS_EC2_METADATA_DISABLED": "false",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{port}/",
                "AWS_DEFAULT_REGION": REGION,
            },
        )
        r = subprocess.run([PY, "-c", WHOAMI], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        method, arn = r.stdout.split()
        assert method == "iam-role"
        assert f"AWSReservedSSO_{ROLE}_" in arn
        # IMDSv1 (no session token) is refused.
        status, _ = http_get(
            f"http://127.0.0.1:{port}/latest/meta-data/iam/security-credentials/", {}
        )
        assert status == 401
    finally:
        inst.stop()


def test_exec_sets_the_endpoint_scrubs_the_env_and_passes_exit_codes(inst):
    inst.login()
    dirty = {
        "AWS_PROFILE": "x",
        "AWS_DEFAULT_PROFILE": "x",
        "AWS_ACCESS_KEY_ID": "AKIAX",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_SESSION_TOKEN": "x",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/x",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/x",
    }
    r = inst.rc("exec", PROFILE, "--", PY, "-c", "import os,json; print(json.dumps(dict(os.environ)))", env=dirty)
    child = json.loads(r.stdout)
    for k in dirty:
        assert k not in child, k
    assert child["AWS_CONTAINER_CREDENTIALS_FULL_URI"].endswith(f"/v1/container/{PROFILE}")
    assert child["AWS_CONTAINER_AUTHORIZATION_TOKEN"].startswith("rct_")
    assert child["AWS_REGION"] == child["AWS_DEFAULT_REGION"] == REGION
    assert child["ROLECALL_PROFILE"] == PROFILE
    # The token was bound to the exec and is gone with it.
    assert inst.status()["container_tokens"] == []
    status, _ = http_get(
        child["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
        {"Authorization": child["AWS_CONTAINER_AUTHORIZATION_TOKEN"]},
    )
    assert status == 401

    r = inst.rc("exec", PROFILE, "--", PY, "-c", WHOAMI, env=dirty)
    assert f"AWSReservedSSO_{ROLE}_" in r.stdout and "container-role" in r.stdout

    assert inst.rc("exec", PROFILE, "--", "sh", "-c", "exit 3", check=False).returncode == 3
    assert inst.rc("exec", PROFILE, "--", "sh", "-c", "kill -TERM $$", check=False).returncode == 143
    missing = inst.rc("exec", PROFILE, "--", "/nonexistent/cmd", check=False)
    assert missing.returncode == 127 and "cannot run" in missing.stderr

    r = inst.rc("exec", PROFILE, "--static", "--", PY, "-c", WHOAMI)
    assert r.stdout.split()[0] == "env"
    assert f"AWSReservedSSO_{ROLE}_" in r.stdout


def test_exec_ignores_a_default_profile_and_web_identity_variables(inst):
    """A [default] with static keys in ~/.aws/credentials and ~/.aws/config, and web identity
    variables, all come before the container provider in botocore's chain: under `rolecall
    exec` none of them may be used."""
    inst.login()
    aws = inst.home / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(
        "[default]\naws_access_key_id = AKIASTATICCREDFILE01\naws_secret_access_key = s1\n"
    )
    (aws / "config").write_text(
        "[default]\nregion = us-east-2\naws_access_key_id = AKIASTATICCONFIGF02\naws_secret_access_key = s2\n"
    )
    token = inst.dir / "web-identity-token"
    token.write_text("not-a-real-token")
    dirty = {
        "AWS_CONFIG_FILE": str(aws / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(aws / "credentials"),
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
        "AWS_ROLE_ARN": "arn:aws:iam::999999999999:role/SomeoneElse",
        "AWS_ROLE_SESSION_NAME": "other",
    }
    script = WHOAMI + (
        "import os\n"
        "print(s.region_name)\n"
        "print(c.get_frozen_credentials().access_key)\n"
        "print(os.environ['AWS_CONFIG_FILE'])\n"
        "print(sorted(k for k in os.environ if k in %r))\n" % sorted(dirty)
    )
    for static in ([], ["--static"]):
        r = inst.rc("exec", PROFILE, *static, "--", PY, "-c", script, env=dirty)
        method, arn, region, key, config_file, left = r.stdout.splitlines()
        assert method == ("env" if static else "container-role"), r.stdout
        assert f"AWSReservedSSO_{ROLE}_" in arn
        assert region == REGION, "the profile's region, not the [default] one"
        assert key.startswith("ASIA"), key
        assert left == "['AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE']", left
        assert config_file.startswith(str(inst.dir / "run")), config_file
        assert not pathlib.Path(config_file).exists(), "removed once the child ended"
    assert [p.name for p in (inst.dir / "run").iterdir() if p.name.startswith("exec-")] == []


def test_exec_forwards_signals_and_a_killed_exec_loses_its_token(inst):
    inst.login()
    ready = inst.dir / "ready"
    script = (
        "import signal,sys,time,pathlib\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
        f"pathlib.Path({str(ready)!r}).write_text('x')\n"
        "time.sleep(30)\n"
    )
    p = subprocess.Popen([str(bin_path("rolecall")), "exec", PROFILE, "--", PY, "-c", script], env=inst.env)
    deadline = time.monotonic() + 20
    while not ready.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait(timeout=10) == 7

    # SIGKILL leaves no chance to revoke: the daemon notices the bound process is gone.
    ready.unlink()
    p = subprocess.Popen([str(bin_path("rolecall")), "exec", PROFILE, "--", PY, "-c", script], env=inst.env)
    while not ready.exists():
        time.sleep(0.05)
    assert len(inst.status()["container_tokens"]) == 1
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 10
    while inst.status()["container_tokens"]:
        assert time.monotonic() < deadline, "token of a killed exec was not revoked"
        time.sleep(0.2)


def test_a_program_under_exec_keeps_working_across_credential_expiry(inst):
    inst.sandbox.admin_ok("POST", "/lifetimes", {"role_credentials_secs": 60})
    inst.login()
    script = """
import boto3, time, sys
s = boto3.Session()
sts = s.client("sts")
keys, ok = [], 0
end = time.time() + 50
while time.time() < end:
    sts.get_caller_identity()
    ok += 1
    keys.append(s.get_credentials().get_frozen_credentials().access_key)
    time.sleep(2)
print(ok, len(set(keys)))
"""
    r = inst.rc("exec", PROFILE, "--", PY, "-c", script, timeout=120)
    ok, distinct = map(int, r.stdout.split())
    assert ok >= 20
    assert distinct >= 2, "the credentials never rotated"


def test_env_formats_give_working_keys(inst):
    inst.login()
    sh = inst.rc("env", PROFILE).stdout
    assert "export AWS_ACCESS_KEY_ID='ASIA" in sh
    r = subprocess.run(
        ["sh", "-c", f'eval "$1"; exec {PY} -c "$2"', "sh", sh, WHOAMI],
        env=sdk_env(inst, {}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "env" and f"AWSReservedSSO_{ROLE}_" in r.stdout
    j = json.loads(inst.rc("env", PROFILE, "--format", "json").stdout)
    assert j["AWS_REGION"] == REGION and j["AWS_SESSION_TOKEN"]
    if shutil.which("fish"):
        fish = inst.rc("env", PROFILE, "--format", "fish").stdout
        out = subprocess.run(
            ["fish", "-c", fish + "; echo $AWS_ACCESS_KEY_ID"], capture_output=True, text=True
        ).stdout.strip()
        assert out == j["AWS_ACCESS_KEY_ID"]
    unknown = inst.rc("env", "nope", check=False)
    assert unknown.returncode == 1 and unknown.stdout == "" and len(unknown.stderr.splitlines()) == 1


def test_relay_forwards_bytes_exactly(tmp_path):
    # An echo server on loopback.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def echo():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return

            def serve(c=c):
                with c:
                    while data := c.recv(65536):
                        c.sendall(data)

            threading.Thread(target=serve, daemon=True).start()

    threading.Thread(target=echo, daemon=True).start()
    port = free_port()
    relay = subprocess.Popen(
        [str(bin_path("rolecall")), "relay", "--listen", f"127.0.0.1:{port}", "--to", f"127.0.0.1:{srv.getsockname()[1]}"],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        payload = random.Random(7).randbytes(4 << 20)
        results = []

        def roundtrip():
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                sender = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
                sender.start()
                got = bytearray()
                while chunk := s.recv(1 << 16):
                    got += chunk
                sender.join()
                results.append(bytes(got) == payload)

        threads = [threading.Thread(target=roundtrip) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [True] * 4
    finally:
        relay.terminate()
        relay.wait()
        srv.close()


def _can_make_namespaces() -> "str | None":
    if os.geteuid() != 0:
        return "needs root to create a network namespace"
    if not shutil.which("ip") or not shutil.which("iptables"):
        return "needs ip and iptables"
    name = f"rcprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True)
    if r.returncode != 0:
        return f"cannot create network namespaces: {r.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", name])
    return None


def test_container_setup_forwards_169_254_170_2_into_a_namespace(inst):
    why = _can_make_namespaces()
    if why:
        pytest.skip(why)
    inst.login()
    tag = f"{os.getpid() % 10000}"
    ns, host_if, ns_if = f"rcns{tag}", f"rch{tag}", f"rcc{tag}"
    # A /30 outside 169.254.170.0/24, as on a docker bridge: 169.254.170.2 is reached through
    # the gateway (the host), where the DNAT rule catches it.
    steps = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
        ["ip", "link", "set", ns_if, "netns", ns],
        ["ip", "addr", "add", "172.31.254.1/30", "dev", host_if],
        ["ip", "link", "set", host_if, "up"],
        ["ip", "netns", "exec", ns, "ip", "addr", "add", "172.31.254.2/30", "dev", ns_if],
        ["ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up"],
        ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
        ["ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", "172.31.254.1"],
    ]
    applied = False
    try:
        for s in steps:
            subprocess.run(s, check=True, capture_output=True)
        printed = inst.rc("container", "setup", "--interface", host_if).stdout
        assert "--to-destination 127.0.0.1:" in printed and f"-i {host_if}" in printed
        inst.rc("container", "setup", "--apply", "--interface", host_if)
        applied = True
        # Applying twice adds nothing.
        inst.rc("container", "setup", "--apply", "--interface", host_if)
        rules = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
        for addr in ("169.254.170.2/32", "169.254.170.23/32"):
            assert rules.count(f"-d {addr} -i {host_if} ") == 1, rules

        v = inst.container_vars("--relative")
        assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in v
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(inst.home),
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true",
            **v,
        }
        probe = (
            "import boto3\n"
            "c = boto3.Session().get_credentials()\n"
            "print(c.method, c.get_frozen_credentials().access_key)\n"
        )
        r = subprocess.run(
            ["ip", "netns", "exec", ns, PY, "-c", probe], env=env, capture_output=True, text=True, timeout=60
        )
        assert r.returncode == 0, r.stderr
        method, key = r.stdout.split()
        assert method == "container-role" and key.startswith("ASIA")

        # Nothing else on the host is reachable through the forward: the sandbox listens on the
        # host's loopback; neither the forwarded address nor the host end reach it.
        sb_port = inst.sandbox.url.rsplit(":", 1)[1]
        check = (
            "import socket,sys\n"
            "for host in sys.argv[1:]:\n"
            "    try:\n"
            f"        socket.create_connection((host, {sb_port}), timeout=2).close(); print('open', host)\n"
            "    except OSError:\n"
            "        print('closed', host)\n"
        )
        r = subprocess.run(
            ["ip", "netns", "exec", ns, PY, "-c", check, "169.254.170.2", "172.31.254.1"],
            capture_output=True, text=True, timeout=30,
        )
        assert r.stdout.split("\n")[:2] == ["closed 169.254.170.2", "closed 172.31.254.1"], r.stdout
    finally:
        if applied:
            inst.rc("container", "setup", "--remove", "--apply", "--interface", host_if, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
    rules = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    assert host_if not in rules


def test_exec_without_a_session_fails_with_the_hint_before_running_anything(inst):
    marker = inst.dir / "ran"
    r = inst.rc("exec", PROFILE, "--", "touch", str(marker), check=False)
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and "rolecall login corp" in r.stderr
    assert not marker.exists()
    assert inst.status()["container_tokens"] == []
