"""`kind = "aws-login"` (experimental) end to end: a session in the AWS CLI's `aws login` cache,
written by botocore's own LoginTokenLoader, served to the aws CLI through credential_process;
refreshed through the sandbox's Sign-In token endpoint with a DPoP proof it verifies; forged,
replayed and foreign-key proofs refused; a cache file others can read refused in one line.
"""

import base64
import datetime
import hashlib
import json
import os
import subprocess
import pathlib
import time
import urllib.error
import urllib.request
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from botocore.utils import JSONFileCache, LoginTokenLoader

from e2e_fixtures import E2ESandbox, bin_path, free_port, installation  # noqa: F401

VENV_BIN = pathlib.Path(__file__).resolve().parent.parent / ".venv" / "bin"
SESSION = "arn:aws:iam::111111111111:user/alice"
CLIENT_ID = "arn:aws:signin:::devtools/same-device"


def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwk_of(key):
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256",
            "x": b64url(n.x.to_bytes(32, "big")), "y": b64url(n.y.to_bytes(32, "big"))}


def proof(key, htu, *, jwk=None, iat=None, jti=None, htm="POST"):
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk or jwk_of(key)}
    claims = {"htm": htm, "htu": htu, "iat": iat or int(time.time()), "jti": jti or str(uuid.uuid4())}
    signing = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    r, s = decode_dss_signature(key.sign(signing, ec.ECDSA(hashes.SHA256())))
    return signing.decode() + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def utc(secs_from_now):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=secs_from_now)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def cli_token(out, key, expires_in):
    """The cache document as the AWS CLI writes it after `aws login`."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    return {
        "accessToken": {**out["accessToken"], "accountId": "111111111111", "expiresAt": utc(expires_in)},
        "tokenType": out["tokenType"], "clientId": CLIENT_ID, "refreshToken": out["refreshToken"],
        "idToken": out["idToken"], "dpopKey": pem,
    }


class World:
    def __init__(self, inst):
        self.inst = inst
        self.sandbox = E2ESandbox(inst.root, auto_approve=True)
        self.cache_dir = inst.home / "login-cache"
        self.cache_dir.mkdir(mode=0o700)
        # The AWS CLI side (botocore here) finds the cache by the variable; the daemon does not
        # inherit a shell's variables, so the source names the directory.
        inst.env["AWS_LOGIN_CACHE_DIRECTORY"] = str(self.cache_dir)
        self.loader = LoginTokenLoader(JSONFileCache(str(self.cache_dir)))
        cfg = ["[daemon]", 'secret_store = "file"', "notifications = false",
               f'container_listen = "127.0.0.1:{free_port()}"', "",
               "[sources.console]", 'kind = "aws-login"', f'login_session = "{SESSION}"', f'cache_dir = "{self.cache_dir}"',
               f'endpoint_url = "{self.sandbox.url}"', ""]
        aws = []
        for p in ("console-a", "console-b", "console-c"):
            cfg += [f"[profiles.{p}]", 'source = "console"', 'region = "eu-west-1"', ""]
            aws += [f"[profile {p}]", f"credential_process = {bin_path('rolecall')} credential-process {p}",
                    "region = eu-west-1", ""]
        inst.config.write_text("\n".join(cfg))
        inst.config.chmod(0o600)
        inst.aws_config.write_text("\n".join(aws))
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.out = self.sandbox.admin("POST", "/signin/sessions", {"sub": SESSION, "jwk": jwk_of(self.key)})

    def file(self):
        return self.cache_dir / (hashlib.sha256(SESSION.encode()).hexdigest() + ".json")

    def aws(self, profile):
        return self.inst.run(["--profile", profile, "sts", "get-caller-identity", "--output", "json"],
                             program=VENV_BIN / "aws",
                             extra_env={"AWS_ENDPOINT_URL_STS": self.sandbox.url})

    def refreshed(self):
        return self.sandbox.admin("GET", "/signin/sessions")["refreshed"]

    def stop(self):
        self.inst.kill_all()
        self.sandbox.stop()


def test_a_cli_cache_is_served_and_refreshed_with_a_valid_dpop_proof(installation):
    w = World(installation)
    try:
        w.loader.save_token(SESSION, cli_token(w.out, w.key, 900))
        assert w.file().exists() and oct(w.file().stat().st_mode & 0o777) == "0o600"
        r = w.aws("console-a")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["Account"] == "111111111111"
        assert w.refreshed() == 0  # 15 minutes left: used as they are

        # Near expiry: refreshed through Sign-In with a DPoP proof the sandbox verifies. (The
        # daemon restarts so that it holds no credentials of the first fetch.)
        assert w.inst.run(["daemon", "stop"]).returncode == 0
        w.loader.save_token(SESSION, cli_token(w.out, w.key, 60))
        r = w.aws("console-b")
        assert r.returncode == 0, r.stderr
        assert w.refreshed() == 1
        doc = w.loader.load_token(SESSION)  # botocore reads what rolecall wrote back
        assert doc["refreshToken"] != w.out["refreshToken"]
        assert doc["dpopKey"] == cli_token(w.out, w.key, 0)["dpopKey"]
        assert doc["idToken"] == w.out["idToken"]  # fields rolecall does not use are kept
        assert doc["accessToken"]["accessKeyId"] != w.out["accessToken"]["accessKeyId"]
        assert oct(w.file().stat().st_mode & 0o777) == "0o600"
        cp = json.loads(w.inst.run(["credential-process", "console-b"]).stdout)
        assert cp["AccessKeyId"] == doc["accessToken"]["accessKeyId"]
        assert cp.get("AccountId") in (None, "111111111111")
    finally:
        w.stop()


def post_token(url, body, dpop):
    headers = {"content-type": "application/json"}
    if dpop:
        headers["DPoP"] = dpop
    req = urllib.request.Request(url + "/v1/token", data=json.dumps(body).encode(), method="POST",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_forged_replayed_and_foreign_proofs_are_refused(installation):
    w = World(installation)
    try:
        url = w.sandbox.url
        htu = url + "/v1/token"
        body = {"clientId": CLIENT_ID, "refreshToken": w.out["refreshToken"], "grantType": "refresh_token"}
        other = ec.generate_private_key(ec.SECP256R1())
        cases = [
            (None, "required"),
            (proof(other, htu, jwk=jwk_of(w.key)), "signature"),  # forged: another key signed
            (proof(w.key, htu, htm="GET"), "htm"),
            (proof(w.key, url + "/elsewhere"), "htu"),
            (proof(w.key, htu, iat=int(time.time()) - 3600), "iat"),
            (proof(other, htu), "not the key this session is bound to"),
        ]
        for dpop, why in cases:
            status, reply = post_token(url, body, dpop)
            assert status == 400, (why, status, reply)
            assert why in reply.get("message", ""), (why, reply)
        good = proof(w.key, htu)
        status, reply = post_token(url, body, good)
        assert status == 200 and reply["refreshToken"], reply
        status, reply = post_token(url, dict(body, refreshToken=reply["refreshToken"]), good)
        assert status == 400 and "replayed" in reply["message"], reply
        # The used refresh token is gone.
        status, reply = post_token(url, body, proof(w.key, htu))
        assert status == 400 and reply["error"] == "TOKEN_EXPIRED", reply
    finally:
        w.stop()


def test_a_cache_file_others_can_read_is_refused_in_one_line(installation):
    w = World(installation)
    try:
        w.loader.save_token(SESSION, cli_token(w.out, w.key, 900))
        w.file().chmod(0o644)
        r = w.inst.run(["credential-process", "console-c"])
        assert r.returncode != 0
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert "chmod 600" in lines[0] and "0644" in lines[0], lines
        assert w.out["refreshToken"] not in r.stderr + r.stdout
    finally:
        w.stop()


# botocore's own login provider (needs awscrt, `botocore[crt]`): loads the session from the
# cache and, when it is near its end, refreshes it through Sign-In with its own DPoP proof.
BOTOCORE_REFRESH = r"""
import json, sys
import boto3
sts = boto3.Session(profile_name="login").client("sts", endpoint_url=sys.argv[1])
ident = sts.get_caller_identity()
print(json.dumps({"Account": ident["Account"]}))
"""


def test_botocore_and_rolecall_refresh_one_session_in_turn(installation):
    import pytest
    try:
        import awscrt  # noqa: F401
    except ImportError:
        pytest.skip("awscrt (botocore[crt]) is not installed: botocore cannot refresh login sessions")
    w = World(installation)
    try:
        with open(w.inst.aws_config, "a") as f:
            f.write(f"\n[profile login]\nlogin_session = {SESSION}\nregion = eu-west-1\n")
        # rolecall refreshes first and writes the session back.
        w.loader.save_token(SESSION, cli_token(w.out, w.key, 60))
        assert w.inst.run(["credential-process", "console-a"]).returncode == 0
        assert w.refreshed() == 1
        mine = w.loader.load_token(SESSION)

        # botocore takes over the session rolecall wrote: near its end, botocore refreshes it
        # through the sandbox (which verifies botocore's own DPoP proof) and saves it.
        mine["accessToken"]["expiresAt"] = utc(60)
        w.loader.save_token(SESSION, mine)
        env = dict(w.inst.env, AWS_ENDPOINT_URL_SIGNIN=w.sandbox.url)
        r = subprocess.run([str(VENV_BIN / "python"), "-c", BOTOCORE_REFRESH, w.sandbox.url],
                           env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["Account"] == "111111111111"
        assert w.refreshed() == 2
        theirs = w.loader.load_token(SESSION)
        assert theirs["refreshToken"] != mine["refreshToken"]

        # rolecall serves botocore's credentials, then refreshes with botocore's refresh token.
        assert w.inst.run(["daemon", "stop"]).returncode == 0
        cp = json.loads(w.inst.run(["credential-process", "console-b"]).stdout)
        assert cp["AccessKeyId"] == theirs["accessToken"]["accessKeyId"]
        assert w.refreshed() == 2
        assert w.inst.run(["daemon", "stop"]).returncode == 0
        theirs["accessToken"]["expiresAt"] = utc(60)
        w.loader.save_token(SESSION, theirs)
        r = w.inst.run(["credential-process", "console-c"])
        assert r.returncode == 0, r.stderr
        assert w.refreshed() == 3
    finally:
        w.stop()
