// The AWS SDK for JavaScript v3 against rolecall: `fromProcess` and the default provider chain
// read `credential_process = rolecall credential-process <profile>` from AWS_CONFIG_FILE, and
// STS GetCallerIdentity (the sandbox's STS, which checks SigV4 with the keys it issued) names
// the permission set's assumed role in the right account.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { fromProcess, fromNodeProviderChain } from "@aws-sdk/credential-providers";
import { setupWorld, PROFILES, REGION, ARN_RE } from "./e2e-harness.mjs";

let world;

before(async () => {
  world = await setupWorld();
  world.rolecall("login", "corp");
});

after(() => world?.teardown());

function assertRole(ident, profile) {
  const [account, role] = PROFILES[profile];
  assert.equal(ident.Account, account);
  const m = ARN_RE.exec(ident.Arn);
  assert.ok(m, `not an Identity Center assumed-role ARN: ${ident.Arn}`);
  assert.equal(m[1], account);
  assert.equal(m[2], role);
}

test("fromProcess gives each profile its own role", async () => {
  for (const profile of ["dev-admin", "staging-power"]) {
    const sts = new STSClient({
      region: REGION,
      endpoint: world.sandbox.url,
      credentials: fromProcess({ profile }),
    });
    assertRole(await sts.send(new GetCallerIdentityCommand({})), profile);
  }
});

test("the default provider chain with AWS_PROFILE uses credential_process", async () => {
  for (const profile of ["prod-ro", "dev-admin"]) {
    process.env.AWS_PROFILE = profile;
    try {
      const sts = new STSClient({ region: REGION, endpoint: world.sandbox.url, credentials: fromNodeProviderChain() });
      assertRole(await sts.send(new GetCallerIdentityCommand({})), profile);
    } finally {
      delete process.env.AWS_PROFILE;
    }
  }
});

test("credentials carry the expiration the SDK refreshes by", async () => {
  const creds = await fromProcess({ profile: "dev-admin" })();
  assert.ok(creds.expiration instanceof Date);
  // More than botocore's/SDKs' 15-minute refresh window left.
  assert.ok(creds.expiration.getTime() - Date.now() > 15 * 60 * 1000);
  const printed = JSON.parse(world.rolecall("credential-process", "dev-admin"));
  assert.equal(creds.accessKeyId, printed.AccessKeyId);
  assert.equal(creds.accountId ?? printed.AccountId, "111111111111");
});
