"""The secret store's key in a REAL Secret Service, through the real daemon and CLI: a private
D-Bus session bus with gnome-keyring-daemon (`--unlock --components=secrets`, the login keyring's password on
stdin) — no user's keyring is touched.

Checks: the key lives in the keyring (no key file), the store file is sealed and private, a
restart needs no login, the key is read once at start (the keyring may go away afterwards), and
a tampered store is reported, set aside, and never crashes the daemon. A keyring that does not
answer when the daemon starts costs nothing: the daemon says so and retries until it is back.
"""

import os
import shutil
import signal
import subprocess

import pytest

from conftest import bin_path
from e2e_fixtures import E2ESandbox, installation, wait_until  # noqa: F401 (fixtures)

dbus = pytest.importorskip("dbus")

SECRETS = "org.freedesktop.secrets"


# A session bus without service directories: a stopped keyring is not started again behind
# the test's back (the system's org.freedesktop.secrets.service would start a locked one).
BUS_WITHOUT_ACTIVATION = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class Keyring:
    def __init__(self, inst, activation=True):
        for tool in ("dbus-daemon", "gnome-keyring-daemon"):
            if shutil.which(tool) is None:
                pytest.skip(f"{tool} is not installed (tests/setup-system.sh installs it)")
        self.inst = inst
        sock = inst.root / "bus"
        self.address = f"unix:path={sock}"
        if activation:
            bus_args = ["--session", f"--address={self.address}"]
        else:
            conf = inst.root / "bus.conf"
            conf.write_text(BUS_WITHOUT_ACTIVATION.format(address=self.address))
            bus_args = [f"--config-file={conf}"]
        self.bus_proc = subprocess.Popen(
            ["dbus-daemon", "--nofork", "--nopidfile", *bus_args],
            stdout=subprocess.DEVNULL,
        )
        assert wait_until(sock.exists, timeout=10)
        self.bus = dbus.bus.BusConnection(self.address)
        self.gk = None
        self.start_keyring()

    def start_keyring(self):
        env = dict(self.inst.env, DBUS_SESSION_BUS_ADDRESS=self.address)
        self.gk = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # The login keyring's password, then EOF. (With an empty password this gnome-keyring
        # does not create a usable login collection without a prompt: every write is refused.)
        self.gk.stdin.write(b"test-password")
        self.gk.stdin.close()
        assert wait_until(lambda: self.bus.name_has_owner(SECRETS), timeout=20), \
            "gnome-keyring did not take org.freedesktop.secrets"

    def stop_keyring(self):
        self.gk.terminate()
        self.gk.wait(timeout=10)
        assert wait_until(lambda: not self.bus.name_has_owner(SECRETS), timeout=10)

    def rolecall_items(self):
        svc = dbus.Interface(
            self.bus.get_object(SECRETS, "/org/freedesktop/secrets"),
            "org.freedesktop.Secret.Service",
        )
        unlocked, locked = svc.SearchItems({"service": "rolecall"})
        return list(unlocked) + list(locked)

    def stop(self):
        for p in (self.gk, self.bus_proc):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class Daemon:
    def __init__(self, inst):
        self.inst = inst
        self.proc = None

    def start(self):
        log = open(self.inst.root / "rolecalld.out", "ab")
        self.proc = subprocess.Popen(
            [str(bin_path("rolecalld")), "--foreground"],
            env=self.inst.env,
            cwd=self.inst.home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        assert wait_until(
            lambda: self.inst.run(["daemon", "status"], timeout=10).returncode == 0
            or self.proc.poll() is not None,
            timeout=15,
        )
        assert self.proc.poll() is None, "rolecalld exited:\n" + self.output()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)

    def output(self):
        p = self.inst.root / "rolecalld.out"
        return p.read_text(errors="replace") if p.exists() else ""


def mode(path):
    return os.stat(path).st_mode & 0o777


def test_keyring_round_trip_restart_and_tampered_store(installation):
    inst = installation
    kr = Keyring(inst)
    sandbox = E2ESandbox(inst.root, auto_approve=True)
    daemon = Daemon(inst)
    try:
        inst.use_browser(follow=True)
        inst.write_ic_setup(sandbox.url, daemon_extra="auto_login = false")
        text = inst.config.read_text().replace('secret_store = "file"', 'secret_store = "keyring"')
        inst.config.write_text(text)
        inst.env["DBUS_SESSION_BUS_ADDRESS"] = kr.address

        daemon.start()
        r = inst.run(["login", "corp"], timeout=60)
        assert r.returncode == 0, r.stderr
        assert inst.run(["credential-process", "dev-admin"]).returncode == 0

        store = inst.state_dir / "secrets.bin"
        assert store.exists()
        assert not (inst.state_dir / "secrets.key").exists(), "no key file when the keyring works"
        assert len(kr.rolecall_items()) == 1, "the store's key is one keyring item"
        assert mode(store) == 0o600 and mode(inst.state_dir) == 0o700
        sealed = store.read_bytes()
        assert sealed.startswith(b"RCVAULT")
        for plain in (b"corp", b"refresh", b"client_secret", b"access_token"):
            assert plain not in sealed[20:], f"{plain!r} readable in the sealed store"

        # A restart reads the key back: no login, no browser.
        daemon.stop()
        daemon.start()
        assert inst.run(["credential-process", "staging-power"]).returncode == 0
        assert inst.browser_launches() == 1

        # Read once at start: with the keyring gone, renewing the token (a store write) works.
        kr.stop_keyring()
        sandbox.admin("POST", "/expire-access-tokens", {})
        r = inst.run(["credential-process", "prod-ro"])
        assert r.returncode == 0, r.stderr
        kr.start_keyring()

        # Tampered: one ciphertext byte flipped. The daemon starts, says so, sets the file
        # aside, and the source needs a login (with the hint), nothing worse.
        daemon.stop()
        data = bytearray(store.read_bytes())
        data[len(data) // 2] ^= 0x01
        store.write_bytes(bytes(data))
        daemon.start()
        log = inst.daemon_log() + daemon.output()
        assert "could not be decrypted" in log, log
        aside = list(inst.state_dir.glob("secrets.bin.corrupt-*"))
        assert len(aside) == 1, list(inst.state_dir.iterdir())
        r = inst.run(["credential-process", "dev-ro"])
        assert r.returncode != 0
        assert "rolecall login corp" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert inst.run(["daemon", "status"]).returncode == 0, "the daemon is still up"
    finally:
        if daemon.proc and daemon.proc.poll() is None:
            daemon.proc.kill()
        inst.kill_all()
        sandbox.stop()
        kr.stop()


def test_keyring_outage_at_start_keeps_the_store_and_recovers_without_a_restart(installation):
    inst = installation
    kr = Keyring(inst, activation=False)
    sandbox = E2ESandbox(inst.root, auto_approve=True)
    daemon = Daemon(inst)
    try:
        inst.use_browser(follow=True)
        inst.write_ic_setup(sandbox.url, daemon_extra="auto_login = false")
        text = inst.config.read_text().replace('secret_store = "file"', 'secret_store = "keyring"')
        inst.config.write_text(text)
        inst.env["DBUS_SESSION_BUS_ADDRESS"] = kr.address
        daemon.start()
        r = inst.run(["login", "corp"], timeout=60)
        assert r.returncode == 0, r.stderr
        assert inst.run(["credential-process", "dev-admin"]).returncode == 0
        daemon.stop()
        store = inst.state_dir / "secrets.bin"
        sealed = store.read_bytes()
        before = sorted(p.name for p in inst.state_dir.iterdir() if p.name.startswith("secrets"))

        # The Secret Service is away when the daemon starts (a session still coming up, a
        # keyring restarting): the daemon runs, says why the source waits, and keeps the store.
        kr.stop_keyring()
        daemon.start()
        r = inst.run(["credential-process", "dev-admin"])
        assert r.returncode != 0
        assert "keyring" in r.stderr and "retries" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        status = inst.run(["status"])
        assert "keyring does not answer" in status.stdout, status.stdout + status.stderr
        assert store.read_bytes() == sealed, "the store file is untouched"
        after = sorted(p.name for p in inst.state_dir.iterdir() if p.name.startswith("secrets"))
        assert after == before, "no key file, nothing set aside"

        # The keyring comes back: the daemon opens the store by itself; the session is intact.
        kr.start_keyring()
        assert wait_until(
            lambda: inst.run(["credential-process", "dev-admin"]).returncode == 0, timeout=30
        ), inst.daemon_log() + daemon.output()
        assert inst.browser_launches() == 1, "no new sign-in"
        log = inst.daemon_log() + daemon.output()
        assert "the secret store is open now" in log, log
        assert not (inst.state_dir / "secrets.key").exists()
    finally:
        if daemon.proc and daemon.proc.poll() is None:
            daemon.proc.kill()
        inst.kill_all()
        sandbox.stop()
        kr.stop()
