"""Gets an Identity Center access token from the sandbox through the real device flow (boto3
sso-oidc client, admin approval) and writes it where aws-sso-util / botocore look for it:
~/.aws/sso/cache/<sha1(start_url)>.json.  Usage: sso_token.py SANDBOX_URL START_URL REGION"""

import datetime
import hashlib
import json
import os
import pathlib
import sys
import urllib.request

import boto3
from botocore import UNSIGNED
from botocore.config import Config

url, start_url, region = sys.argv[1:4]
oidc = boto3.client("sso-oidc", region_name=region, endpoint_url=url,
                    config=Config(signature_version=UNSIGNED))
reg = oidc.register_client(clientName="bench", clientType="public", scopes=["sso:account:access"])
dev = oidc.start_device_authorization(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                                      startUrl=start_url)
req = urllib.request.Request(f"{url}/_sandbox/approve", method="POST",
                             data=json.dumps({"user_code": dev["userCode"]}).encode(),
                             headers={"content-type": "application/json"})
urllib.request.urlopen(req, timeout=10).read()
tok = oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                        grantType="urn:ietf:params:oauth:grant-type:device_code",
                        deviceCode=dev["deviceCode"])
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=tok["expiresIn"])
cache = pathlib.Path(os.environ["HOME"]) / ".aws/sso/cache"
cache.mkdir(parents=True, exist_ok=True)
path = cache / (hashlib.sha1(start_url.encode()).hexdigest() + ".json")
path.write_text(json.dumps({
    "startUrl": start_url,
    "region": region,
    "accessToken": tok["accessToken"],
    "expiresAt": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
}))
path.chmod(0o600)
