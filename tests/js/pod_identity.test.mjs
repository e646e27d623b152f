// The AWS SDK for JavaScript v3 against rolecall's EKS Pod Identity-style route
// (`GET /v1/credentials`), configured as a pod is: AWS_CONTAINER_CREDENTIALS_FULL_URI and
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, here on the listener's loopback address (the SDK
// accepts 127.0.0.0/8; pods use 169.254.170.23, see tests/py/test_e2e_pod_identity.py).
//
// The token file is read again on every fetch: after a rotation (old token revoked, a new one
// written to the file) a forced refresh of the default Node chain succeeds, and the identity
// follows the token in the file.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { fromHttp, fromNodeProviderChain } from "@aws-sdk/credential-providers";
import { setupWorld, REGION } from "./e2e-harness.mjs";

let world, tokenFile;

before(async () => {
  world = await setupWorld();
  world.rolecall("login", "corp");
  tokenFile = join(world.root, "pod-token");
});

after(() => world?.teardown());

function podVars(profile) {
  const out = world.rolecall("container", profile, "--pod-identity", "--token-file", tokenFile);
  const vars = Object.fromEntries(
    out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  assert.equal(vars.AWS_CONTAINER_CREDENTIALS_FULL_URI, "http://169.254.170.23/v1/credentials");
  assert.equal(vars.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, tokenFile);
  assert.equal(vars.AWS_CONTAINER_AUTHORIZATION_TOKEN, undefined);
  return vars;
}

// The pod's variables, with the route on the listener's own (loopback) address.
function useOnLoopback(vars) {
  const listen = JSON.parse(world.rolecall("status", "--json")).daemon.container_listen;
  for (const k of Object.keys(process.env)) if (k.startsWith("AWS_CONTAINER_")) delete process.env[k];
  Object.assign(process.env, vars, {
    AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://${listen}/v1/credentials`,
    AWS_CONFIG_FILE: join(world.root, "none"),
    AWS_SHARED_CREDENTIALS_FILE: join(world.root, "none"),
  });
}

async function accountOf(credentials) {
  const sts = new STSClient({ region: REGION, endpoint: world.sandbox.url, credentials });
  return (await sts.send(new GetCallerIdentityCommand({}))).Account;
}

test("fromHttp with the token file gets the token's profile", async () => {
  useOnLoopback(podVars("dev-admin"));
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  const creds = await fromHttp({ timeout: 2000, maxRetries: 0 })();
  assert.match(creds.accessKeyId, /^ASIA/);
  assert.ok(creds.expiration > new Date());
  assert.equal(await accountOf(creds), "111111111111");
});

test("the default chain re-reads the token file on a refresh after the token is rotated", async () => {
  useOnLoopback(podVars("dev-admin"));
  const chain = fromNodeProviderChain({ timeout: 2000, maxRetries: 0 });
  const first = await chain();
  assert.equal(await accountOf(first), "111111111111");
  const oldToken = readFileSync(tokenFile, "utf8");

  // Rotate: the old token is revoked, a new one for the same profile goes into the file.
  world.rolecall("container", "dev-admin", "--revoke");
  podVars("dev-admin");
  const newToken = readFileSync(tokenFile, "utf8");
  assert.notEqual(newToken, oldToken);
  // Only a request carrying the file's new content can succeed now: the old token is dead.
  const oldFile = join(world.root, "old-token");
  writeFileSync(oldFile, oldToken, { mode: 0o600 });
  await assert.rejects(fromHttp({ timeout: 2000, maxRetries: 0, awsContainerAuthorizationTokenFile: oldFile })());
  const second = await chain({ forceRefresh: true });
  assert.match(second.accessKeyId, /^ASIA/);
  assert.equal(await accountOf(second), "111111111111");

  // The identity follows the file: a prod-ro token in it gives prod-ro's account.
  podVars("prod-ro");
  const third = await chain({ forceRefresh: true });
  assert.equal(await accountOf(third), "333333333333");

  // And with every token revoked, the refresh fails instead of serving the old keys.
  world.rolecall("container", "--revoke", "--all");
  await assert.rejects(chain({ forceRefresh: true }));
});
