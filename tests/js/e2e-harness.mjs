// End-to-end harness for the JavaScript tests: the sandbox process, an isolated rolecall
// installation (temp HOME, config, state, runtime and AWS files) whose identity-center source
// `corp` points at the sandbox, and a `$BROWSER` that runs the sandbox's robot browser.
// The installation's variables go into process.env: node:test runs each file in its own
// process, and the SDK runs credential_process with process.env.

import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, rmSync, readdirSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:net";

const here = dirname(fileURLToPath(import.meta.url));
export const BIN_DIR = resolve(process.env.ROLECALL_BIN_DIR || join(here, "..", "..", "target", "debug"));
export const bin = (name) => join(BIN_DIR, name);
export const REGION = "eu-west-1";
export const PROFILES = {
  "dev-admin": ["111111111111", "DeveloperAdmin"],
  "staging-power": ["222222222222", "DeveloperPowerUser"],
  "prod-ro": ["333333333333", "DeveloperReadOnly"],
};

export async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export async function startSandbox() {
  const child = spawn(bin("rolecall-sandbox"), ["--listen", "127.0.0.1:0", "--auto-approve"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const url = await new Promise((res, rej) => {
    let buf = "";
    const timer = setTimeout(() => rej(new Error("sandbox printed no URL")), 20000);
    child.stdout.on("data", (d) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        res(buf.slice(0, nl).trim());
      }
    });
    child.on("exit", (code) => rej(new Error(`sandbox exited ${code}`)));
  });
  // Keep draining stdout.
  child.stdout.resume();
  return { url, stop: () => child.kill("SIGTERM"), child };
}

export async function setupWorld() {
  const sandbox = await startSandbox();
  const root = mkdtempSync(join(tmpdir(), "rcjs"));
  const home = join(root, "home");
  const runtime = join(root, "run");
  const state = join(home, ".local/state/rolecall");
  const config = join(home, ".config/rolecall/config.toml");
  const awsConfig = join(home, ".aws/config");
  for (const d of [join(home, ".config/rolecall"), join(home, ".aws"), state, runtime, join(root, "xdg")]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
  }
  const browser = join(root, "browser.sh");
  writeFileSync(browser, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${join(root, "browser.log")}'\nexec '${bin("rolecall-sandbox")}' browse "$1"\n`);
  chmodSync(browser, 0o755);

  let cfg = `[daemon]\nsecret_store = "file"\nnotifications = false\ncontainer_listen = "127.0.0.1:${await freePort()}"\n\n` +
    `[sources.corp]\nkind = "identity-center"\nstart_url = "https://d-9067c2e5f7.awsapps.com/start"\nregion = "${REGION}"\nendpoint_url = "${sandbox.url}"\n\n`;
  let aws = "";
  for (const [name, [account, role]] of Object.entries(PROFILES)) {
    cfg += `[profiles.${name}]\nsource = "corp"\naccount = "${account}"\nrole = "${role}"\nregion = "${REGION}"\n\n`;
    aws += `[profile ${name}]\ncredential_process = ${bin("rolecall")} credential-process ${name}\nregion = ${REGION}\n\n`;
  }
  writeFileSync(config, cfg);
  writeFileSync(awsConfig, aws);

  const env = {
    HOME: home,
    XDG_CONFIG_HOME: join(home, ".config"),
    XDG_STATE_HOME: join(home, ".local/state"),
    XDG_RUNTIME_DIR: join(root, "xdg"),
    ROLECALL_CONFIG: config,
    ROLECALL_STATE_DIR: state,
    ROLECALL_RUNTIME_DIR: runtime,
    AWS_CONFIG_FILE: awsConfig,
    AWS_SHARED_CREDENTIALS_FILE: join(home, ".aws/credentials"),
    AWS_EC2_METADATA_DISABLED: "true",
    BROWSER: browser,
  };
  for (const k of ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "DISPLAY", "WAYLAND_DISPLAY"]) {
    delete process.env[k];
  }
  Object.assign(process.env, env);

  const rolecall = (...args) =>
    execFileSync(bin("rolecall"), args, { env: process.env, stdio: ["ignore", "pipe", "pipe"], timeout: 60000 }).toString();

  const teardown = () => {
    // Every process that carries this installation's runtime dir: the daemon and what it ran.
    const marker = `ROLECALL_RUNTIME_DIR=${runtime}`;
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
      try {
        if (readFileSync(`/proc/${pid}/environ`).toString().split("\0").includes(marker)) {
          process.kill(Number(pid), "SIGKILL");
        }
      } catch {
        // gone already, or not ours to read
      }
    }
    sandbox.stop();
    if (existsSync(root)) rmSync(root, { recursive: true, force: true });
  };
  return { sandbox, root, env, rolecall, teardown };
}

export const ARN_RE = /^arn:aws:sts::(\d{12}):assumed-role\/AWSReservedSSO_([A-Za-z0-9+=,.@_-]+)_([0-9a-f]{16})\/(.+)$/;
