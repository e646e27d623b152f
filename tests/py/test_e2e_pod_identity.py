"""End to end: the EKS Pod Identity-style route (`GET /v1/credentials`) with the real daemon,
the sandbox and boto3/botocore, configured the way a pod is: `AWS_CONTAINER_CREDENTIALS_FULL_URI`
and `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`. On loopback (botocore accepts 127.0.0.0/8), and
through `rolecall container setup`'s forward of 169.254.170.23 into a network namespace.
"""

import json
import os
import subprocess
import time

import pytest

from test_e2e_container import PY, PROFILE, Install, _can_make_namespaces, inst, sdk_env  # noqa: F401

POD_URI = "http://169.254.170.23/v1/credentials"

# What a pod's SDK does: the default chain, the credentials' provider and account, and a real
# call against the sandbox.
WHOAMI = """
import boto3, json
s = boto3.Session()
c = s.get_credentials()
f = c.get_frozen_credentials()
print(json.dumps({"method": c.method, "account": f.account_id, "key": f.access_key,
                  "arn": s.client("sts").get_caller_identity()["Arn"]}))
"""


def wait_for_audit(inst: Install, access_key_id: str) -> dict:
    """The audit line of the hand-out of `access_key_id` (the writer is asynchronous)."""
    log = inst.dir / "state" / "audit.jsonl"
    deadline = time.monotonic() + 10
    while True:
        lines = log.read_text().splitlines() if log.exists() else []
        found = [json.loads(l) for l in lines if access_key_id in l]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no audit line for {access_key_id}: {lines}"
        time.sleep(0.1)


def loopback_uri(inst: Install) -> str:
    listen = inst.status()["daemon"]["container_listen"]
    return f"http://{listen}/v1/credentials"


def whoami(env: dict, netns: "str | None" = None) -> dict:
    cmd = [PY, "-c", WHOAMI]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_boto3_with_a_token_file_gets_the_tokens_profile_and_account(inst):
    inst.login()
    token_file = inst.dir / "pod-token"
    v = inst.container_vars("--pod-identity", "--token-file", str(token_file))
    assert v["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == POD_URI
    assert v["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == str(token_file)
    assert "AWS_CONTAINER_AUTHORIZATION_TOKEN" not in v
    assert (token_file.stat().st_mode & 0o777) == 0o600

    # On the host the same route is on the listener itself.
    v["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = loopback_uri(inst)
    got = whoami(sdk_env(inst, v))
    assert got["method"] == "container-role"
    assert got["account"] == "111111111111"
    assert got["key"].startswith("ASIA")
    assert ":111111111111:assumed-role/AWSReservedSSO_DeveloperAdmin_" in got["arn"]
    # The hand-out is in the audit log like any other container one: the token's id (never
    # its value) and the loopback caller.
    (tok,) = [t for t in inst.status()["container_tokens"] if t["profile"] == PROFILE]
    line = wait_for_audit(inst, got["key"])
    assert line["interface"] == "container" and line["profile"] == PROFILE
    assert line["token"]["id"] == tok["id"]
    assert line["caller"]["addr"].startswith("127.0.0.1:") and line["caller"]["uid"] == os.getuid()
    assert token_file.read_text().strip() not in json.dumps(line)

    # The same URL, another profile's token in the file: that profile's credentials.
    other = inst.rc("container", "prod-ro", "--pod-identity", "--token-file", str(token_file)).stdout
    assert f"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={token_file}" in other
    got = whoami(sdk_env(inst, v))
    assert got["account"] == "333333333333"
    assert ":333333333333:assumed-role/AWSReservedSSO_DeveloperReadOnly_" in got["arn"]

    # Revoked: the SDK finds no credentials.
    inst.rc("container", "prod-ro", "--revoke")
    r = subprocess.run(
        [PY, "-c", WHOAMI], env=sdk_env(inst, v), capture_output=True, text=True, timeout=60
    )
    assert r.returncode != 0
    assert "SECRET" not in r.stderr


def test_the_k8s_manifests_carry_a_working_token(inst):
    yaml = pytest.importorskip("yaml")
    inst.login()
    out = inst.rc("container", PROFILE, "--format", "k8s").stdout
    secret, config = list(yaml.safe_load_all(out))
    assert secret["kind"] == "Secret" and config["kind"] == "ConfigMap"
    assert secret["metadata"]["name"] == config["metadata"]["name"] == "rolecall-dev-admin"
    data = config["data"]
    assert data["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == POD_URI
    assert data["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] == "/var/run/secrets/rolecall/token"
    assert data["AWS_REGION"] == data["AWS_DEFAULT_REGION"] == "eu-west-1"
    token = secret["stringData"]["token"]
    assert token.startswith("rct_") and token not in json.dumps(data)
    # What the kubelet does with the Secret: a file holding the token.
    token_file = inst.dir / "mounted-token"
    token_file.write_text(token)
    env = dict(data)
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = loopback_uri(inst)
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(token_file)
    got = whoami(sdk_env(inst, env))
    assert got["account"] == "111111111111" and got["method"] == "container-role"

    r = inst.rc("container", PROFILE, "--format", "k8s", "--token-file", "x", check=False)
    assert r.returncode != 0 and r.stdout == "" and len(r.stderr.splitlines()) == 1


def test_container_setup_forwards_169_254_170_23_into_a_namespace(inst):
    why = _can_make_namespaces()
    if why:
        pytest.skip(why)
    inst.login()
    tag = f"{os.getpid() % 10000}"
    ns, host_if, ns_if = f"rpns{tag}", f"rph{tag}", f"rpc{tag}"
    # A /30 outside 169.254.170.0/24, as on a kind/docker bridge: 169.254.170.23 is reached
    # through the gateway (the host), where the DNAT rule catches it.
    steps = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
        ["ip", "link", "set", ns_if, "netns", ns],
        ["ip", "addr", "add", "172.31.253.1/30", "dev", host_if],
        ["ip", "link", "set", host_if, "up"],
        ["ip", "netns", "exec", ns, "ip", "addr", "add", "172.31.253.2/30", "dev", ns_if],
        ["ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up"],
        ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
        ["ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", "172.31.253.1"],
    ]
    applied = False
    try:
        for s in steps:
            subprocess.run(s, check=True, capture_output=True)
        printed = inst.rc("container", "setup", "--interface", host_if).stdout
        assert f"-i {host_if} -d 169.254.170.23/32" in printed, printed
        inst.rc("container", "setup", "--apply", "--interface", host_if)
        applied = True

        token_file = inst.dir / "pod-token"
        v = inst.container_vars("--pod-identity", "--token-file", str(token_file))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(inst.home),
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL_STS": inst.sandbox.url,
            **v,
        }
        assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == POD_URI
        # STS (the sandbox) is on the host's loopback, out of the namespace's reach: the
        # credentials alone are checked in there.
        probe = (
            "import boto3, json\n"
            "c = boto3.Session().get_credentials()\n"
            "f = c.get_frozen_credentials()\n"
            "print(json.dumps({'method': c.method, 'account': f.account_id, 'key': f.access_key}))\n"
        )
        r = subprocess.run(
            ["ip", "netns", "exec", ns, PY, "-c", probe],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        assert got["method"] == "container-role" and got["account"] == "111111111111"
        assert got["key"].startswith("ASIA")
    finally:
        if applied:
            inst.rc("container", "setup", "--remove", "--apply", "--interface", host_if, check=False)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
    rules = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    assert host_if not in rules
