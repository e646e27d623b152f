"""`rolecall setup` end to end against the sandbox, with the aws CLI as the user's client:

- flag-driven: the source is checked with the sandbox, added to an existing config (backup
  kept), signed in, populated, mirrored into the managed block of ~/.aws/config; then
  `aws sts get-caller-identity --profile …` works through credential_process;
- a start URL the sandbox's Identity Center does not know: one line, no file written;
- an existing config is not changed without --yes when there is no terminal to ask on;
- interactive: the questions answered through a pseudo-terminal.
"""

import configparser
import os
import pathlib
import pty
import select
import subprocess
import time

from e2e_fixtures import REGION, START_URL, E2ESandbox, bin_path, free_port, installation  # noqa: F401

VENV_BIN = pathlib.Path(__file__).resolve().parent.parent / ".venv" / "bin"


def daemon_only_config(inst):
    """A config the user already has: daemon settings, no source."""
    text = "\n".join([
        "# my settings",
        "[daemon]",
        'secret_store = "file"',
        "notifications = false",
        f'container_listen = "127.0.0.1:{free_port()}"',
        "",
    ])
    inst.config.write_text(text)
    inst.config.chmod(0o600)
    return text


def backups(inst):
    return sorted(inst.config.parent.glob("config.toml.*.bak"))


def managed_profiles(inst):
    cp = configparser.RawConfigParser()
    cp.read_string(inst.aws_config.read_text())
    return {s[len("profile "):]: dict(cp[s]) for s in cp.sections() if s.startswith("profile ")}


def assert_aws_cli_works(inst, sandbox, profile):
    r = inst.run(
        ["--profile", profile, "sts", "get-caller-identity", "--output", "json"],
        program=VENV_BIN / "aws",
        extra_env={"AWS_ENDPOINT_URL_STS": sandbox.url},
    )
    assert r.returncode == 0, r.stderr
    assert '"Account"' in r.stdout, r.stdout


def test_flag_driven_setup_signs_in_populates_and_serves_the_aws_cli(installation):
    inst = installation
    sandbox = E2ESandbox(inst.root, auto_approve=True)
    try:
        inst.use_browser(follow=True)
        before = daemon_only_config(inst)
        r = inst.run(
            ["setup", "--identity-center", START_URL, "--region", REGION,
             "--endpoint-url", sandbox.url, "--name", "corp", "--yes"],
            timeout=120,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert "is an IAM Identity Center portal" in r.stdout, r.stdout
        text = inst.config.read_text()
        assert text.startswith(before), text  # the user's lines are kept as they were
        assert "[sources.corp]" in text and f'start_url = "{START_URL}"' in text, text
        assert "[profiles." in text, text  # populate ran
        [bak] = backups(inst)
        assert bak.read_text() == before
        assert oct(bak.stat().st_mode & 0o777) == "0o600"
        assert oct(inst.config.stat().st_mode & 0o777) == "0o600"
        profiles = managed_profiles(inst)
        assert profiles, inst.aws_config.read_text()
        assert all("credential_process" in p for p in profiles.values()), profiles
        assert inst.browser_launches() == 1
        assert_aws_cli_works(inst, sandbox, sorted(profiles)[0])
        status = inst.run(["status"])
        assert "rolecall setup" not in status.stdout, status.stdout
    finally:
        inst.kill_all()
        sandbox.stop()


def test_an_unknown_start_url_is_one_line_and_writes_nothing(installation):
    inst = installation
    sandbox = E2ESandbox(inst.root, auto_approve=True)
    try:
        inst.use_browser(follow=True)
        before = daemon_only_config(inst)
        inst.aws_config.write_text("[default]\nregion = eu-west-1\n")
        r = inst.run(
            ["setup", "--identity-center", "https://d-0000000000.awsapps.com/start",
             "--region", REGION, "--endpoint-url", sandbox.url, "--yes"],
            timeout=60,
        )
        assert r.returncode != 0
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert "is not an IAM Identity Center portal" in lines[0], lines
        assert inst.config.read_text() == before
        assert inst.aws_config.read_text() == "[default]\nregion = eu-west-1\n"
        assert backups(inst) == []
        assert inst.browser_launches() == 0

        # No terminal and no --yes: the existing config is not touched either.
        r = inst.run(["setup", "--identity-center", START_URL, "--region", REGION,
                      "--endpoint-url", sandbox.url])
        assert r.returncode != 0
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "--yes" in r.stderr, r.stderr
        assert inst.config.read_text() == before and backups(inst) == []
    finally:
        inst.kill_all()
        sandbox.stop()


def test_no_source_status_points_at_setup(installation):
    inst = installation
    daemon_only_config(inst)
    r = inst.run(["status"])
    assert r.returncode == 0, r.stderr
    assert "rolecall setup" in r.stdout, r.stdout
    assert "rolecall populate <source>" not in r.stdout, r.stdout


class Pty:
    """rolecall on a pseudo-terminal: read what it prints, answer its questions."""

    def __init__(self, args, env, cwd):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdin=slave, stdout=slave,
                                     stderr=slave, close_fds=True, start_new_session=True)
        os.close(slave)
        self.seen = ""

    def expect(self, text, timeout=60):
        end = time.monotonic() + timeout
        while text not in self.seen:
            left = end - time.monotonic()
            assert left > 0, f"never saw {text!r}; screen so far:\n{self.seen}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    assert text in self.seen, f"ended before {text!r}:\n{self.seen}"
                self.seen += chunk.decode(errors="replace")
        # What follows the awaited text stays for the next expect.
        at = self.seen.index(text) + len(text)
        self.seen, rest = self.seen[:at], self.seen[at:]
        done = self.seen
        self.seen = rest
        return done

    def send(self, line):
        os.write(self.master, (line + "\n").encode())

    def wait(self, timeout=120):
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:
                    break
        return self.proc.wait(timeout=max(1, end - time.monotonic()))


def test_interactive_setup_answers_the_questions_on_a_terminal(installation):
    inst = installation
    sandbox = E2ESandbox(inst.root, auto_approve=True)
    try:
        inst.use_browser(follow=True)
        daemon_only_config(inst)
        env = dict(inst.env, SHELL="/bin/bash", TERM="dumb")
        t = Pty([str(bin_path("rolecall")), "setup", "--endpoint-url", sandbox.url], env, inst.home)
        t.expect("Choose 1-3:")
        t.send("1")
        t.expect("AWS access portal URL")
        t.send(START_URL)
        t.expect("Identity Center region")
        t.send(REGION)
        t.expect("Name for this source [sso]:")
        t.send("")
        t.expect("Add source 'sso' to")
        t.send("y")
        t.expect("Write a profile for every account and role")
        t.send("")  # the default: yes
        t.expect("Install rolecalld as a user service")
        t.send("n")
        t.expect("startup file?")
        t.send("y")
        code = t.wait()
        assert code == 0, t.seen
        text = inst.config.read_text()
        assert "[sources.sso]" in text and "[profiles." in text, text
        bashrc = (inst.home / ".bashrc").read_text()
        assert 'eval "$(rolecall init bash)"' in bashrc, bashrc
        profiles = managed_profiles(inst)
        assert profiles
        assert_aws_cli_works(inst, sandbox, sorted(profiles)[0])
    finally:
        inst.kill_all()
        sandbox.stop()


OIDC_TENANT = "9c0ffee0-1234-4cde-8f00-c0ffee000001"
OIDC_CLIENT = "11111111-1111-4111-8111-111111111111"
OIDC_ROLE = "arn:aws:iam::444444444444:role/EntraOidcDeveloper"


def test_entra_oidc_setup_checks_the_app_and_writes_the_role_profile(installation):
    inst = installation
    sandbox = E2ESandbox(inst.root, auto_approve=True)
    try:
        inst.use_browser(follow=True)
        before = daemon_only_config(inst)
        # An app registration the tenant does not have: one line, nothing written.
        r = inst.run(["setup", "--entra-oidc", OIDC_TENANT, "00000000-0000-4000-8000-000000000000",
                      "--authority", sandbox.url, "--endpoint-url", sandbox.url,
                      "--region", REGION, "--role", OIDC_ROLE, "--yes"])
        assert r.returncode != 0
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "refused app registration" in r.stderr, r.stderr
        assert inst.config.read_text() == before and backups(inst) == []

        r = inst.run(["setup", "--entra-oidc", OIDC_TENANT, OIDC_CLIENT,
                      "--authority", sandbox.url, "--endpoint-url", sandbox.url,
                      "--region", REGION, "--role", OIDC_ROLE, "--yes"], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "answers the device and authorization endpoints" in r.stdout, r.stdout
        text = inst.config.read_text()
        assert "[sources.entra-oidc]" in text and "[profiles.EntraOidcDeveloper]" in text, text
        assert "EntraOidcDeveloper" in managed_profiles(inst)
        r = inst.run(["--profile", "EntraOidcDeveloper", "sts", "get-caller-identity", "--output", "json"],
                     program=VENV_BIN / "aws", extra_env={"AWS_ENDPOINT_URL_STS": sandbox.url})
        assert r.returncode == 0, r.stderr
        assert '"444444444444"' in r.stdout, r.stdout
    finally:
        inst.kill_all()
        sandbox.stop()
