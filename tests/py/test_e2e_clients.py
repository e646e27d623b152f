"""Real AWS clients from PyPI against rolecall: botocore/boto3 and the `aws` CLI read profiles
whose `credential_process` is `rolecall credential-process <profile>` and call STS (the
sandbox's, which verifies their SigV4 signatures with the keys it issued)."""

import json
import re
import sys
import pathlib

import boto3
import botocore.session

from e2e_fixtures import PROFILES, E2ESandbox, installation, world  # noqa: F401 (fixtures)

VENV_BIN = pathlib.Path(sys.executable).parent
ARN = re.compile(
    r"^arn:aws:sts::(\d{12}):assumed-role/AWSReservedSSO_([A-Za-z0-9+=,.@_-]+)_([0-9a-f]{16})/(.+)$"
)


def assert_permission_set_arn(arn: str, account: str, permission_set: str):
    m = ARN.match(arn)
    assert m, f"not an Identity Center assumed-role ARN: {arn}"
    assert m.group(1) == account
    assert m.group(2) == permission_set


def isolate(monkeypatch, inst):
    """botocore runs credential_process with this process's environment."""
    for k, v in inst.env.items():
        if k != "PATH":
            monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
              "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)


def test_awscli_get_caller_identity_names_the_permission_set_role(world):
    world.login()
    for profile in ("dev-admin", "staging-power"):
        account, role = PROFILES[profile]
        r = world.inst.run(
            ["--profile", profile, "sts", "get-caller-identity", "--output", "json"],
            program=VENV_BIN / "aws",
            extra_env={"AWS_ENDPOINT_URL_STS": world.sandbox.url},
        )
        assert r.returncode == 0, r.stderr
        ident = json.loads(r.stdout)
        assert ident["Account"] == account
        assert_permission_set_arn(ident["Arn"], account, role)


def test_boto3_two_profiles_on_two_accounts_never_cross(world, monkeypatch):
    world.login()
    isolate(monkeypatch, world.inst)
    seen = {}
    # Interleaved calls on two sessions: each keeps its own profile's keys and account.
    for _ in range(3):
        for profile in ("dev-admin", "staging-power", "prod-ro"):
            session = boto3.Session(profile_name=profile)
            sts = session.client("sts", endpoint_url=world.sandbox.url, region_name="eu-west-1")
            ident = sts.get_caller_identity()
            account, role = PROFILES[profile]
            assert ident["Account"] == account
            assert_permission_set_arn(ident["Arn"], account, role)
            key = session.get_credentials().get_frozen_credentials().access_key
            seen.setdefault(profile, set()).add(key)
    assert all(len(keys) == 1 for keys in seen.values()), seen
    all_keys = [next(iter(k)) for k in seen.values()]
    assert len(set(all_keys)) == len(all_keys), "profiles share keys"


def test_botocore_reads_the_expiration_and_the_same_keys(world, monkeypatch):
    world.login()
    isolate(monkeypatch, world.inst)
    out = world.credential_process("dev-admin")
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    session = botocore.session.Session(profile="dev-admin")
    creds = session.get_credentials()
    frozen = creds.get_frozen_credentials()
    assert frozen.access_key == printed["AccessKeyId"]
    assert frozen.secret_key == printed["SecretAccessKey"]
    assert frozen.token == printed["SessionToken"]
    # botocore parsed the Expiration: refreshable credentials, not expiring within 15 minutes.
    assert creds.refresh_needed() is False


def test_awscli_shows_the_login_hint_when_not_signed_in(installation):
    sandbox = E2ESandbox(installation.root, auto_approve=True)
    try:
        installation.use_browser(follow=False)
        installation.write_ic_setup(sandbox.url, daemon_extra="auto_login = false")
        r = installation.run(
            ["--profile", "dev-admin", "sts", "get-caller-identity"],
            program=VENV_BIN / "aws",
            extra_env={"AWS_ENDPOINT_URL_STS": sandbox.url},
        )
        assert r.returncode != 0
        assert "rolecall login corp" in r.stderr, r.stderr
        assert r.stdout == ""
    finally:
        installation.kill_all()
        sandbox.stop()
