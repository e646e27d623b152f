"""The sandbox's Entra ID emulation checked by independent Python parts: `requests` for the
OAuth endpoints, `cryptography` to verify the RS256 tokens against the published JWKS, and
`signxml` (its own XML canonicalization and signature code) to verify the SAML assertion
against the certificate from the federation metadata.
"""

import base64
import json
import re
import time
import urllib.parse
import zlib

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree
from signxml import XMLVerifier

TENANT = "contoso.onmicrosoft.com"
TENANT_ID = "9c0ffee0-1234-4cde-8f00-c0ffee000001"
PUBLIC = "11111111-1111-4111-8111-111111111111"
CONFIDENTIAL = "22222222-2222-4222-8222-222222222222"
DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
APP_ID = "https://signin.aws.amazon.com/saml#1"
NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}


def oauth(sb, path):
    return f"{sb.url}/{TENANT}/oauth2/v2.0/{path}"


def assert_entra_error(resp, status, error, aadsts):
    assert resp.status_code == status, resp.text
    v = resp.json()
    assert v["error"] == error, v
    assert v["error_description"].startswith(f"AADSTS{aadsts}: "), v
    assert v["error_codes"] == [aadsts]
    for k in ("timestamp", "trace_id", "correlation_id"):
        assert isinstance(v[k], str)


def device_code(sb, client=PUBLIC, scope="openid profile offline_access"):
    r = requests.post(oauth(sb, "devicecode"), data={"client_id": client, "scope": scope})
    assert r.status_code == 200, r.text
    return r.json()


def poll(sb, dc, client=PUBLIC):
    return requests.post(
        oauth(sb, "token"),
        data={"grant_type": DEVICE, "client_id": client, "device_code": dc["device_code"]},
    )


def test_device_flow_errors(sandbox):
    dc = device_code(sandbox)
    assert set(dc) >= {"user_code", "device_code", "verification_uri", "expires_in", "interval", "message"}
    assert_entra_error(poll(sandbox, dc), 400, "authorization_pending", 70016)
    assert_entra_error(poll(sandbox, dc), 400, "slow_down", 70016)
    assert_entra_error(poll(sandbox, {"device_code": "bogus"}), 400, "bad_verification_code", 70000)
    sandbox.admin_ok("POST", "/deny", {"user_code": dc["user_code"]})
    time.sleep(1.1)
    assert_entra_error(poll(sandbox, dc), 400, "authorization_declined", 70000)
    dc = device_code(sandbox)
    sandbox.admin_ok("POST", "/clock", {"advance_secs": 601})
    assert_entra_error(poll(sandbox, dc), 400, "expired_token", 70020)


def test_confidential_client_is_refused(sandbox):
    dc = device_code(sandbox, client=CONFIDENTIAL, scope="openid")
    sandbox.admin_ok("POST", "/approve", {"user_code": dc["user_code"]})
    assert_entra_error(poll(sandbox, dc, client=CONFIDENTIAL), 401, "invalid_client", 7000218)


def test_public_client_presenting_a_secret_is_refused(sandbox):
    dc = device_code(sandbox)
    sandbox.admin_ok("POST", "/approve", {"user_code": dc["user_code"]})
    for field, value in [("client_secret", "s3cret"), ("client_assertion", "eyJ.x.y")]:
        r = requests.post(
            oauth(sandbox, "token"),
            data={
                "grant_type": DEVICE,
                "client_id": PUBLIC,
                "device_code": dc["device_code"],
                field: value,
            },
        )
        assert_entra_error(r, 401, "invalid_client", 700025)
    time.sleep(1.1)  # the polling interval
    assert poll(sandbox, dc).status_code == 200


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_rs256(token, jwks):
    header_b64, payload_b64, sig_b64 = token.split(".")
    header = json.loads(b64url(header_b64))
    assert header["alg"] == "RS256"
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    key = rsa.RSAPublicNumbers(
        int.from_bytes(b64url(jwk["e"]), "big"), int.from_bytes(b64url(jwk["n"]), "big")
    ).public_key()
    key.verify(
        b64url(sig_b64),
        f"{header_b64}.{payload_b64}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    return json.loads(b64url(payload_b64))


def test_tokens_verify_and_refresh_rotates_until_revoked(sandbox):
    dc = device_code(sandbox)
    sandbox.admin_ok("POST", "/approve", {"user_code": dc["user_code"]})
    r = poll(sandbox, dc)
    assert r.status_code == 200, r.text
    tok = r.json()
    assert tok["token_type"] == "Bearer"
    conf = requests.get(f"{sandbox.url}/{TENANT}/v2.0/.well-known/openid-configuration").json()
    jwks = requests.get(conf["jwks_uri"]).json()
    claims = verify_rs256(tok["id_token"], jwks)
    assert claims["iss"] == f"https://login.microsoftonline.com/{TENANT_ID}/v2.0" == conf["issuer"]
    assert claims["aud"] == PUBLIC and claims["ver"] == "2.0" and claims["tid"] == TENANT_ID
    assert claims["exp"] > claims["iat"]

    r = requests.post(
        oauth(sandbox, "token"),
        data={
            "grant_type": "refresh_token",
            "client_id": PUBLIC,
            "refresh_token": tok["refresh_token"],
            "scope": "api://rolecall-aws/.default",
        },
    )
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["refresh_token"] != tok["refresh_token"]
    access = verify_rs256(new["access_token"], jwks)
    assert access["aud"] == "api://rolecall-aws" and access["ver"] == "1.0"
    assert access["iss"] == f"https://sts.windows.net/{TENANT_ID}/"

    sandbox.admin_ok("POST", "/entra/revoke", {})
    r = requests.post(
        oauth(sandbox, "token"),
        data={"grant_type": "refresh_token", "client_id": PUBLIC, "refresh_token": new["refresh_token"]},
    )
    assert_entra_error(r, 400, "invalid_grant", 50173)


def authn_request(request_id, acs=None):
    acs_attr = f' AssertionConsumerServiceURL="{acs}"' if acs else ""
    xml = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        f'ID="{request_id}" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"{acs_attr}>'
        f'<Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">{APP_ID}</Issuer>'
        "</samlp:AuthnRequest>"
    )
    c = zlib.compressobj(wbits=-15)
    return base64.b64encode(c.compress(xml.encode()) + c.flush()).decode()


def test_saml_assertion_verifies_with_signxml(sandbox_auto):
    sb = sandbox_auto
    md = requests.get(
        f"{sb.url}/{TENANT_ID}/federationmetadata/2007-06/federationmetadata.xml"
    ).content
    md_root = etree.fromstring(md)
    cert_b64 = md_root.findtext(
        ".//md:IDPSSODescriptor/md:KeyDescriptor[@use='signing']//ds:X509Certificate", namespaces=NS
    )
    cert = x509.load_der_x509_certificate(base64.b64decode(cert_b64))

    q = urllib.parse.urlencode({"SAMLRequest": authn_request("id-signxml-1"), "RelayState": "x"})
    page = requests.get(f"{sb.url}/{TENANT}/saml2?{q}").text
    assert 'action="https://signin.aws.amazon.com/saml"' in page
    value = re.search(r'name="SAMLResponse" value="([^"]*)"', page).group(1)
    xml = base64.b64decode(value)
    root = etree.fromstring(xml)
    assert root.get("Destination") == "https://signin.aws.amazon.com/saml"
    assert root.get("InResponseTo") == "id-signxml-1"

    # signxml checks the enveloped RSA-SHA256 signature with its own c14n implementation.
    verified = XMLVerifier().verify(xml, x509_cert=cert).signed_xml
    assert etree.QName(verified).localname == "Assertion"
    assert verified.get("ID") == root.find("saml:Assertion", NS).get("ID")
    scd = verified.find(".//saml:SubjectConfirmationData", NS)
    assert scd.get("Recipient") == "https://signin.aws.amazon.com/saml"
    assert scd.get("InResponseTo") == "id-signxml-1"
    assert verified.findtext(".//saml:Audience", namespaces=NS) == APP_ID
    assert verified.findtext("saml:Issuer", namespaces=NS) == f"https://sts.windows.net/{TENANT_ID}/"
    roles = [
        v.text
        for v in verified.findall(
            ".//saml:Attribute[@Name='https://aws.amazon.com/SAML/Attributes/Role']/saml:AttributeValue",
            NS,
        )
    ]
    assert len(roles) == 2 and all(r.count(",") == 1 for r in roles)
    assert verified.find(".//saml:AuthnStatement", NS).get("SessionNotOnOrAfter")

    # The rogue key's signature does not verify against the published certificate.
    sb.admin_ok("POST", "/entra/saml", {"signing": "rogue"})
    page = requests.get(f"{sb.url}/{TENANT}/saml2?{q}").text
    rogue = base64.b64decode(re.search(r'name="SAMLResponse" value="([^"]*)"', page).group(1))
    try:
        XMLVerifier().verify(rogue, x509_cert=cert)
    except Exception as e:  # signxml raises InvalidSignature (a subclass of InvalidInput)
        assert "signature" in str(e).lower() or "certificate" in str(e).lower(), e
    else:
        raise AssertionError("a rogue-signed assertion verified")


def test_saml_request_naming_an_unregistered_acs_is_refused(sandbox_auto):
    def ask(acs):
        q = urllib.parse.urlencode({"SAMLRequest": authn_request("id-acs-1", acs)})
        return requests.get(f"{sandbox_auto.url}/{TENANT}/saml2?{q}")

    r = ask("https://evil.example/saml")
    assert r.status_code == 400 and "AADSTS50011" in r.text, r.text
    assert "SAMLResponse" not in r.text
    r = ask("https://signin.aws.amazon.com/saml")
    assert r.status_code == 200
    assert 'action="https://signin.aws.amazon.com/saml"' in r.text
