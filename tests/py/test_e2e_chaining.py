"""Role chaining against the sandbox, through the real daemon, CLI and boto3: a profile with
`via = "<profile>"` + `role_arn` assumes the role (STS AssumeRole, SigV4-signed with the parent's
served credentials; the sandbox verifies the signature and enforces the 1-hour role-chaining
limit), refreshes across short chained sessions, and a failing parent gives one clear line."""

import concurrent.futures
import json
import time

import boto3
import botocore.exceptions
import pytest

from e2e_fixtures import REGION, bin_path, installation, wait_until, world  # noqa: F401 (fixtures)

DEPLOYER = "arn:aws:iam::222222222222:role/Deployer"
AUDITOR = "arn:aws:iam::333333333333:role/Auditor"


def add_chained(inst, sandbox_url: str, extra: str = ""):
    """Profiles `deploy` (via dev-admin, asking 4h: capped to 1h) and `audit` (via deploy, with
    the external id the sandbox's trust requires), plus their credential_process profiles."""
    text = inst.config.read_text()
    text += f"""
[profiles.deploy]
via = "dev-admin"
role_arn = "{DEPLOYER}"
duration = "4h"
source_identity = "alice"
session_tags = {{ team = "infra" }}
region = "{REGION}"
{extra}

[profiles.audit]
via = "deploy"
role_arn = "{AUDITOR}"
external_id = "rolecall-audit-7"
"""
    inst.config.write_text(text)
    aws = inst.aws_config.read_text()
    for name in ("deploy", "audit"):
        aws += (
            f"\n[profile {name}]\ncredential_process = {bin_path('rolecall')} credential-process {name}\n"
            f"region = {REGION}\n"
        )
    inst.aws_config.write_text(aws)
    inst.env["AWS_ENDPOINT_URL_STS"] = sandbox_url


def isolate(monkeypatch, inst):
    """botocore runs credential_process with this process's environment."""
    for k, v in inst.env.items():
        if k != "PATH":
            monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
              "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)


def caller(profile: str, url: str) -> dict:
    return boto3.Session(profile_name=profile).client("sts", endpoint_url=url).get_caller_identity()


def test_boto3_sees_the_chained_roles(world, monkeypatch):
    add_chained(world.inst, world.sandbox.url)
    world.login()
    # Eight clients at once: one parent fetch, one AssumeRole.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(lambda _: world.credential_process("deploy"), range(8)))
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert len({json.loads(r.stdout)["AccessKeyId"] for r in runs}) == 1
    assert world.sandbox.count("sts:AssumeRole") == 1
    assert world.sandbox.count("sso:GetRoleCredentials") == 1
    isolate(monkeypatch, world.inst)
    me = caller("deploy", world.sandbox.url)
    assert me["Account"] == "222222222222"
    assert me["Arn"] == "arn:aws:sts::222222222222:assumed-role/Deployer/rolecall-deploy"
    # Two links: dev-admin -> deploy -> audit, with the external id.
    me = caller("audit", world.sandbox.url)
    assert me["Arn"] == "arn:aws:sts::333333333333:assumed-role/Auditor/rolecall-audit"
    # Cached: more calls assume no role again.
    n = world.sandbox.count("sts:AssumeRole")
    for _ in range(3):
        assert world.credential_process("deploy").returncode == 0
    assert world.sandbox.count("sts:AssumeRole") == n
    # The chained session asked at most 1 h (4h configured): the sandbox refuses more, as AWS
    # does for role chaining, so the session exists only because the daemon capped it.
    out = json.loads(world.credential_process("deploy").stdout)
    left = time.mktime(time.strptime(out["Expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(time.gmtime())
    assert 0 < left <= 3600 + 5, left
    # The sandbox enforces that limit with a chained caller.
    sts = boto3.client(
        "sts", endpoint_url=world.sandbox.url, region_name=REGION,
        aws_access_key_id=out["AccessKeyId"], aws_secret_access_key=out["SecretAccessKey"],
        aws_session_token=out["SessionToken"],
    )
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=DEPLOYER, RoleSessionName="x-y", DurationSeconds=7200)
    assert e.value.response["Error"]["Code"] == "ValidationError"
    assert "1 hour session limit for roles assumed by role chaining" in str(e.value)
    # And a trust requiring an external id refuses a caller without it.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.assume_role(RoleArn=AUDITOR, RoleSessionName="x-y")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    ok = sts.assume_role(RoleArn=DEPLOYER, RoleSessionName="x-y", SourceIdentity="alice")
    assert ok["SourceIdentity"] == "alice"


def test_refresh_across_short_chained_sessions(world):
    """Role sessions of 60 s: served while half is left; the scheduler assumes again ahead."""
    add_chained(world.inst, world.sandbox.url)
    world.sandbox.admin("POST", "/lifetimes", {"role_credentials_secs": 60})
    world.login()
    first = world.credential_process("deploy")
    assert first.returncode == 0, first.stderr
    first = json.loads(first.stdout)
    n = world.sandbox.count("sts:AssumeRole")
    # The refresh scheduler assumes the role again ahead, by itself (the parent's 60 s
    # credentials are refreshed first or taken from the cache while fresh).
    assert wait_until(lambda: world.sandbox.count("sts:AssumeRole") > n, timeout=45), \
        world.inst.daemon_log()[-3000:]
    time.sleep(1)
    n = world.sandbox.count("sts:AssumeRole")
    again = world.credential_process("deploy")
    assert again.returncode == 0, again.stderr
    again = json.loads(again.stdout)
    assert again["AccessKeyId"] != first["AccessKeyId"]
    assert again["Expiration"] > first["Expiration"]
    # Served from what the scheduler fetched: no AssumeRole of the client's own.
    assert world.sandbox.count("sts:AssumeRole") == n
    # And boto3 signs with them.
    sts = boto3.client(
        "sts", endpoint_url=world.sandbox.url, region_name=REGION,
        aws_access_key_id=again["AccessKeyId"], aws_secret_access_key=again["SecretAccessKey"],
        aws_session_token=again["SessionToken"],
    )
    assert sts.get_caller_identity()["Arn"].endswith(":assumed-role/Deployer/rolecall-deploy")


def test_a_failing_parent_gives_one_clear_line(world):
    add_chained(world.inst, world.sandbox.url)
    # No sign-in starting by itself in the background (it would race the checks below).
    cfg = world.inst.config.read_text().replace("[daemon]\n", "[daemon]\nauto_login = false\n", 1)
    world.inst.config.write_text(cfg)
    # Not signed in: the parent's reason and hint, named.
    r = world.credential_process("deploy")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "profile 'deploy' uses 'dev-admin', which failed: not signed in to source 'corp'" in lines[0], lines
    assert r.stdout == ""
    # Two links up: the first link names its parent's failure in turn.
    r = world.credential_process("audit")
    assert "profile 'audit' uses 'deploy', which failed: profile 'deploy' uses 'dev-admin'" in r.stderr, r.stderr
    # Signed in, but the parent's upstream fails (GetRoleCredentials answers 500 every time;
    # set before the login, after which the scheduler refreshes the profiles just used).
    world.sandbox.admin("POST", "/faults", {"operation": "sso:GetRoleCredentials", "kind": "status",
                                            "status": 500, "count": 100})
    world.login()
    r = world.credential_process("deploy")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("rolecall: profile 'deploy' uses 'dev-admin', which failed: "), lines
    assert world.sandbox.count("sts:AssumeRole") == 0
    # The parent recovers: so does the chained profile.
    world.sandbox.admin("DELETE", "/faults")
    r = world.credential_process("deploy")
    assert r.returncode == 0, r.stderr
