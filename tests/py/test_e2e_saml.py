"""entra-saml `rolecall login <source> --paste`, black-box: a SAMLResponse obtained from the
sandbox's Entra (as a user would copy it from a login started elsewhere) is pasted into the
built `rolecall`; awscli and boto3 then get both roles of the assertion through
credential_process. Forged, misaddressed and replayed pastes are one clear line, and nothing of
any response reaches a file.
"""

import base64
import html
import json
import pathlib
import re
import sys
import urllib.parse
import urllib.request
import uuid
import zlib

import boto3
import pytest

from e2e_fixtures import REGION, E2ESandbox, free_port, installation, wait_until  # noqa: F401 (fixtures)
from conftest import bin_path

VENV_BIN = pathlib.Path(sys.executable).parent
TENANT = "contoso.onmicrosoft.com"
APP = "https://signin.aws.amazon.com/saml#1"
ADMIN = "arn:aws:iam::333333333333:role/EntraAdmin"
RO = "arn:aws:iam::333333333333:role/EntraReadOnly"
ALICE = "alice@contoso.onmicrosoft.com"


@pytest.fixture
def saml(installation):
    """Auto-approving sandbox; entra-saml source `legacy` (idp_metadata from the sandbox, no
    browser available); profiles `legacy-admin` and `legacy-ro`."""
    sandbox = E2ESandbox(installation.root, auto_approve=True)
    with urllib.request.urlopen(
        f"{sandbox.url}/{TENANT}/federationmetadata/2007-06/federationmetadata.xml"
    ) as r:
        metadata = installation.root / "entra-federation-metadata.xml"
        metadata.write_bytes(r.read())
    cfg = [
        "[daemon]",
        'secret_store = "file"',
        "notifications = false",
        "auto_login = false",
        f'container_listen = "127.0.0.1:{free_port()}"',
        "",
        "[sources.legacy]",
        'kind = "entra-saml"',
        f'tenant = "{TENANT}"',
        f'app_identifier = "{APP}"',
        f'idp_metadata = "{metadata}"',
        'browser = "/nonexistent/browser"',
        f'authority = "{sandbox.url}"',
        f'endpoint_url = "{sandbox.url}"',
        f'region = "{REGION}"',
        "",
    ]
    aws = []
    for name, role in (("legacy-admin", ADMIN), ("legacy-ro", RO)):
        cfg += [f"[profiles.{name}]", 'source = "legacy"', f'role = "{role}"', f'region = "{REGION}"', ""]
        aws += [
            f"[profile {name}]",
            f"credential_process = {bin_path('rolecall')} credential-process {name}",
            f"region = {REGION}",
            "",
        ]
    installation.config.write_text("\n".join(cfg))
    installation.aws_config.write_text("\n".join(aws))
    yield sandbox, installation
    installation.kill_all()
    sandbox.stop()


def entra_response(sandbox) -> str:
    """The SAMLResponse Entra posts for an SP-initiated login made outside rolecall."""
    req = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        f'ID="id{uuid.uuid4().hex}" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">'
        f'<Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">{APP}</Issuer></samlp:AuthnRequest>'
    )
    c = zlib.compressobj(wbits=-15)
    deflated = c.compress(req.encode()) + c.flush()
    q = urllib.parse.urlencode({"SAMLRequest": base64.b64encode(deflated).decode()})
    with urllib.request.urlopen(f"{sandbox.url}/{TENANT}/saml2?{q}") as r:
        page = r.read().decode()
    m = re.search(r'name="SAMLResponse" value="([^"]+)"', page)
    assert m, "the sandbox's auto-post form has a SAMLResponse"
    return html.unescape(m.group(1))


def aws_caller(inst, sandbox, profile):
    return inst.run(
        ["--profile", profile, "sts", "get-caller-identity", "--output", "json"],
        program=VENV_BIN / "aws",
        extra_env={"AWS_ENDPOINT_URL_STS": sandbox.url},
    )


def assert_no_response_anywhere(inst, response: str):
    decoded = base64.b64decode(response)
    for p in inst.root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            assert response[:60].encode() not in data, f"the SAMLResponse is in {p}"
            assert decoded[:60] not in data, f"the decoded SAMLResponse is in {p}"
            assert b"SignatureValue" not in data, f"SAML XML in {p}"


def test_paste_gives_both_roles_to_awscli_and_boto3(saml, monkeypatch):
    sandbox, inst = saml
    response = entra_response(sandbox)
    # Wrapped at 76 columns, as a copy from a terminal often is.
    wrapped = "\n".join(response[i : i + 76] for i in range(0, len(response), 76)) + "\n"
    r = inst.run(["login", "legacy", "--paste"], input=wrapped, timeout=60)
    assert r.returncode == 0, r.stderr

    r = aws_caller(inst, sandbox, "legacy-admin")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Arn"] == f"arn:aws:sts::333333333333:assumed-role/EntraAdmin/{ALICE}"

    for k, v in inst.env.items():
        if k != "PATH":
            monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    sts = boto3.Session(profile_name="legacy-ro").client("sts", endpoint_url=sandbox.url)
    assert sts.get_caller_identity()["Arn"].endswith(f"/EntraReadOnly/{ALICE}")
    assert sandbox.count("sts:AssumeRoleWithSAML") >= 2

    # The same response again: a replay, refused by rolecall itself.
    before = sandbox.count("sts:AssumeRoleWithSAML")
    r = inst.run(["login", "legacy", "--paste"], input=response, timeout=60)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "already used" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert sandbox.count("sts:AssumeRoleWithSAML") == before
    assert_no_response_anywhere(inst, response)


def test_a_paste_redeems_each_configured_profile_and_status_lists_the_other_roles(saml):
    """With only `legacy-admin` configured, the login redeems that profile at once (no client
    asked yet), and `status` names the assertion's other role as unconfigured."""
    sandbox, inst = saml
    cfg = inst.config.read_text()
    start = cfg.index("[profiles.legacy-ro]")
    inst.config.write_text(cfg[:start])
    r = inst.run(["login", "legacy", "--paste"], input=entra_response(sandbox), timeout=60)
    assert r.returncode == 0, r.stderr

    def status():
        r = inst.run(["status", "--json"])
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def admin_expires():
        (admin,) = [p for p in status()["profiles"] if p["name"] == "legacy-admin"]
        # Absent until the background redemption has cached it: keep polling, don't raise.
        return admin.get("expires")

    assert wait_until(admin_expires), (sandbox.counts(), inst.daemon_log())
    (src,) = [s for s in status()["sources"] if s["name"] == "legacy"]
    assert src["unconfigured_roles"] == [RO], src

    # The client is served what the login redeemed: no STS call of its own. (One redemption
    # may be two calls: the sandbox's role refuses the assertion's 12 h and rolecall retries.)
    redeemed = sandbox.count("sts:AssumeRoleWithSAML")
    assert redeemed >= 1
    r = inst.run(["credential-process", "legacy-admin"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Expiration"]
    assert sandbox.count("sts:AssumeRoleWithSAML") == redeemed
    r = inst.run(["status"])
    assert r.returncode == 0, r.stderr
    assert RO in r.stdout, r.stdout


@pytest.mark.parametrize(
    "options, message",
    [
        ({"signing": "rogue"}, "does not verify"),
        ({"signing": "unsigned"}, "not signed"),
        ({"recipient": "http://127.0.0.1:9/saml"}, "AWS sign-in endpoint"),
        ({"audience": "urn:other:app"}, "Audience"),
    ],
)
def test_bad_pastes_are_one_line_and_nothing_is_kept(saml, options, message):
    sandbox, inst = saml
    sandbox.admin("POST", "/entra/saml", options)
    response = entra_response(sandbox)
    r = inst.run(["login", "legacy", "--paste"], input=response, timeout=60)
    assert r.returncode == 1, r.stdout
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert response[:40] not in r.stderr
    # Not signed in, and the profiles fail with the login hint (auto_login is off).
    r = inst.run(["credential-process", "legacy-ro"], timeout=60)
    assert r.returncode == 1 and "rolecall login legacy" in r.stderr, r.stderr
    assert sandbox.count("sts:AssumeRoleWithSAML") == 0
    assert_no_response_anywhere(inst, response)
