"""The sandbox's session policies through boto3: STS AssumeRole takes `Policy`, `PolicyArns`
and `SourceIdentity` with AWS's limits and refusals, and its S3 evaluates a role session's
requests against the role's permissions within the session policies (explicit deny wins)."""

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from test_sandbox_sts import NO_RETRY, error_code, role_credentials, sts

DEPLOYER = "arn:aws:iam::222222222222:role/Deployer"
RO_ROLE = "arn:aws:iam::333333333333:role/EntraReadOnly"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"


def s3(url, creds):
    return boto3.client(
        "s3", endpoint_url=url, region_name="eu-west-1", config=NO_RETRY,
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def test_assume_role_limits_and_refusals(sandbox_auto):
    url = sandbox_auto.url
    caller = sts(url, role_credentials(sandbox_auto))
    bad = {
        json.dumps({"Statement": [{"Effect": "Allow", "Action": "GetObject", "Resource": "*"}]}): "MalformedPolicyDocument",
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}): "MalformedPolicyDocument",
        "{not json": "MalformedPolicyDocument",
        "x" * 2049: "ValidationError",
    }
    for policy, code in bad.items():
        with pytest.raises(ClientError) as e:
            caller.assume_role(RoleArn=DEPLOYER, RoleSessionName="s-1", Policy=policy)
        assert error_code(e)[0] == code, policy[:40]
    # Within 2048 characters, but not once the managed policy ARNs are packed with it.
    near = json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                      "Resource": "arn:aws:s3:::" + "b" * 1950}]})
    assert len(near) <= 2048
    with pytest.raises(ClientError) as e:
        caller.assume_role(RoleArn=DEPLOYER, RoleSessionName="s-1", Policy=near,
                           PolicyArns=[{"arn": READ_ONLY}, {"arn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"}])
    assert error_code(e) == ("PackedPolicyTooLarge", 400)
    with pytest.raises(ClientError) as e:
        caller.assume_role(RoleArn=DEPLOYER, RoleSessionName="s-1", PolicyArns=[{"arn": READ_ONLY}] * 11)
    assert error_code(e)[0] == "ValidationError"
    with pytest.raises(ClientError) as e:
        caller.assume_role(RoleArn=DEPLOYER, RoleSessionName="s-1", SourceIdentity="rolecall-exec:x")
    assert error_code(e)[0] == "ValidationError"
    ok = caller.assume_role(RoleArn=DEPLOYER, RoleSessionName="s-1", PolicyArns=[{"arn": READ_ONLY}],
                            SourceIdentity="rolecall-exec@python3")
    assert ok["SourceIdentity"] == "rolecall-exec@python3" and 0 < ok["PackedPolicySize"] <= 100
    assert sts(url, ok["Credentials"]).get_caller_identity()["Arn"] == \
        "arn:aws:sts::222222222222:assumed-role/Deployer/s-1"
    # The source identity sticks: kept by the next link, another one refused.
    plain = caller.assume_role(RoleArn=DEPLOYER, RoleSessionName="s-2", SourceIdentity="alice")
    nxt = sts(url, plain["Credentials"])
    with pytest.raises(ClientError) as e:
        nxt.assume_role(RoleArn=DEPLOYER, RoleSessionName="s-3", SourceIdentity="bob")
    assert error_code(e) == ("AccessDenied", 403)
    kept = nxt.assume_role(RoleArn=DEPLOYER, RoleSessionName="s-3")
    issued = sandbox_auto.admin_ok("GET", "/issued")["credentials"]
    [k] = [c for c in issued if c["access_key_id"] == kept["Credentials"]["AccessKeyId"]]
    assert k["source_identity"] == "alice"
    # A role's own session assumes it again only when its trust policy names it.
    assert nxt.assume_role(RoleArn=DEPLOYER, RoleSessionName="s-4")  # Deployer trusts itself
    with pytest.raises(ClientError) as e:
        caller.assume_role(RoleArn=RO_ROLE, RoleSessionName="s-5")
    assert error_code(e) == ("AccessDenied", 403)


def test_s3_evaluates_session_policies(sandbox_auto):
    url = sandbox_auto.url
    base = role_credentials(sandbox_auto)
    full = s3(url, base)
    full.create_bucket(Bucket="bk1", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    full.put_object(Bucket="bk1", Key="dir/a.txt", Body=b"A")
    full.put_object(Bucket="bk1", Key="secret/k", Body=b"K")
    assert [o["Key"] for o in full.list_objects_v2(Bucket="bk1")["Contents"]] == ["dir/a.txt", "secret/k"]
    assert full.head_object(Bucket="bk1", Key="dir/a.txt")["ContentLength"] == 1
    caller = sts(url, base)
    ro = caller.assume_role(RoleArn=DEPLOYER, RoleSessionName="ro", PolicyArns=[{"arn": READ_ONLY}])
    ro = s3(url, ro["Credentials"])
    assert ro.get_object(Bucket="bk1", Key="dir/a.txt")["Body"].read() == b"A"
    assert [b["Name"] for b in ro.list_buckets()["Buckets"]] == ["bk1"]
    with pytest.raises(ClientError) as e:
        ro.put_object(Bucket="bk1", Key="x", Body=b"x")
    assert error_code(e) == ("AccessDenied", 403)
    assert "because no session policy allows the s3:PutObject action" in str(e.value)
    deny = json.dumps({"Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bk1/secret/*"}]})
    nd = s3(url, caller.assume_role(RoleArn=DEPLOYER, RoleSessionName="nd", Policy=deny)["Credentials"])
    nd.put_object(Bucket="bk1", Key="dir/b.txt", Body=b"B")
    assert nd.get_object(Bucket="bk1", Key="dir/b.txt")["Body"].read() == b"B"
    with pytest.raises(ClientError) as e:
        nd.get_object(Bucket="bk1", Key="secret/k")
    assert "with an explicit deny in a session policy" in str(e.value)
    # Signatures are checked as for STS: a wrong secret is refused.
    forged = dict(base, SecretAccessKey="x" * 40)
    with pytest.raises(ClientError) as e:
        s3(url, forged).list_buckets()
    assert error_code(e) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as e:
        full.get_object(Bucket="bk1", Key="missing")
    assert error_code(e) == ("NoSuchKey", 404)
