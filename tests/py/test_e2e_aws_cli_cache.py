"""The AWS CLI v2 SSO token cache (~/.aws/sso/cache), both ways, with botocore's own code:

- botocore → rolecall: a session signed in the way `aws sso login` does (RegisterClient, device
  authorization, CreateToken) and written, then renewed, by botocore's SSOTokenProvider is taken
  by rolecall, which serves credentials without opening a browser; a token whose registration
  lacks `sso:account:access` is not taken.
- rolecall → botocore: with `share_aws_cli_cache`, rolecall's session is written there; botocore's
  SSOTokenProvider (profile with `sso_session`) reads it, renews it through the sandbox, and gets
  role credentials with it.

botocore computes its cache dir from HOME when it is imported, so it runs in a child process with
the installation's environment.
"""

import hashlib
import json
import os
import re
import stat
import subprocess
import sys

from e2e_fixtures import REGION, START_URL, installation, wait_until, world  # noqa: F401 (fixtures)

SESSION = "corp-sso"

# Signs in the way `aws sso login` does (device flow), approving the user code through the
# sandbox, and caches the registration and the token with botocore's own writer — the token
# already expired, so that botocore's SSOTokenProvider renews it and writes the file itself.
BOTOCORE_LOGIN = r"""
import datetime, json, sys, urllib.request
import botocore.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.tokens import SSOTokenProvider, _sso_json_dumps
from botocore.utils import JSONFileCache, SSOTokenLoader

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
sandbox, start_url, region, session_name, scopes = sys.argv[1:6]
scopes = scopes.split(",")
session = botocore.session.Session(profile="sso-dev")
oidc = session.create_client("sso-oidc", region_name=region,
                             config=Config(signature_version=UNSIGNED))
reg = oidc.register_client(clientName="botocore-client-" + session_name, clientType="public",
                           scopes=scopes, grantTypes=[DEVICE, "refresh_token"])
auth = oidc.start_device_authorization(clientId=reg["clientId"],
                                       clientSecret=reg["clientSecret"], startUrl=start_url)
req = urllib.request.Request(sandbox + "/_sandbox/approve", method="POST",
                             data=json.dumps({"user_code": auth["userCode"]}).encode(),
                             headers={"content-type": "application/json"})
urllib.request.urlopen(req, timeout=30).read()
tok = oidc.create_token(grantType=DEVICE,
                        clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                        deviceCode=auth["deviceCode"])
utc = datetime.timezone.utc
reg_expires = datetime.datetime.fromtimestamp(reg["clientSecretExpiresAt"], utc)
cache = JSONFileCache(SSOTokenProvider._SSO_TOKEN_CACHE_DIR, dumps_func=_sso_json_dumps)
# The registration, as the AWS CLI caches it (its own file, with the scopes it asked for).
cache["registration-" + session_name] = {
    "clientId": reg["clientId"], "clientSecret": reg["clientSecret"],
    "expiresAt": reg_expires, "scopes": scopes,
}
SSOTokenLoader(cache).save_token(start_url, {
    "startUrl": start_url, "region": region, "accessToken": tok["accessToken"],
    "expiresAt": datetime.datetime.now(utc) - datetime.timedelta(minutes=1),
    "clientId": reg["clientId"], "clientSecret": reg["clientSecret"],
    "registrationExpiresAt": reg_expires, "refreshToken": tok["refreshToken"],
}, session_name=session_name)
# botocore's own token provider renews the expired token and writes the cache file.
token = SSOTokenProvider(session).load_token().get_frozen_token()
print(json.dumps({"first": tok["accessToken"], "renewed": token.token}))
"""

# botocore's SSO credential chain for profile `sso-dev` (sso_session): SSOTokenProvider reads
# (and, when due, renews) the cached token; GetRoleCredentials and STS run on the sandbox.
BOTOCORE_CREDENTIALS = r"""
import json, sys
import botocore.session
session = botocore.session.Session(profile="sso-dev")
creds = session.get_credentials().get_frozen_credentials()
sts = session.create_client("sts", region_name="eu-west-1",
                            aws_access_key_id=creds.access_key,
                            aws_secret_access_key=creds.secret_key,
                            aws_session_token=creds.token)
ident = sts.get_caller_identity()
print(json.dumps({"access_key": creds.access_key, "account": ident["Account"]}))
"""


def cache_file(inst, key: str):
    return inst.home / ".aws/sso/cache" / (hashlib.sha1(key.encode()).hexdigest() + ".json")


def add_sso_profile(inst):
    """An AWS CLI sso-session and a profile using it, next to the fixture's profiles."""
    with open(inst.aws_config, "a") as f:
        f.write(
            f"\n[sso-session {SESSION}]\nsso_start_url = {START_URL}\nsso_region = {REGION}\n"
            "sso_registration_scopes = sso:account:access\n\n"
            f"[profile sso-dev]\nsso_session = {SESSION}\nsso_account_id = 111111111111\n"
            f"sso_role_name = DeveloperAdmin\nregion = {REGION}\n"
        )


def botocore_run(w, script: str, *args: str) -> dict:
    env = dict(w.inst.env)
    env["AWS_ENDPOINT_URL"] = w.sandbox.url
    r = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def source_status(w) -> dict:
    r = w.inst.run(["status", "--json"])
    assert r.returncode == 0, r.stderr
    return next(s for s in json.loads(r.stdout)["sources"] if s["name"] == "corp")


def test_a_session_botocore_wrote_signs_rolecall_in_without_a_browser(world):
    w = world
    add_sso_profile(w.inst)
    out = botocore_run(w, BOTOCORE_LOGIN, w.sandbox.url, START_URL, REGION, SESSION,
                       "sso:account:access")
    assert out["renewed"] != out["first"], "botocore renewed the expired token"
    written = json.loads(cache_file(w.inst, SESSION).read_text())
    assert written["accessToken"] == out["renewed"]
    registrations = w.sandbox.count("ssooidc:RegisterClient")

    assert source_status(w)["signed_in"], "the AWS CLI session counts as signed in"
    r = w.credential_process("dev-admin")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["AccountId"] == "111111111111"
    r = w.credential_process("staging-power")
    assert r.returncode == 0, r.stderr
    assert w.inst.browser_launches() == 0, "no browser: the session came from the cache"
    assert w.sandbox.count("ssooidc:RegisterClient") == registrations, "no registration of its own"
    assert "took the session from the AWS CLI's SSO cache" in w.inst.daemon_log()

    # Logged out here: that token is not taken from the cache again.
    r = w.inst.run(["logout", "corp"])
    assert r.returncode == 0, r.stderr
    assert cache_file(w.inst, SESSION).exists(), "the AWS CLI's own file is left alone"
    assert not source_status(w)["signed_in"]


def test_a_token_without_the_portal_scope_is_not_taken(world):
    w = world
    add_sso_profile(w.inst)
    # Another tool's session of the same start URL: its registration's scopes are not the portal's.
    botocore_run(w, BOTOCORE_LOGIN, w.sandbox.url, START_URL, REGION, SESSION,
                 "codewhisperer:completions")
    assert cache_file(w.inst, SESSION).exists()
    assert not source_status(w)["signed_in"], "a codewhisperer token is no portal session"
    # The portal would refuse that token; rolecall needs a sign-in of its own (which, for a
    # non-interactive caller, starts in the background).
    r = w.credential_process("dev-admin")
    assert r.returncode == 1 and "not signed in to source 'corp'" in r.stderr, r.stderr
    assert w.sandbox.count("sso:GetRoleCredentials") == 0, "the foreign token was never tried"
    assert wait_until(lambda: source_status(w)["signed_in"], timeout=30)
    assert w.inst.browser_launches() == 1


def test_botocore_reads_and_renews_the_session_rolecall_shares(world):
    w = world
    add_sso_profile(w.inst)
    cfg = w.inst.config.read_text()
    endpoint = f'endpoint_url = "{w.sandbox.url}"'
    assert endpoint in cfg
    w.inst.config.write_text(
        cfg.replace(endpoint, endpoint + f'\nshare_aws_cli_cache = true\nsso_session = "{SESSION}"', 1)
    )
    # 10-minute access tokens: botocore renews under 15 minutes left, rolecall under 5.
    w.sandbox.admin("POST", "/lifetimes", {"access_token_secs": 600})
    w.login()
    path = cache_file(w.inst, SESSION)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, oct(mode)
    shared = json.loads(path.read_text())
    assert set(shared) == {
        "startUrl", "region", "accessToken", "expiresAt", "refreshToken", "clientId",
        "clientSecret", "registrationExpiresAt",
    }, sorted(shared)
    assert shared["startUrl"] == START_URL and shared["region"] == REGION
    for k in ("expiresAt", "registrationExpiresAt"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", shared[k]), shared[k]
    creates = w.sandbox.count("ssooidc:CreateToken")

    out = botocore_run(w, BOTOCORE_CREDENTIALS)
    assert out["account"] == "111111111111"
    assert out["access_key"].startswith("ASIA")
    # botocore renewed the shared token through the sandbox with rolecall's registration and
    # wrote the renewed one back.
    assert w.sandbox.count("ssooidc:CreateToken") == creates + 1
    renewed = json.loads(path.read_text())
    assert renewed["accessToken"] != shared["accessToken"]
    assert renewed["clientId"] == shared["clientId"]

    # rolecall keeps serving on the same session, no second login.
    r = w.credential_process("dev-admin")
    assert r.returncode == 0, r.stderr
    assert w.inst.browser_launches() == 1
