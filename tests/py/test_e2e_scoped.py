"""Scoped sessions against the sandbox, through the real daemon, CLI and boto3: `rolecall exec
--read-only` / `--policy FILE` give the child a session of the profile's role narrowed by a
session policy (STS AssumeRole with PolicyArns / Policy and a SourceIdentity naming the
program), which the sandbox's S3 enforces (the role's permissions within the session
policies); profiles may declare session policies for all their credentials; bad policies are
one line; the audit log names the policy hash."""

import concurrent.futures
import hashlib
import json
import re
import sys
import time

import boto3
import botocore.exceptions

from e2e_fixtures import REGION, bin_path, installation, wait_until, world  # noqa: F401 (fixtures)

DEPLOYER = "arn:aws:iam::222222222222:role/Deployer"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
BUCKET = "scoped-e2e"

# What the child runs: boto3 with whatever credentials its environment gives it (the container
# endpoint of `rolecall exec`), one JSON line of what each call did.
CHILD = r'''
import json, sys, boto3, botocore.exceptions
s3 = boto3.client("s3")
sts = boto3.client("sts")
out = {}
def attempt(name, f):
    try:
        out[name] = f()
    except botocore.exceptions.ClientError as e:
        out[name] = {"error": e.response["Error"]["Code"], "message": e.response["Error"]["Message"]}
attempt("arn", lambda: sts.get_caller_identity()["Arn"])
if sys.argv[1] == "setup":
    attempt("create", lambda: s3.create_bucket(Bucket="scoped-e2e", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}) and "ok")
    for key in ("hello.txt", "secret.txt"):
        attempt("put-" + key, lambda: s3.put_object(Bucket="scoped-e2e", Key=key, Body=b"hello " + key.encode()) and "ok")
else:
    attempt("list", lambda: [b["Name"] for b in s3.list_buckets()["Buckets"]])
    attempt("get", lambda: s3.get_object(Bucket="scoped-e2e", Key="hello.txt")["Body"].read().decode())
    attempt("get-secret", lambda: s3.get_object(Bucket="scoped-e2e", Key="secret.txt")["Body"].read().decode())
    attempt("put", lambda: s3.put_object(Bucket="scoped-e2e", Key="new.txt", Body=b"x") and "ok")
    attempt("escape", lambda: sts.assume_role(RoleArn="arn:aws:iam::222222222222:role/Deployer", RoleSessionName="escape")["AssumedRoleUser"]["Arn"])
print(json.dumps(out))
'''


def policy_hash(policy: str = "", arns=()) -> str:
    """What rolecall calls a scope: sha256 of the packed policy, then "\\n" + each ARN."""
    h = hashlib.sha256(policy.encode())
    for a in arns:
        h.update(b"\n" + a.encode())
    return "sha256:" + h.hexdigest()[:16]


def setup(world, extra: str = ""):
    inst = world.inst
    (inst.home / ".config/rolecall/agent.json").write_text(json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}],
    }, indent=2))
    inst.config.write_text(inst.config.read_text() + f"""
[profiles.deploy]
via = "dev-admin"
role_arn = "{DEPLOYER}"
region = "{REGION}"

[profiles.deploy-ro]
via = "dev-admin"
role_arn = "{DEPLOYER}"
region = "{REGION}"
managed_session_policies = ["{READ_ONLY}"]

[profiles.agent]
via = "dev-admin"
role_arn = "{DEPLOYER}"
region = "{REGION}"
session_policy_file = "agent.json"
{extra}
""")
    aws = inst.aws_config.read_text()
    for name in ("deploy", "deploy-ro", "agent"):
        aws += (f"\n[profile {name}]\ncredential_process = {bin_path('rolecall')} credential-process {name}\n"
                f"region = {REGION}\n")
    inst.aws_config.write_text(aws)
    child = inst.root / "child.py"
    child.write_text(CHILD)
    world.login()
    return child


def run_child(world, flags, mode, child, profile="deploy"):
    r = world.inst.run(["exec", *flags, profile, "--", sys.executable, str(child), mode],
                       extra_env={"AWS_ENDPOINT_URL": world.sandbox.url}, timeout=90)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def audit_lines(world):
    path = world.inst.state_dir / "audit.jsonl"
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def issued(world, arn: str):
    return [c for c in world.sandbox.admin("GET", "/issued")["credentials"] if c["arn"] == arn]


def test_read_only_child_reads_but_cannot_write(world):
    child = setup(world)
    full = run_child(world, [], "setup", child)
    # The profile's own credentials may write.
    assert full["arn"] == "arn:aws:sts::222222222222:assumed-role/Deployer/rolecall-deploy", full
    assert full["create"] == "ok" and full["put-hello.txt"] == "ok", full

    ro = run_child(world, ["--read-only"], "probe", child)
    h = policy_hash(arns=[READ_ONLY])
    assert ro["arn"] == f"arn:aws:sts::222222222222:assumed-role/Deployer/rolecall-deploy-{h[7:15]}", ro
    assert ro["list"] == [BUCKET] and ro["get"] == "hello hello.txt", ro
    assert ro["put"]["error"] == "AccessDenied", ro
    assert "because no session policy allows the s3:PutObject action" in ro["put"]["message"]
    # Nor can it step out of its session policy by assuming the role again.
    assert ro["escape"]["error"] == "AccessDenied", ro

    # The sandbox saw the scope and the source identity naming the program.
    [cred] = issued(world, ro["arn"])
    assert cred["policy_arns"] == [READ_ONLY] and "session_policy" not in cred, cred
    prog = re.sub(r"[^\w+=,.@-]", "_", sys.executable.rsplit("/", 1)[-1])
    assert cred["source_identity"] == f"rolecall-exec@{prog}", cred

    # The audit log: the child's hand-outs (container) and exec's own check name the policy
    # hash and the scoped key; the unscoped run's lines name none.
    lines = [l for l in audit_lines(world) if l.get("profile") == "deploy"]
    scoped = [l for l in lines if l.get("session_policy")]
    assert {l["session_policy"] for l in scoped} == {h}, lines
    assert {l["interface"] for l in scoped} == {"container", "exec"}, scoped
    assert {l["access_key_id"] for l in scoped} == {cred["access_key_id"]}
    assert any(l["interface"] == "container" and "session_policy" not in l for l in lines)
    # `rolecall audit` shows it too.
    table = world.inst.run(["audit", "--profile", "deploy"]).stdout
    assert f"scoped {h}" in table, table


def test_policy_file_with_a_custom_deny(world):
    child = setup(world)
    run_child(world, [], "setup", child)
    policy = world.inst.root / "no-secrets.json"
    policy.write_text(json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:*", "sts:GetCallerIdentity"], "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/secret*"},
        ],
    }, indent=4))
    out = run_child(world, ["--policy", str(policy)], "probe", child)
    assert out["get"] == "hello hello.txt" and out["put"] == "ok", out
    assert out["get-secret"]["error"] == "AccessDenied", out
    assert "with an explicit deny in a session policy" in out["get-secret"]["message"]
    packed = json.dumps(json.loads(policy.read_text()), separators=(",", ":"), sort_keys=True)
    h = policy_hash(packed)
    [cred] = issued(world, out["arn"])
    assert cred["session_policy"] == packed, cred
    assert out["arn"].endswith(f"/rolecall-deploy-{h[7:15]}"), out
    assert any(l.get("session_policy") == h for l in audit_lines(world))


def test_bad_policies_are_one_line_and_nothing_runs(world):
    child = setup(world)
    marker = world.inst.root / "ran"
    cases = {
        "broken.json": ('{"Statement": [', "is not JSON"),
        "list.json": ("[1, 2]", "is not a policy document"),
        "long.json": (json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                 "Resource": "arn:aws:s3:::" + "b" * 2100}]}),
                      "more than the 2048 STS allows"),
    }
    for name, (text, why) in cases.items():
        path = world.inst.root / name
        path.write_text(text)
        r = world.inst.run(["exec", "--policy", str(path), "deploy", "--", "touch", str(marker)])
        assert r.returncode != 0, (name, r)
        assert len(r.stderr.strip().splitlines()) == 1, (name, r.stderr)
        assert f"--policy {path}" in r.stderr and why in r.stderr, (name, r.stderr)
    r = world.inst.run(["exec", "--policy", str(world.inst.root / "nope.json"), "deploy", "--", "true"])
    assert r.returncode != 0 and "cannot read it" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    # An Identity Center profile's role cannot be assumed again: one line with what to do.
    r = world.inst.run(["exec", "--read-only", "dev-admin", "--", "touch", str(marker)])
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "AWSReservedSSO_" in r.stderr and 'via = "dev-admin"' in r.stderr, r.stderr
    # A profile with its own session policy refuses another (it would replace, not narrow).
    r = world.inst.run(["exec", "--read-only", "agent", "--", "touch", str(marker)])
    assert r.returncode != 0 and "already has a session policy" in r.stderr, r.stderr
    assert not marker.exists()
    del child  # set up for the profiles only


def test_profile_session_policies_narrow_every_client(world, monkeypatch):
    child = setup(world)
    run_child(world, [], "setup", child)
    for k, v in world.inst.env.items():
        if k != "PATH":
            monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    url = world.sandbox.url
    for profile, h in (("deploy-ro", policy_hash(arns=[READ_ONLY])),
                       ("agent", policy_hash('{"Statement":[{"Action":"s3:Get*","Effect":"Allow","Resource":"*"}],"Version":"2012-10-17"}'))):
        s3 = boto3.Session(profile_name=profile).client("s3", endpoint_url=url)
        assert s3.get_object(Bucket=BUCKET, Key="hello.txt")["Body"].read() == b"hello hello.txt"
        try:
            s3.put_object(Bucket=BUCKET, Key="x", Body=b"x")
            raise AssertionError(f"{profile} could write")
        except botocore.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "AccessDenied", e
        out = json.loads(world.credential_process(profile).stdout)
        [cred] = [c for c in world.sandbox.admin("GET", "/issued")["credentials"]
                  if c["access_key_id"] == out["AccessKeyId"]]
        assert cred["arn"].endswith(f"/rolecall-{profile}-{h[7:15]}"), cred
        lines = [l for l in audit_lines(world) if l.get("profile") == profile]
        assert lines and all(l.get("session_policy") == h for l in lines), lines


def test_concurrent_children_share_one_scoped_session(world):
    child = setup(world)
    run_child(world, [], "setup", child)
    before = world.sandbox.count("sts:AssumeRole")
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        runs = list(pool.map(
            lambda _: world.inst.run(["exec", "--read-only", "deploy", "--", "true"], timeout=90),
            range(6)))
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    # The parent's credentials came from the cache; one AssumeRole served all six.
    assert world.sandbox.count("sts:AssumeRole") == before + 1


def test_scoped_sessions_in_use_are_renewed_ahead(world):
    """60-second sessions: the daemon assumes the role again (with the session policy) before
    a client needs it, and the client is then served without an AssumeRole of its own."""
    setup(world)
    world.sandbox.admin("POST", "/lifetimes", {"role_credentials_secs": 60})
    first = world.credential_process("deploy-ro")
    assert first.returncode == 0, first.stderr
    first = json.loads(first.stdout)
    n = world.sandbox.count("sts:AssumeRole")
    assert wait_until(lambda: world.sandbox.count("sts:AssumeRole") > n, timeout=50), \
        world.inst.daemon_log()[-3000:]
    time.sleep(1)
    n = world.sandbox.count("sts:AssumeRole")
    again = json.loads(world.credential_process("deploy-ro").stdout)
    assert again["AccessKeyId"] != first["AccessKeyId"] and again["Expiration"] > first["Expiration"]
    assert world.sandbox.count("sts:AssumeRole") == n
    # Still the scoped session.
    [cred] = [c for c in world.sandbox.admin("GET", "/issued")["credentials"]
              if c["access_key_id"] == again["AccessKeyId"]]
    assert cred["policy_arns"] == [READ_ONLY], cred
