"""The sandbox's Identity Center OIDC and SSO portal, driven by boto3's real `sso-oidc` and
`sso` clients: if botocore parses every reply and raises the modelled exception classes, the
wire format matches the service models."""

import base64
import hashlib
import pathlib
import time
import urllib.parse

import boto3
import botocore.exceptions
import pytest
import requests
from botocore import UNSIGNED
from botocore.config import Config

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
START_URL = "https://d-9067c2e5f7.awsapps.com/start"
ALICE = "alice@contoso.onmicrosoft.com"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-python-side"
SEED = pathlib.Path(__file__).resolve().parents[1] / "sandbox" / "seeds" / "default.toml"


def client(service, sb, attempts=3, read_timeout=30):
    return boto3.client(
        service,
        region_name="eu-west-1",
        endpoint_url=sb.url,
        config=Config(
            signature_version=UNSIGNED,
            retries={"mode": "standard", "total_max_attempts": attempts},
            read_timeout=read_timeout,
            connect_timeout=5,
        ),
    )


def register_device(oidc):
    return oidc.register_client(
        clientName="pytest",
        clientType="public",
        scopes=["sso:account:access"],
        grantTypes=[DEVICE, "refresh_token"],
        issuerUrl=START_URL,
    )


def register_pkce(oidc):
    return oidc.register_client(
        clientName="pytest-pkce",
        clientType="public",
        scopes=["sso:account:access"],
        grantTypes=["authorization_code", "refresh_token"],
        redirectUris=["http://127.0.0.1/oauth/callback"],
        issuerUrl=START_URL,
    )


def test_only_the_directorys_start_url_signs_in(sandbox):
    """One Identity Center instance: another start or issuer URL is refused as AWS refuses an
    unknown one (InvalidRequestException), so a test with a wrong URL cannot sign in."""
    other = "https://d-9067c0ffee.awsapps.com/start"
    oidc = client("sso-oidc", sandbox, attempts=1)
    with pytest.raises(oidc.exceptions.InvalidRequestException):
        oidc.register_client(
            clientName="pytest",
            clientType="public",
            scopes=["sso:account:access"],
            grantTypes=[DEVICE, "refresh_token"],
            issuerUrl=other,
        )
    reg = register_device(oidc)
    with pytest.raises(oidc.exceptions.InvalidRequestException):
        oidc.start_device_authorization(
            clientId=reg["clientId"], clientSecret=reg["clientSecret"], startUrl=other
        )
    # The same portal written with a trailing slash and fragment, as copied from a browser.
    dev = oidc.start_device_authorization(
        clientId=reg["clientId"], clientSecret=reg["clientSecret"], startUrl=START_URL + "/#/"
    )
    assert dev["userCode"]


def device_login(sb, oidc, reg):
    dev = oidc.start_device_authorization(
        clientId=reg["clientId"], clientSecret=reg["clientSecret"], startUrl=START_URL
    )
    sb.admin_ok("POST", "/approve", {"user_code": dev["userCode"]})
    return oidc.create_token(
        clientId=reg["clientId"],
        clientSecret=reg["clientSecret"],
        grantType=DEVICE,
        deviceCode=dev["deviceCode"],
    )


def challenge(verifier):
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(sb, client_id, redirect, verifier=VERIFIER):
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "state": "py-state",
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
        "scopes": "sso:account:access",
    }
    return f"{sb.url}/authorize?{urllib.parse.urlencode(params)}"


def authorize(sb, client_id, redirect, verifier=VERIFIER):
    """Plays the browser's first step: GET /authorize without following the redirect."""
    return requests.get(authorize_url(sb, client_id, redirect, verifier), allow_redirects=False, timeout=30)


def location_query(resp):
    assert resp.status_code == 302, resp.text
    loc = urllib.parse.urlsplit(resp.headers["Location"])
    return loc, dict(urllib.parse.parse_qsl(loc.query))


def test_device_flow_and_role_credentials(sandbox):
    oidc = client("sso-oidc", sandbox)
    reg = register_device(oidc)
    now = time.time()
    assert abs(reg["clientSecretExpiresAt"] - (now + 90 * 86400)) < 5
    # A long interval so that "too fast" holds even on a loaded machine.
    sandbox.admin_ok("POST", "/lifetimes", {"device_interval_secs": 5})
    dev = oidc.start_device_authorization(
        clientId=reg["clientId"], clientSecret=reg["clientSecret"], startUrl=START_URL
    )
    assert dev["expiresIn"] == 600 and dev["interval"] == 5
    assert dev["verificationUriComplete"].endswith(dev["userCode"])

    def poll():
        return oidc.create_token(
            clientId=reg["clientId"],
            clientSecret=reg["clientSecret"],
            grantType=DEVICE,
            deviceCode=dev["deviceCode"],
        )

    with pytest.raises(oidc.exceptions.AuthorizationPendingException) as e:
        poll()
    assert e.value.response["error"] == "authorization_pending"
    with pytest.raises(oidc.exceptions.SlowDownException):
        poll()
    sandbox.admin_ok("POST", "/approve", {"user_code": dev["userCode"]})
    tok = poll()
    assert tok["tokenType"] == "Bearer" and tok["expiresIn"] == 3600 and tok["refreshToken"]

    sso = client("sso", sandbox)
    creds = sso.get_role_credentials(
        accessToken=tok["accessToken"], accountId="222222222222", roleName="DeveloperPowerUser"
    )["roleCredentials"]
    assert creds["accessKeyId"].startswith("ASIA")
    # expiration is epoch milliseconds; DeveloperPowerUser lasts 8 hours.
    assert abs(creds["expiration"] / 1000 - (time.time() + 8 * 3600)) < 5
    counts = sandbox.admin_ok("GET", "/counts")
    assert counts["sso:GetRoleCredentials"] == 1
    assert counts["ssooidc:RegisterClient"] == 1


def test_pkce_flow_refresh_and_revocation(sandbox_auto):
    sb = sandbox_auto
    oidc = client("sso-oidc", sb)
    reg = register_pkce(oidc)
    redirect = "http://127.0.0.1:47001/oauth/callback"
    loc, q = location_query(authorize(sb, reg["clientId"], redirect))
    assert (loc.hostname, loc.port, loc.path) == ("127.0.0.1", 47001, "/oauth/callback")
    assert q["state"] == "py-state"

    def redeem(code, verifier=VERIFIER, redirect_uri=redirect):
        return oidc.create_token(
            clientId=reg["clientId"],
            clientSecret=reg["clientSecret"],
            grantType="authorization_code",
            code=code,
            codeVerifier=verifier,
            redirectUri=redirect_uri,
        )

    tok = redeem(q["code"])
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        redeem(q["code"])  # single use
    _, q = location_query(authorize(sb, reg["clientId"], redirect))
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        redeem(q["code"], verifier="x" * 50)
    _, q = location_query(authorize(sb, reg["clientId"], redirect))
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        redeem(q["code"], redirect_uri="http://127.0.0.1:47002/oauth/callback")
    bad = authorize(sb, reg["clientId"], "http://attacker.example:47001/oauth/callback")
    assert bad.status_code == 400 and "Location" not in bad.headers

    refreshed = oidc.create_token(
        clientId=reg["clientId"],
        clientSecret=reg["clientSecret"],
        grantType="refresh_token",
        refreshToken=tok["refreshToken"],
    )
    sso = client("sso", sb)
    sso.list_accounts(accessToken=refreshed["accessToken"])
    sb.admin_ok("POST", "/revoke-refresh-tokens", {"client_id": reg["clientId"]})
    with pytest.raises(oidc.exceptions.InvalidGrantException):
        oidc.create_token(
            clientId=reg["clientId"],
            clientSecret=reg["clientSecret"],
            grantType="refresh_token",
            refreshToken=tok["refreshToken"],
        )


def test_oidc_error_codes(sandbox):
    oidc = client("sso-oidc", sandbox)
    reg = register_device(oidc)
    cid, secret = reg["clientId"], reg["clientSecret"]

    def start():
        return oidc.start_device_authorization(clientId=cid, clientSecret=secret, startUrl=START_URL)

    def token(**kw):
        args = {"clientId": cid, "clientSecret": secret, "grantType": DEVICE}
        args.update(kw)
        return oidc.create_token(**args)

    dev = start()
    sandbox.admin_ok("POST", "/deny", {"user_code": dev["userCode"]})
    with pytest.raises(oidc.exceptions.AccessDeniedException):
        token(deviceCode=dev["deviceCode"])

    dev = start()
    sandbox.admin_ok("POST", "/clock", {"advance_secs": 601})
    with pytest.raises(oidc.exceptions.ExpiredTokenException):
        token(deviceCode=dev["deviceCode"])

    with pytest.raises(oidc.exceptions.InvalidGrantException):
        token(deviceCode="nope")
    with pytest.raises(oidc.exceptions.InvalidRequestException):
        token()
    with pytest.raises(oidc.exceptions.InvalidClientException):
        token(clientSecret="wrong", deviceCode="x")
    with pytest.raises(oidc.exceptions.UnsupportedGrantTypeException):
        token(grantType="password")
    with pytest.raises(oidc.exceptions.UnauthorizedClientException):
        token(grantType="authorization_code", code="x", codeVerifier=VERIFIER,
              redirectUri="http://127.0.0.1:1/oauth/callback")
    with pytest.raises(oidc.exceptions.InvalidScopeException):
        token(deviceCode="x", scope=["openid"])
    with pytest.raises(oidc.exceptions.InvalidScopeException):
        oidc.register_client(clientName="x", clientType="public", scopes=["nope"])
    with pytest.raises(oidc.exceptions.InvalidRedirectUriException):
        oidc.register_client(clientName="x", clientType="public", grantTypes=["authorization_code"],
                             redirectUris=["http://example.com/cb"])

    sandbox.admin_ok("POST", "/faults", {"operation": "ssooidc:CreateToken", "kind": "status",
                                         "status": 500, "count": 10})
    with pytest.raises(oidc.exceptions.InternalServerException):
        client("sso-oidc", sandbox, attempts=1).create_token(
            clientId=cid, clientSecret=secret, grantType=DEVICE, deviceCode="x")
    sandbox.admin_ok("DELETE", "/faults", {})

    sandbox.admin_ok("POST", "/expire-client", {"client_id": cid})
    with pytest.raises(oidc.exceptions.InvalidClientException):
        start()


def test_portal_paging_and_errors(start_sandbox, tmp_path):
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED.read_text() + "\n[generate]\naccounts = 300\npermission_sets = 3\n")
    sb = start_sandbox(seed=seed)
    oidc = client("sso-oidc", sb)
    reg = register_device(oidc)
    access = device_login(sb, oidc, reg)["accessToken"]
    sso = client("sso", sb)

    accounts = []
    for page in sso.get_paginator("list_accounts").paginate(
        accessToken=access, PaginationConfig={"PageSize": 40}
    ):
        accounts += page["accountList"]
    assert len(accounts) == 303 and len({a["accountId"] for a in accounts}) == 303
    assert accounts[0] == {"accountId": "111111111111", "accountName": "dev",
                           "emailAddress": "aws-dev@contoso.example"}
    roles = []
    for page in sso.get_paginator("list_account_roles").paginate(
        accessToken=access, accountId="111111111111", PaginationConfig={"PageSize": 1}
    ):
        roles += page["roleList"]
    assert sorted(r["roleName"] for r in roles) == ["DeveloperAdmin", "DeveloperReadOnly"]
    assert sb.admin_ok("GET", "/counts")["sso:ListAccounts"] == 8

    with pytest.raises(sso.exceptions.UnauthorizedException):
        sso.list_accounts(accessToken="forged")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sso.get_role_credentials(accessToken=access, accountId="333333333333", roleName="DeveloperAdmin")
    assert e.value.response["Error"]["Code"] == "ForbiddenException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(sso.exceptions.ResourceNotFoundException):
        sso.list_account_roles(accessToken=access, accountId="999999999999")
    with pytest.raises(sso.exceptions.InvalidRequestException):
        sso.list_accounts(accessToken=access, maxResults=1, nextToken="forged")

    sb.admin_ok("POST", "/faults", {"operation": "sso:GetRoleCredentials", "kind": "throttle", "count": 10})
    with pytest.raises(sso.exceptions.TooManyRequestsException):
        client("sso", sb, attempts=1).get_role_credentials(
            accessToken=access, accountId="111111111111", roleName="DeveloperAdmin")
    sb.admin_ok("DELETE", "/faults", {})

    sso.logout(accessToken=access)
    with pytest.raises(sso.exceptions.UnauthorizedException):
        sso.get_role_credentials(accessToken=access, accountId="111111111111", roleName="DeveloperAdmin")


def test_faults_latency_and_dropped_connections(sandbox):
    oidc = client("sso-oidc", sandbox)
    access = device_login(sandbox, oidc, register_device(oidc))["accessToken"]
    args = {"accessToken": access, "accountId": "111111111111", "roleName": "DeveloperReadOnly"}

    sandbox.admin_ok("POST", "/faults", {"operation": "sso:GetRoleCredentials", "kind": "drop", "count": 5})
    with pytest.raises(botocore.exceptions.HTTPClientError):
        client("sso", sandbox, attempts=1).get_role_credentials(**args)
    sandbox.admin_ok("DELETE", "/faults", {})

    sandbox.admin_ok("POST", "/faults", {"operation": "sso:GetRoleCredentials", "kind": "latency",
                                         "latency_ms": 3000})
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client("sso", sandbox, attempts=1, read_timeout=0.5).get_role_credentials(**args)

    sandbox.admin_ok("POST", "/faults", {"operation": "sso:GetRoleCredentials", "kind": "latency",
                                         "latency_ms": 300})
    t0 = time.monotonic()
    client("sso", sandbox).get_role_credentials(**args)
    assert time.monotonic() - t0 >= 0.3

    # One 500 is retried by botocore and then succeeds.
    sandbox.admin_ok("POST", "/counts/reset", {})
    sandbox.admin_ok("POST", "/faults", {"operation": "sso:GetRoleCredentials", "kind": "status", "status": 500})
    client("sso", sandbox).get_role_credentials(**args)
    assert sandbox.admin_ok("GET", "/counts")["sso:GetRoleCredentials"] == 2

    status, body = sandbox.admin("POST", "/faults", {"operation": "x", "kind": "drop"})
    assert status == 400 and "operation" in body["error"]


def test_robot_browser_completes_pkce_through_a_loopback_callback(sandbox_auto):
    """`rolecall-sandbox browse URL` plays $BROWSER: it follows /authorize's redirect to the
    client's loopback callback, which here is a tiny server that records the code."""
    import http.server
    import subprocess
    import threading

    from conftest import bin_path

    got = {}

    class Callback(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            got.update(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)))
            body = b"signed in"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sb = sandbox_auto
        oidc = client("sso-oidc", sb)
        reg = register_pkce(oidc)
        redirect = f"http://127.0.0.1:{server.server_port}/oauth/callback"
        url = authorize_url(sb, reg["clientId"], redirect)
        out = subprocess.run([str(bin_path("rolecall-sandbox")), "browse", url],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout == ""
        assert got["state"] == "py-state"
        # The code (a secret) is never printed.
        assert got["code"] not in out.stderr
        tok = oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                grantType="authorization_code", code=got["code"],
                                codeVerifier=VERIFIER, redirectUri=redirect)
        assert tok["accessToken"]
    finally:
        server.shutdown()

    for bad in ["https://127.0.0.1/x", "http://example.com/x"]:
        out = subprocess.run([str(bin_path("rolecall-sandbox")), "browse", bad],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        assert out.stderr.startswith("rolecall-sandbox: refusing") and out.stderr.count("\n") == 1


BOTOCORE_SSO_SCRIPT = """
import json, sys, boto3
creds = boto3.Session(profile_name="sbx").get_credentials().get_frozen_credentials()
print(json.dumps({"access_key": creds.access_key}))
"""


def test_botocore_sso_provider_refreshes_through_the_sandbox(sandbox, tmp_path):
    """botocore's own SSO chain (sso-session profile, token cache, refresh_token grant, then
    GetRoleCredentials), with AWS_ENDPOINT_URL_SSO(_OIDC) pointing at the sandbox."""
    import datetime
    import json
    import os
    import subprocess
    import sys

    oidc = client("sso-oidc", sandbox)
    reg = register_device(oidc)
    tok = device_login(sandbox, oidc, reg)
    home = tmp_path / "home"
    cache = home / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True)
    iso = lambda ts: datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    # An access token that botocore considers expired: it must refresh it first.
    (cache / (hashlib.sha1(b"corp").hexdigest() + ".json")).write_text(json.dumps({
        "startUrl": START_URL,
        "region": "eu-west-1",
        "accessToken": tok["accessToken"],
        "expiresAt": iso(time.time() - 60),
        "clientId": reg["clientId"],
        "clientSecret": reg["clientSecret"],
        "registrationExpiresAt": iso(reg["clientSecretExpiresAt"]),
        "refreshToken": tok["refreshToken"],
    }))
    config = tmp_path / "config"
    config.write_text(
        "[profile sbx]\nsso_session = corp\nsso_account_id = 111111111111\n"
        "sso_role_name = DeveloperAdmin\nregion = eu-west-1\n\n"
        f"[sso-session corp]\nsso_start_url = {START_URL}\nsso_region = eu-west-1\n"
        "sso_registration_scopes = sso:account:access\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(home), AWS_CONFIG_FILE=str(config),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_ENDPOINT_URL_SSO=sandbox.url, AWS_ENDPOINT_URL_SSO_OIDC=sandbox.url)
    sandbox.admin_ok("POST", "/counts/reset", {})
    out = subprocess.run([sys.executable, "-c", BOTOCORE_SSO_SCRIPT], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    key = json.loads(out.stdout)["access_key"]
    counts = sandbox.admin_ok("GET", "/counts")
    assert counts.get("ssooidc:CreateToken") == 1, counts
    assert counts.get("sso:GetRoleCredentials") == 1, counts
    issued = {c["access_key_id"]: c for c in sandbox.admin_ok("GET", "/issued")["credentials"]}
    assert issued[key]["arn"].startswith(
        "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_DeveloperAdmin_")
    # botocore wrote the refreshed token back to its cache.
    cached = json.loads(next(cache.glob("*.json")).read_text())
    assert cached["accessToken"] != tok["accessToken"]


def test_awscli_pages_and_gets_role_credentials(start_sandbox, tmp_path):
    """The `aws` CLI (awscli in tests/.venv) paginates ListAccounts by itself and prints
    GetRoleCredentials' output from the sandbox."""
    import json
    import os
    import subprocess

    sb = start_sandbox(seed=SEED.parent / "populate-300x3.toml")
    oidc = client("sso-oidc", sb)
    access = device_login(sb, oidc, register_device(oidc))["accessToken"]
    aws = pathlib.Path(__file__).resolve().parents[1] / ".venv" / "bin" / "aws"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    common = ["--endpoint-url", sb.url, "--region", "eu-west-1", "--no-sign-request", "--output", "json"]

    out = subprocess.run([str(aws), "sso", "list-accounts", "--access-token", access, "--page-size", "100",
                          *common], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["accountList"]) == 303
    assert sb.admin_ok("GET", "/counts")["sso:ListAccounts"] == 4

    out = subprocess.run([str(aws), "sso", "get-role-credentials", "--access-token", access,
                          "--account-id", "500000000042", "--role-name", "GeneratedSet02", *common],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    creds = json.loads(out.stdout)["roleCredentials"]
    # GeneratedSet02 lasts 4 hours.
    assert abs(creds["expiration"] / 1000 - (time.time() + 4 * 3600)) < 10

    out = subprocess.run([str(aws), "sso", "get-role-credentials", "--access-token", "forged",
                          "--account-id", "111111111111", "--role-name", "DeveloperAdmin", *common],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "UnauthorizedException" in out.stderr
