// `rolecall exec` with the AWS SDK for JavaScript v3: the default Node chain tries the shared
// config and credentials files (fromIni) and web identity (fromTokenFile) before the container
// provider. A `[default]` profile with static keys in ~/.aws/credentials and ~/.aws/config, and
// web identity variables, must not be what a program under `rolecall exec` gets.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFileSync, readFileSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { setupWorld, bin } from "./e2e-harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
let world;

before(async () => {
  world = await setupWorld();
  world.rolecall("login", "corp");
});

after(() => world?.teardown());

// Runs in the child: the default chain's credentials, and who STS says they are.
const CHILD = `
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { fromNodeProviderChain } from "@aws-sdk/credential-providers";
const creds = await fromNodeProviderChain()();
const sts = new STSClient({ region: process.env.AWS_REGION, endpoint: process.argv[1], credentials: creds });
const who = await sts.send(new GetCallerIdentityCommand({}));
console.log(JSON.stringify({ key: creds.accessKeyId, arn: who.Arn, config: process.env.AWS_CONFIG_FILE }));
`;

test("a [default] profile and web identity variables are not used under rolecall exec", () => {
  const home = world.env.HOME;
  writeFileSync(
    join(home, ".aws/credentials"),
    "[default]\naws_access_key_id = AKIASTATICCREDFILE01\naws_secret_access_key = s1\n",
  );
  // The harness's config holds the profiles' credential_process lines; add a [default] too.
  const cfg = join(home, ".aws/config");
  writeFileSync(
    cfg,
    "[default]\nregion = us-east-2\naws_access_key_id = AKIASTATICCONFIGF02\naws_secret_access_key = s2\n\n" +
      readFileSync(cfg, "utf8"),
  );
  const token = join(world.root, "web-identity-token");
  writeFileSync(token, "not-a-real-token");
  const env = {
    ...process.env,
    AWS_WEB_IDENTITY_TOKEN_FILE: token,
    AWS_ROLE_ARN: "arn:aws:iam::999999999999:role/SomeoneElse",
    AWS_ROLE_SESSION_NAME: "other",
  };
  const out = execFileSync(
    bin("rolecall"),
    ["exec", "dev-admin", "--", process.execPath, "--input-type=module", "-e", CHILD, world.sandbox.url],
    { env, cwd: here, timeout: 60000, stdio: ["ignore", "pipe", "inherit"] },
  ).toString();
  const got = JSON.parse(out.trim().split("\n").pop());
  assert.match(got.key, /^ASIA/, "role credentials, not the static [default] keys");
  assert.match(got.arn, /:111111111111:assumed-role\/AWSReservedSSO_DeveloperAdmin_/);
  assert.ok(!existsSync(got.config), "the child's config file is gone with it");
});
