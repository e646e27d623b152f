"""The sandbox's STS emulation through boto3, and a cross-check against moto's STS.

The SAML response comes from the sandbox's own Entra `/saml2` page (this test plays the
browser); ID tokens from its Entra device flow. moto answers the same calls; the replies, as
boto3 parses them, must have the same shape (keys and value types), apart from the documented
differences of moto (below).
"""

import base64
import datetime
import hashlib
import json
import os
import pathlib
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import zlib

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

REPO = pathlib.Path(__file__).resolve().parents[2]
TENANT = "contoso.onmicrosoft.com"
TENANT_ID = "9c0ffee0-1234-4cde-8f00-c0ffee000001"
APP_ID = "https://signin.aws.amazon.com/saml#1"
PROVIDER = "arn:aws:iam::333333333333:saml-provider/EntraID"
ADMIN_ROLE = "arn:aws:iam::333333333333:role/EntraAdmin"
RO_ROLE = "arn:aws:iam::333333333333:role/EntraReadOnly"
OIDC_ROLE = "arn:aws:iam::444444444444:role/EntraOidcDeveloper"
CLIENT = "11111111-1111-4111-8111-111111111111"
ALICE = "alice@contoso.onmicrosoft.com"

POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
)

NO_RETRY = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"})


def sts(url, creds=None, region="eu-west-1"):
    kw = dict(aws_access_key_id="AKIDUNUSED", aws_secret_access_key="unused")
    if creds:
        kw = dict(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
    return boto3.client(
        "sts", endpoint_url=url, region_name=region, config=NO_RETRY, **kw
    )


def authn_request(passive=False):
    xml = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        f'ID="id-py-{time.time_ns()}" Version="2.0" IssueInstant="2026-01-01T00:00:00Z" '
        f'IsPassive="{"true" if passive else "false"}">'
        f'<Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">{APP_ID}</Issuer>'
        "</samlp:AuthnRequest>"
    )
    c = zlib.compressobj(wbits=-15)  # raw DEFLATE, as the Redirect binding wants
    return base64.b64encode(c.compress(xml.encode()) + c.flush()).decode()


def saml_page(url):
    q = urllib.parse.urlencode({"SAMLRequest": authn_request(), "RelayState": "py"})
    with urllib.request.urlopen(f"{url}/{TENANT}/saml2?{q}", timeout=30) as r:
        return r.read().decode()


def form_value(html, name):
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no {name} in the page"
    return m.group(1)


def saml_response(url):
    return form_value(saml_page(url), "SAMLResponse")


def post_form(url, form):
    data = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def id_token(sb, scope="openid profile offline_access"):
    """Entra device flow, approved through the admin API."""
    base = f"{sb.url}/{TENANT}/oauth2/v2.0"
    status, dc = post_form(f"{base}/devicecode", {"client_id": CLIENT, "scope": scope})
    assert status == 200, dc
    sb.admin_ok("POST", "/approve", {"user_code": dc["user_code"]})
    status, tok = post_form(
        f"{base}/token",
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": CLIENT,
            "device_code": dc["device_code"],
        },
    )
    assert status == 200, tok
    return tok


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response[
        "ResponseMetadata"
    ]["HTTPStatusCode"]


def test_saml_both_roles_then_caller_identity(sandbox_auto):
    page = saml_page(sandbox_auto.url)
    assert 'action="https://signin.aws.amazon.com/saml"' in page
    assertion = form_value(page, "SAMLResponse")
    for role, name in [(ADMIN_ROLE, "EntraAdmin"), (RO_ROLE, "EntraReadOnly")]:
        out = sts(sandbox_auto.url).assume_role_with_saml(
            RoleArn=role, PrincipalArn=PROVIDER, SAMLAssertion=assertion, DurationSeconds=900
        )
        arn = f"arn:aws:sts::333333333333:assumed-role/{name}/{ALICE}"
        assert out["AssumedRoleUser"]["Arn"] == arn
        assert out["Credentials"]["AccessKeyId"].startswith("ASIA")
        assert isinstance(out["Credentials"]["Expiration"], datetime.datetime)
        assert out["SubjectType"] == "persistent"
        assert out["Issuer"] == f"https://sts.windows.net/{TENANT_ID}/"
        me = sts(sandbox_auto.url, out["Credentials"]).get_caller_identity()
        assert me["Arn"] == arn and me["Account"] == "333333333333"
        assert me["UserId"].startswith("AROA") and me["UserId"].endswith(":" + ALICE)


def test_saml_refusals(sandbox_auto):
    sb = sandbox_auto
    cases = [
        ({"signing": "unsigned"}, "InvalidIdentityToken", 400),
        ({"signing": "rogue"}, "InvalidIdentityToken", 400),
        ({"recipient": "http://127.0.0.1:8400/saml"}, "InvalidIdentityToken", 400),
        ({"audience": "urn:other"}, "InvalidIdentityToken", 400),
    ]
    for switch, code, status in cases:
        sb.admin_ok("POST", "/entra/saml", switch)
        assertion = saml_response(sb.url)
        with pytest.raises(ClientError) as e:
            sts(sb.url).assume_role_with_saml(
                RoleArn=ADMIN_ROLE, PrincipalArn=PROVIDER, SAMLAssertion=assertion
            )
        assert error_code(e) == (code, status), switch
    sb.admin_ok("POST", "/entra/saml", {})
    good = saml_response(sb.url)
    with pytest.raises(ClientError) as e:
        sts(sb.url).assume_role_with_saml(
            RoleArn="arn:aws:iam::333333333333:role/Other",
            PrincipalArn=PROVIDER,
            SAMLAssertion=good,
        )
    assert error_code(e) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e:
        sts(sb.url).assume_role_with_saml(
            RoleArn=ADMIN_ROLE, PrincipalArn=PROVIDER, SAMLAssertion=good, DurationSeconds=7200
        )
    assert error_code(e) == ("ValidationError", 400)
    with pytest.raises(ClientError) as e:
        sts(sb.url).assume_role_with_saml(
            RoleArn=ADMIN_ROLE, PrincipalArn=PROVIDER, SAMLAssertion=good, Policy="{nope"
        )
    assert error_code(e) == ("MalformedPolicyDocument", 400)
    sb.admin_ok("POST", "/clock", {"advance_secs": 400})
    with pytest.raises(ClientError) as e:
        sts(sb.url).assume_role_with_saml(
            RoleArn=ADMIN_ROLE, PrincipalArn=PROVIDER, SAMLAssertion=good
        )
    assert error_code(e) == ("ExpiredTokenException", 400)


def test_web_identity_then_caller_identity(sandbox):
    tok = id_token(sandbox)
    out = sts(sandbox.url).assume_role_with_web_identity(
        RoleArn=OIDC_ROLE, RoleSessionName=ALICE, WebIdentityToken=tok["id_token"]
    )
    assert out["Audience"] == CLIENT
    assert out["Provider"] == f"login.microsoftonline.com/{TENANT_ID}/v2.0"
    me = sts(sandbox.url, out["Credentials"]).get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::444444444444:assumed-role/EntraOidcDeveloper/{ALICE}"
    # The Graph access token of the same response is refused.
    with pytest.raises(ClientError) as e:
        sts(sandbox.url).assume_role_with_web_identity(
            RoleArn=OIDC_ROLE, RoleSessionName=ALICE, WebIdentityToken=tok["access_token"]
        )
    assert error_code(e) == ("InvalidIdentityToken", 400)


def test_caller_identity_refusals(sandbox_auto):
    with pytest.raises(ClientError) as e:
        sts(sandbox_auto.url).get_caller_identity()
    assert error_code(e) == ("InvalidClientTokenId", 403)
    out = sts(sandbox_auto.url).assume_role_with_saml(
        RoleArn=RO_ROLE, PrincipalArn=PROVIDER, SAMLAssertion=saml_response(sandbox_auto.url)
    )
    bad = dict(out["Credentials"], SecretAccessKey="x" * 40)
    with pytest.raises(ClientError) as e:
        sts(sandbox_auto.url, bad).get_caller_identity()
    assert error_code(e) == ("SignatureDoesNotMatch", 403)
    sandbox_auto.admin_ok(
        "POST", "/faults", {"operation": "sts:GetCallerIdentity", "kind": "throttle", "count": 1}
    )
    with pytest.raises(ClientError) as e:
        sts(sandbox_auto.url, out["Credentials"]).get_caller_identity()
    assert error_code(e) == ("Throttling", 400)


def role_credentials(sb):
    return sts(sb.url).assume_role_with_saml(
        RoleArn=RO_ROLE, PrincipalArn=PROVIDER, SAMLAssertion=saml_response(sb.url)
    )["Credentials"]


def addressed_to(client, host):
    """Signs and sends GetCallerIdentity as if addressed to `host` (the connection still goes to
    the sandbox): botocore signs a Host header that is already there."""

    def set_host(request, **_):
        request.headers["Host"] = host

    client.meta.events.register("before-sign.sts.GetCallerIdentity", set_host)
    return client


def test_scope_region_must_match_the_endpoint(sandbox_auto):
    creds = role_credentials(sandbox_auto)
    url = sandbox_auto.url
    # The sandbox's own address names no region: any region the client is configured for.
    for region in ["eu-west-1", "us-east-1", "us-gov-west-1"]:
        sts(url, creds, region).get_caller_identity()
    with pytest.raises(ClientError) as e:
        sts(url, creds, "moon-base-1").get_caller_identity()
    assert error_code(e) == ("SignatureDoesNotMatch", 403)
    assert "not 'moon-base-1'" in e.value.response["Error"]["Message"]
    # The global endpoint takes us-east-1, a regional one its own region.
    addressed_to(sts(url, creds, "us-east-1"), "sts.amazonaws.com").get_caller_identity()
    with pytest.raises(ClientError) as e:
        addressed_to(sts(url, creds, "eu-west-1"), "sts.amazonaws.com").get_caller_identity()
    assert error_code(e) == ("SignatureDoesNotMatch", 403)
    regional = "sts.eu-west-1.amazonaws.com"
    addressed_to(sts(url, creds, "eu-west-1"), regional).get_caller_identity()
    with pytest.raises(ClientError) as e:
        addressed_to(sts(url, creds, "us-east-1"), regional).get_caller_identity()
    assert error_code(e) == ("SignatureDoesNotMatch", 403)


def test_signature_covers_the_body_received(sandbox_auto):
    """A signed x-amz-content-sha256 names the signed body; a request whose body was swapped
    afterwards (a replay with another body) must fail: the sandbox hashes what it received."""
    client = sts(sandbox_auto.url, role_credentials(sandbox_auto))

    def sign_body_hash(request, **_):
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()

    def swap_body(request, **_):
        swapped = b"Action=GetCallerIdentity&Version=2011-06-15&Swapped=1"
        request.body = swapped
        request.headers["Content-Length"] = str(len(swapped))

    client.meta.events.register("before-sign.sts.GetCallerIdentity", sign_body_hash)
    client.get_caller_identity()  # the header alone changes nothing
    client.meta.events.register("before-send.sts.GetCallerIdentity", swap_body)
    with pytest.raises(ClientError) as e:
        client.get_caller_identity()
    assert error_code(e) == ("SignatureDoesNotMatch", 403)


# --- cross-check with moto -------------------------------------------------------------------


@pytest.fixture
def moto_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = REPO / "tests" / ".venv" / "bin" / "moto_server"
    # One moto account backend for every call: unsigned AssumeRoleWith* calls and the signed
    # GetCallerIdentity would otherwise land in different accounts' backends.
    env = dict(os.environ, MOTO_ACCOUNT_ID="123456789012")
    proc = subprocess.Popen(
        [str(exe), "-p", str(port), "-H", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except Exception:
                time.sleep(0.05)
        else:
            pytest.fail("moto_server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def shape(v):
    """Keys and value types, recursively (what boto3 parsed, not the values)."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items() if k != "ResponseMetadata"}
    return type(v).__name__


def assert_same_shape(ours, theirs, only_theirs=(), only_ours=()):
    a, b = shape(ours), shape(theirs)
    assert set(b) - set(a) == set(only_theirs), (a, b)
    assert set(a) - set(b) == set(only_ours), (a, b)
    for k in set(a) & set(b):
        assert a[k] == b[k], (k, a[k], b[k])


@pytest.fixture
def single_role_sandbox(start_sandbox, tmp_path):
    """moto reads the first comma field of a single Role value as the role ARN."""
    seed = (REPO / "tests" / "sandbox" / "seeds" / "default.toml").read_text()
    block = (
        "[[saml_app.roles]]\n"
        'role = "arn:aws:iam::333333333333:role/EntraReadOnly"\n'
        'principal = "arn:aws:iam::333333333333:saml-provider/EntraID"\n'
    )
    assert block in seed
    path = tmp_path / "single-role.toml"
    path.write_text(seed.replace(block, ""))
    return start_sandbox(auto_approve=True, seed=path)


def test_same_shapes_as_moto(single_role_sandbox, moto_url):
    sb = single_role_sandbox
    assertion = saml_response(sb.url)
    kw = dict(RoleArn=ADMIN_ROLE, PrincipalArn=PROVIDER, SAMLAssertion=assertion)
    ours = sts(sb.url).assume_role_with_saml(**kw)
    theirs = sts(moto_url).assume_role_with_saml(**kw)
    # moto always sends PackedPolicySize; AWS (and the sandbox) only with a session policy.
    assert_same_shape(ours, theirs, only_theirs={"PackedPolicySize"})
    ours = sts(sb.url).assume_role_with_saml(Policy=POLICY, **kw)
    theirs = sts(moto_url).assume_role_with_saml(Policy=POLICY, **kw)
    assert_same_shape(ours, theirs)
    assert theirs["AssumedRoleUser"]["Arn"].endswith(f":assumed-role/EntraAdmin/{ALICE}")

    me_ours = sts(sb.url, ours["Credentials"]).get_caller_identity()
    me_theirs = sts(moto_url, theirs["Credentials"]).get_caller_identity()
    assert_same_shape(me_ours, me_theirs)
    assert me_ours["Arn"] == ours["AssumedRoleUser"]["Arn"]
    assert me_theirs["Arn"] == theirs["AssumedRoleUser"]["Arn"]

    tok = id_token(sb)["id_token"]
    kw = dict(RoleArn=OIDC_ROLE, RoleSessionName="alice", WebIdentityToken=tok, Policy=POLICY)
    ours = sts(sb.url).assume_role_with_web_identity(**kw)
    theirs = sts(moto_url).assume_role_with_web_identity(**kw)
    # moto leaves out what AWS returns for OIDC tokens (subject, provider, audience).
    assert_same_shape(
        ours, theirs, only_ours={"SubjectFromWebIdentityToken", "Provider", "Audience"}
    )
