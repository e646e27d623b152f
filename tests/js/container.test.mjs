// The AWS SDK for JavaScript v3 against rolecall's container credentials endpoint: the
// container provider (`fromContainerMetadata`) and the default Node chain (which uses
// `fromHttp` for AWS_CONTAINER_CREDENTIALS_FULL_URI) fetch credentials with the token and make a
// real GetCallerIdentity call against the sandbox that names the role.
//
// Starts the built `rolecall-sandbox` and `rolecalld` from $ROLECALL_BIN_DIR (default
// <repo>/target/debug) in an isolated installation.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, mkdirSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { STSClient, GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { fromContainerMetadata, fromNodeProviderChain } from "@aws-sdk/credential-providers";

const here = dirname(fileURLToPath(import.meta.url));
const binDir = process.env.ROLECALL_BIN_DIR || resolve(here, "../../target/debug");
const bin = (name) => {
  const p = join(binDir, name);
  assert.ok(existsSync(p), `${p} not found: build it or set ROLECALL_BIN_DIR`);
  return p;
};

let sandbox, daemon, dir, env, sandboxUrl;

before(async () => {
  sandbox = spawn(bin("rolecall-sandbox"), ["--listen", "127.0.0.1:0", "--auto-approve"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  sandboxUrl = await new Promise((ok, fail) => {
    const rl = createInterface({ input: sandbox.stdout });
    rl.once("line", (l) => ok(l.trim()));
    setTimeout(() => fail(new Error("sandbox did not start")), 20000);
  });
  dir = mkdtempSync(join(tmpdir(), "rcjs"));
  for (const d of ["home", "state", "run"]) mkdirSync(join(dir, d), { mode: 0o700 });
  writeFileSync(
    join(dir, "config.toml"),
    `[daemon]
secret_store = "file"
notifications = false
container_listen = "127.0.0.1:0"

[sources.corp]
kind = "identity-center"
start_url = "https://d-9067c2e5f7.awsapps.com/start"
region = "eu-west-1"
endpoint_url = "${sandboxUrl}"

[profiles.dev-admin]
source = "corp"
account = "111111111111"
role = "DeveloperAdmin"
region = "eu-west-1"
`,
  );
  env = {
    PATH: `${binDir}:${process.env.PATH}`,
    HOME: join(dir, "home"),
    ROLECALL_CONFIG: join(dir, "config.toml"),
    ROLECALL_STATE_DIR: join(dir, "state"),
    ROLECALL_RUNTIME_DIR: join(dir, "run"),
    BROWSER: `${bin("rolecall-sandbox")} browse`,
  };
  daemon = spawn(bin("rolecalld"), ["--foreground"], { env, stdio: "ignore" });
  const sock = join(dir, "run", "rolecalld.sock");
  for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  execFileSync(bin("rolecall"), ["login", "corp"], { env, stdio: ["ignore", "ignore", "inherit"] });
});

after(() => {
  daemon?.kill("SIGTERM");
  sandbox?.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function containerVars(...args) {
  const out = execFileSync(bin("rolecall"), ["container", "dev-admin", ...args], { env }).toString();
  return Object.fromEntries(out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

function withEnv(vars, fn) {
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) if (k.startsWith("AWS_")) delete process.env[k];
  Object.assign(process.env, vars, {
    AWS_CONFIG_FILE: join(dir, "none"),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, "none"),
    AWS_EC2_METADATA_DISABLED: "true",
  });
  return fn().finally(() => {
    process.env = saved;
  });
}

async function whoami(credentials) {
  const sts = new STSClient({ region: "eu-west-1", endpoint: sandboxUrl, credentials });
  return (await sts.send(new GetCallerIdentityCommand({}))).Arn;
}

test("fromContainerMetadata with FULL_URI + token names the role", async () => {
  const vars = containerVars();
  await withEnv(vars, async () => {
    const provider = fromContainerMetadata({ timeout: 2000, maxRetries: 1 });
    const creds = await provider();
    assert.match(creds.accessKeyId, /^ASIA/);
    assert.ok(creds.expiration instanceof Date && creds.expiration > new Date());
    const arn = await whoami(provider);
    assert.match(arn, /:111111111111:assumed-role\/AWSReservedSSO_DeveloperAdmin_/);
  });
});

test("the default Node chain (fromHttp) with a token file names the role", async () => {
  const vars = containerVars("--token-file", join(dir, "token"));
  assert.equal(vars.AWS_CONTAINER_AUTHORIZATION_TOKEN, undefined);
  await withEnv(vars, async () => {
    const arn = await whoami(fromNodeProviderChain());
    assert.match(arn, /assumed-role\/AWSReservedSSO_DeveloperAdmin_/);
  });
});

test("a wrong token is refused", async () => {
  const vars = containerVars();
  vars.AWS_CONTAINER_AUTHORIZATION_TOKEN = "rct_wrong";
  await withEnv(vars, async () => {
    await assert.rejects(fromContainerMetadata({ timeout: 2000, maxRetries: 0 })());
  });
});
