"""End to end: the audit log. Each way credentials leave the daemon — `credential_process`
through the real CLI (run by botocore), the container endpoint (boto3), IMDSv2 (botocore),
`rolecall exec` and `rolecall env` — adds exactly one line naming the right caller; no secret
(keys, session tokens, container tokens, IMDS session tokens) ever reaches the files; the
rotation bound holds; `rolecall audit` filters by time, profile and interface.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

from conftest import bin_path
from test_e2e_container import PROFILE, PY, REGION, ROLE, Install, free_port, http_get, sdk_env

import pytest


def audit_files(inst: Install) -> "list[pathlib.Path]":
    return sorted((inst.dir / "state").glob("audit.jsonl*"))


def records(inst: Install) -> "list[dict]":
    """Every line, oldest file first."""
    state = inst.dir / "state"
    out = []
    for n in range(10, -1, -1):
        p = state / ("audit.jsonl" if n == 0 else f"audit.jsonl.{n}")
        if p.exists():
            out += [json.loads(l) for l in p.read_text().splitlines() if l.strip()]
    return out


def wait_for(inst: Install, count: int) -> "list[dict]":
    """The records once there are `count` of them (the writer is asynchronous), checking that
    no more arrive."""
    deadline = time.monotonic() + 10
    while len(recs := records(inst)) < count:
        assert time.monotonic() < deadline, f"{len(recs)} of {count} records: {recs}"
        time.sleep(0.05)
    time.sleep(0.3)
    recs = records(inst)
    assert len(recs) == count, json.dumps(recs[-3:], indent=1)
    return recs


BOTO_CREDS = """
import boto3, json, os
c = boto3.Session(profile_name=os.environ.get("P")).get_credentials().get_frozen_credentials()
print(json.dumps({"pid": os.getpid(), "key": c.access_key, "secret": c.secret_key, "token": c.token}))
"""


def run_py(env: dict, code: str = BOTO_CREDS) -> dict:
    r = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_each_interface_writes_one_line_naming_its_caller_and_no_secret(sandbox_auto):
    port = free_port()
    inst = Install(sandbox_auto, imds_port=port)
    secrets = []
    try:
        inst.login()
        assert records(inst) == [], "a login hands out no credentials"
        files = audit_files(inst)
        assert [f.name for f in files] == ["audit.jsonl"]
        assert files[0].stat().st_mode & 0o777 == 0o600

        # credential_process, run by botocore as AWS runs it: the CLI and its parent are named.
        aws_config = inst.dir / "aws-config-cp"
        aws_config.write_text(
            f"[profile {PROFILE}]\ncredential_process = {bin_path('rolecall')} credential-process {PROFILE}\n"
        )
        env = sdk_env(inst, {"AWS_CONFIG_FILE": str(aws_config), "P": PROFILE})
        for k in ("ROLECALL_CONFIG", "ROLECALL_STATE_DIR", "ROLECALL_RUNTIME_DIR", "ROLECALL_NO_AUTOSTART"):
            env[k] = inst.env[k]
        got = run_py(env)
        secrets += [got["secret"], got["token"]]
        (cp,) = wait_for(inst, 1)
        assert cp["event"] == "credentials"
        assert cp["interface"] == "credential_process"
        assert cp["profile"] == PROFILE and cp["access_key_id"] == got["key"]
        assert cp["account_id"] == "111111111111"
        assert cp["role"] == ROLE and "role_arn" not in cp, "Identity Center names no role ARN"
        c = cp["caller"]
        assert c["uid"] == os.getuid()
        assert os.path.basename(c["exe"]) == "rolecall"
        assert c["ppid"] == got["pid"], "the parent of the CLI is the python that ran it"
        assert c["parent_exe"] == os.path.realpath(PY)

        # The container endpoint, through boto3: the peer address, its uid and the token id.
        v = inst.container_vars()
        secrets.append(v["AWS_CONTAINER_AUTHORIZATION_TOKEN"])
        (tok,) = [t for t in inst.status()["container_tokens"] if t["profile"] == PROFILE]
        got = run_py(sdk_env(inst, v))
        secrets += [got["secret"], got["token"]]
        ct = wait_for(inst, 2)[-1]
        assert ct["interface"] == "container" and ct["profile"] == PROFILE
        assert ct["access_key_id"] == got["key"]
        assert ct["caller"]["addr"].startswith("127.0.0.1:")
        assert ct["caller"]["uid"] == os.getuid()
        assert ct["token"] == {"id": tok["id"]}

        # IMDSv2 through botocore: the peer address and its uid.
        imds_env = sdk_env(
            inst,
            {
                "AWS_EC2_METADATA_DISABLED": "false",
                "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{port}/",
                "AWS_DEFAULT_REGION": REGION,
            },
        )
        got = run_py(imds_env)
        secrets += [got["secret"], got["token"]]
        im = wait_for(inst, 3)[-1]
        assert im["interface"] == "imds" and im["profile"] == PROFILE
        assert im["caller"]["addr"].startswith("127.0.0.1:") and im["caller"]["uid"] == os.getuid()
        assert "token" not in im and "pid" not in im["caller"]
        # An IMDS session token by hand, kept to look for it below; the reads it allows count.
        req = __import__("urllib.request").request.Request(
            f"http://127.0.0.1:{port}/latest/api/token",
            method="PUT",
            headers={"x-aws-ec2-metadata-token-ttl-seconds": "60"},
        )
        with __import__("urllib.request").request.urlopen(req, timeout=5) as r:
            secrets.append(r.read().decode())
        assert http_get(
            f"http://127.0.0.1:{port}/latest/meta-data/iam/security-credentials/",
            {"x-aws-ec2-metadata-token": secrets[-1]},
        ) == (200, ROLE)
        wait_for(inst, 3)  # listing the role hands out nothing

        # `rolecall exec`: one socket line (the sign-in check, caller the exec itself) and one
        # container line from the child, whose token is bound to that exec.
        r = inst.rc("exec", PROFILE, "--", PY, "-c", BOTO_CREDS)
        child = json.loads(r.stdout)
        secrets += [child["secret"], child["token"]]
        ex, exc = wait_for(inst, 5)[-2:]
        assert ex["interface"] == "exec" and os.path.basename(ex["caller"]["exe"]) == "rolecall"
        assert ex["caller"]["ppid"] == os.getpid(), "exec was run by this test"
        assert exc["interface"] == "container"
        assert exc["token"]["bound_pid"] == ex["caller"]["pid"]
        # `rolecall env` and `exec --static`.
        out = inst.rc("env", "prod-ro", "--format", "json").stdout
        secrets.append(json.loads(out)["AWS_SECRET_ACCESS_KEY"])
        assert wait_for(inst, 6)[-1]["interface"] == "env"
        assert wait_for(inst, 6)[-1]["profile"] == "prod-ro"
        inst.rc("exec", PROFILE, "--static", "--", "true")
        assert wait_for(inst, 7)[-1]["interface"] == "exec"

        # Refused requests hand out nothing.
        assert http_get(v["AWS_CONTAINER_CREDENTIALS_FULL_URI"], {"Authorization": "rct_" + "A" * 43})[0] == 401
        assert inst.rc("credential-process", "no-such", check=False).returncode == 1
        wait_for(inst, 7)

        # No secret anywhere in the files.
        assert len(secrets) == 11 and all(len(s) >= 16 for s in secrets)
        for f in audit_files(inst):
            text = f.read_text()
            for s in secrets:
                assert s not in text, f"a secret is in {f.name}"
    finally:
        inst.stop()


def test_rotation_bound_and_the_audit_command(sandbox_auto):
    inst = Install(sandbox_auto)
    try:
        inst.login()
        # Bound the log at 2 files of 2 KiB (a record is ~400 bytes), applied by a reload.
        cfg = inst.config.read_text().replace(
            "[daemon]\n", '[daemon]\naudit_max_size = "2KiB"\naudit_files = 2\n', 1
        )
        inst.config.write_text(cfg)
        inst.daemon.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert "config_error" not in inst.status()["daemon"]

        inst.rc("credential-process", PROFILE)
        time.sleep(1.1)  # the next records are in a later second than the first
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for _ in range(3):
            inst.rc("credential-process", "prod-ro")
        wait_for(inst, 4)

        def audit(*args, check=True):
            return inst.rc("audit", *args, check=check)

        table = audit().stdout.splitlines()
        assert table[0].split() == ["TIME", "INTERFACE", "PROFILE", "ACCESS", "KEY", "CALLER"]
        assert len(table) == 5 and all("credential_process" in l for l in table[1:])
        assert "via rolecall[" in table[1] and f"uid {os.getuid()}" in table[1]
        js = [json.loads(l) for l in audit("--json").stdout.splitlines()]
        assert js == records(inst)
        assert [r["profile"] for r in js] == [PROFILE] + ["prod-ro"] * 3
        assert len(audit("--json", "--profile", "prod-ro").stdout.splitlines()) == 3
        assert len(audit("--json", "--profile", PROFILE).stdout.splitlines()) == 1
        assert len(audit("--json", "--since", since).stdout.splitlines()) == 3
        assert len(audit("--json", "--since", "1h").stdout.splitlines()) == 4
        assert audit("--json", "--interface", "container").stdout == ""
        none = audit("--profile", "nobody")
        assert none.stdout == "" and "no matching audit records" in none.stderr
        bad = audit("--since", "yesterday", check=False)
        assert bad.returncode != 0 and bad.stdout == ""
        assert len(bad.stderr.strip().splitlines()) == 1 and "--since" in bad.stderr

        # Far past the bound: 2 files, each within 2 KiB, the newest record last.
        for _ in range(25):
            inst.rc("credential-process", PROFILE)
        deadline = time.monotonic() + 10
        while True:
            js = [json.loads(l) for l in audit("--json").stdout.splitlines()]
            if js and js[-1]["profile"] == PROFILE and len(js) >= 4:
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        names = [f.name for f in audit_files(inst)]
        assert names == ["audit.jsonl", "audit.jsonl.1"], names
        for f in audit_files(inst):
            assert f.stat().st_size <= 2048, (f.name, f.stat().st_size)
            assert f.stat().st_mode & 0o777 == 0o600
        assert sum(f.stat().st_size for f in audit_files(inst)) > 2048

        # A log another user could write is not trusted.
        os.chmod(audit_files(inst)[0], 0o622)
        r = audit(check=False)
        assert r.returncode == 1 and "refusing to read it" in r.stderr
    finally:
        inst.stop()
