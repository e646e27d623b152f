"""The entra-oidc source through real AWS clients from PyPI: the `aws` CLI and boto3 read a
profile whose credential_process is `rolecall credential-process`, rolecall signs in to the
sandbox's Entra (PKCE through the robot browser) and trades the ID token with STS
AssumeRoleWithWebIdentity; the sandbox's STS then verifies the clients' SigV4 signatures."""

import json
import pathlib
import sys
import time

import boto3
import pytest

from e2e_fixtures import REGION, E2ESandbox, free_port, installation  # noqa: F401 (fixtures)
from conftest import bin_path

VENV_BIN = pathlib.Path(sys.executable).parent
TENANT = "9c0ffee0-1234-4cde-8f00-c0ffee000001"
CLIENT_ID = "11111111-1111-4111-8111-111111111111"
ROLE = "arn:aws:iam::444444444444:role/EntraOidcDeveloper"
ALICE = "alice@contoso.onmicrosoft.com"


@pytest.fixture
def oidc(installation):
    """Auto-approving sandbox, following $BROWSER, entra-oidc source `headless`, profile `oidc-dev`."""
    sandbox = E2ESandbox(installation.root, auto_approve=True)
    installation.use_browser(follow=True)
    installation.config.write_text(
        "\n".join(
            [
                "[daemon]",
                'secret_store = "file"',
                "notifications = false",
                f'container_listen = "127.0.0.1:{free_port()}"',
                "",
                "[sources.headless]",
                'kind = "entra-oidc"',
                f'tenant = "{TENANT}"',
                f'client_id = "{CLIENT_ID}"',
                f'authority = "{sandbox.url}"',
                f'endpoint_url = "{sandbox.url}"',
                f'region = "{REGION}"',
                "",
                "[profiles.oidc-dev]",
                'source = "headless"',
                f'role = "{ROLE}"',
                f'region = "{REGION}"',
                "",
            ]
        )
    )
    installation.aws_config.write_text(
        f"[profile oidc-dev]\ncredential_process = {bin_path('rolecall')} credential-process oidc-dev\n"
        f"region = {REGION}\n"
    )
    yield sandbox, installation
    installation.kill_all()
    sandbox.stop()


def aws_caller(inst, sandbox):
    return inst.run(
        ["--profile", "oidc-dev", "sts", "get-caller-identity", "--output", "json"],
        program=VENV_BIN / "aws",
        extra_env={"AWS_ENDPOINT_URL_STS": sandbox.url},
    )


def test_awscli_and_boto3_assume_the_web_identity_role(oidc, monkeypatch):
    sandbox, inst = oidc
    r = inst.run(["login", "headless"], timeout=60)
    assert r.returncode == 0, r.stderr
    assert inst.browser_launches() == 1
    assert sandbox.count("entra:DeviceCode") == 0

    r = aws_caller(inst, sandbox)
    assert r.returncode == 0, r.stderr
    ident = json.loads(r.stdout)
    assert ident["Account"] == "444444444444"
    assert ident["Arn"] == f"arn:aws:sts::444444444444:assumed-role/EntraOidcDeveloper/{ALICE}"

    # boto3 in this process runs credential_process with this process's environment.
    for k, v in inst.env.items():
        if k != "PATH":
            monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    sts = boto3.Session(profile_name="oidc-dev").client("sts", endpoint_url=sandbox.url)
    assert sts.get_caller_identity()["Arn"].endswith(f"/EntraOidcDeveloper/{ALICE}")

    # Neither the Entra tokens nor the refresh token are anywhere in plain text.
    for p in inst.root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            assert b"eyJ" not in data, f"a JWT in plain text in {p}"
            assert b'"refresh_token"' not in data, f"a refresh token in plain text in {p}"


def test_awscli_shows_the_login_hint_after_entra_revokes_the_session(oidc):
    sandbox, inst = oidc
    sandbox.admin("POST", "/lifetimes", {"entra_access_token_secs": 3})
    r = inst.run(["login", "headless"], timeout=60)
    assert r.returncode == 0, r.stderr
    sandbox.admin("POST", "/entra/revoke", {})
    # Following browser off: the daemon's own auto-login must not sign in again behind our back.
    inst.use_browser(follow=False)
    time.sleep(4)
    r = aws_caller(inst, sandbox)
    assert r.returncode != 0
    assert "rolecall login headless" in r.stderr, r.stderr
    assert sandbox.count("sts:AssumeRoleWithWebIdentity") == 0
