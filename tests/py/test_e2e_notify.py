"""Desktop notifications from the real daemon, on a private D-Bus session bus with
python-dbusmock's notification daemon (no user's desktop is touched).

The daemon signs in to the sandbox; the Identity Center session is then ended behind its back
(refresh token revoked, access token expired). The refresh scheduler's next silent renewal
fails, which must produce, once each: "sign-in needed for corp" (with `rolecall login corp`
and a "Sign in" action), "dev-admin ends in N minutes" (its credentials can no longer be
renewed), and, after the user picks "Sign in" on the notification, "signed in".
"""

import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

from conftest import bin_path
from e2e_fixtures import E2ESandbox, installation, wait_until  # noqa: F401 (fixtures)

dbus = pytest.importorskip("dbus")

NOTIFY_NAME = "org.freedesktop.Notifications"
NOTIFY_PATH = "/org/freedesktop/Notifications"
ROLE_SECS = 120


class PrivateBus:
    """dbus-daemon on a private socket, with dbusmock's notification daemon on it."""

    def __init__(self, root: pathlib.Path, capabilities: str):
        if shutil.which("dbus-daemon") is None:
            pytest.skip("dbus-daemon is not installed (tests/setup-system.sh installs it)")
        sock = root / "bus"
        self.address = f"unix:path={sock}"
        self.bus_proc = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", f"--address={self.address}"],
            stdout=subprocess.DEVNULL,
        )
        assert wait_until(sock.exists, timeout=10), "the private bus did not start"
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.address)
        self.mock_proc = subprocess.Popen(
            [sys.executable, "-m", "dbusmock", "--template", "notification_daemon",
             "-p", '{"capabilities": "%s"}' % capabilities],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.bus = dbus.bus.BusConnection(self.address)
        assert wait_until(lambda: self.bus.name_has_owner(NOTIFY_NAME), timeout=20), \
            "the mock notification daemon did not come up"
        obj = self.bus.get_object(NOTIFY_NAME, NOTIFY_PATH)
        self.mock = dbus.Interface(obj, "org.freedesktop.DBus.Mock")

    def notes(self):
        """Every Notify call so far: (id, summary, body, actions). Ids are handed out in order
        from 1 by the template (no replaces_id is used)."""
        out = []
        for _ts, method, args in self.mock.GetCalls():
            if method == "Notify":
                out.append((len(out) + 1, str(args[3]), str(args[4]), [str(a) for a in args[5]]))
        return out

    def invoke(self, note_id: int, action: str):
        self.mock.EmitSignal(NOTIFY_NAME, "ActionInvoked", "us", [dbus.UInt32(note_id), action])

    def stop(self):
        for p in (self.mock_proc, self.bus_proc):
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start_daemon(inst):
    log = open(inst.root / "rolecalld.out", "ab")
    proc = subprocess.Popen(
        [str(bin_path("rolecalld")), "--foreground"],
        env=inst.env,
        cwd=inst.home,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    sock = inst.runtime_dir / "rolecalld.sock"
    assert wait_until(lambda: any(inst.runtime_dir.glob("*.sock")) or sock.exists(), timeout=10)
    return proc


def setup(inst, bus, extra=""):
    sandbox = E2ESandbox(inst.root, auto_approve=True)
    inst.use_browser(follow=True)
    inst.write_ic_setup(sandbox.url, daemon_extra='notify_ahead = "15m"\n' + extra)
    text = inst.config.read_text()
    if "notifications = false" in text and "notifications = false" not in extra:
        text = text.replace("notifications = false", "notifications = true", 1)
    inst.config.write_text(text)
    inst.env["DBUS_SESSION_BUS_ADDRESS"] = bus.address
    sandbox.admin("POST", "/lifetimes", {"role_credentials_secs": ROLE_SECS})
    return sandbox


def end_session_and_wait(inst, sandbox):
    """Signs in, uses a profile, ends the session upstream; returns when the daemon saw it."""
    daemon = start_daemon(inst)
    r = inst.run(["login", "corp"], timeout=60)
    assert r.returncode == 0, r.stderr
    assert inst.run(["credential-process", "dev-admin"]).returncode == 0
    sandbox.admin("POST", "/revoke-refresh-tokens", {})
    sandbox.admin("POST", "/expire-access-tokens", {})
    return daemon


@pytest.fixture
def bus(tmp_path):
    b = PrivateBus(tmp_path, "body actions")
    yield b
    b.stop()


def test_sign_in_needed_ends_soon_and_signed_in_each_told_once(installation, bus):
    sandbox = setup(installation, bus)
    try:
        end_session_and_wait(installation, sandbox)
        # A login in a terminal tells nothing.
        assert bus.notes() == [], bus.notes()

        # The scheduler's refresh (due about a minute after the fetch) fails silently.
        def has(prefix):
            return any(n[1].startswith(prefix) for n in bus.notes())

        assert wait_until(lambda: has("sign-in needed for corp"), timeout=ROLE_SECS), \
            f"no sign-in notification: {bus.notes()}\n{installation.daemon_log()}"
        assert wait_until(lambda: has("dev-admin ends in"), timeout=30), bus.notes()
        signin = next(n for n in bus.notes() if n[1] == "sign-in needed for corp")
        assert "rolecall login corp" in signin[2], signin
        assert "login" in signin[3], f"the Sign in action is offered: {signin}"
        ends = next(n for n in bus.notes() if n[1].startswith("dev-admin ends in"))
        minutes = int(ends[1].split()[3])
        assert 1 <= minutes <= 2, ends  # what is left of 2-minute credentials
        assert "rolecall login corp" in ends[2], ends

        # The user picks "Sign in": a login starts (the browser opens once) and, as no terminal
        # shows it, "signed in" is told.
        launches = installation.browser_launches()
        bus.invoke(signin[0], "login")
        assert wait_until(lambda: has("signed in"), timeout=60), \
            f"{bus.notes()}\n{installation.daemon_log()}"
        assert installation.browser_launches() == launches + 1
        done = next(n for n in bus.notes() if n[1] == "signed in")
        assert done[2] == "rolecall signed in to corp"
        assert installation.run(["credential-process", "prod-ro"]).returncode == 0

        # Nothing is repeated over the following scheduler passes.
        time.sleep(5)
        summaries = [n[1] for n in bus.notes()]
        assert len(summaries) == len(set(summaries)) == 3, summaries
    finally:
        installation.kill_all()
        sandbox.stop()


def test_notifications_off_sends_nothing(installation, bus):
    sandbox = setup(installation, bus, extra="")
    text = installation.config.read_text().replace("notifications = true", "notifications = false")
    installation.config.write_text(text)
    try:
        end_session_and_wait(installation, sandbox)
        # The silent renewal fails (the daemon logs it) but nothing reaches the bus.
        assert wait_until(
            lambda: "refresh ahead failed" in installation.daemon_log(), timeout=ROLE_SECS
        ), installation.daemon_log()
        time.sleep(3)
        assert bus.notes() == []
    finally:
        installation.kill_all()
        sandbox.stop()


def test_registration_end_is_told_ahead_once(installation, bus):
    """A client registration that ends within notify_ahead: only a login renews it."""
    sandbox = setup(installation, bus)
    try:
        sandbox.admin("POST", "/lifetimes", {"client_registration_secs": 600})
        start_daemon(installation)
        r = installation.run(["login", "corp"], timeout=60)
        assert r.returncode == 0, r.stderr
        assert installation.run(["credential-process", "dev-admin"]).returncode == 0
        assert wait_until(lambda: any(n[1].startswith("corp ends in") for n in bus.notes()),
                          timeout=45), f"{bus.notes()}\n{installation.daemon_log()}"
        ends = [n for n in bus.notes() if n[1].startswith("corp ends in")]
        assert ends[0][1] in ("corp ends in 10 minutes", "corp ends in 9 minutes"), ends
        assert "rolecall login corp" in ends[0][2]
        time.sleep(3)
        assert len([n for n in bus.notes() if n[1].startswith("corp ends in")]) == 1
    finally:
        installation.kill_all()
        sandbox.stop()


def test_no_notification_server_is_no_problem(installation, tmp_path):
    """notifications = true but no session bus at all: the daemon carries on."""
    sandbox = E2ESandbox(installation.root, auto_approve=True)
    try:
        installation.use_browser(follow=True)
        installation.write_ic_setup(sandbox.url, daemon_extra='notify_ahead = "15m"')
        text = installation.config.read_text().replace("notifications = false", "notifications = true")
        installation.config.write_text(text)
        installation.env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={tmp_path}/no-such-bus"
        # A registration ending soon makes the daemon try to notify right after the login.
        sandbox.admin("POST", "/lifetimes", {"client_registration_secs": 600})
        daemon = start_daemon(installation)
        assert installation.run(["login", "corp"], timeout=60).returncode == 0
        # The scheduler looks after sources with a profile in use.
        assert installation.run(["credential-process", "dev-admin"]).returncode == 0
        assert wait_until(lambda: "corp ends in" in installation.daemon_log(), timeout=45), \
            installation.daemon_log()
        for _ in range(3):
            assert installation.run(["credential-process", "dev-admin"]).returncode == 0
        assert daemon.poll() is None, "the daemon is still running"
    finally:
        installation.kill_all()
        sandbox.stop()
