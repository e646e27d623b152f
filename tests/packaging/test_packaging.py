"""Packaging tests: the systemd units and launchd agent in packaging/, `rolecall service` on a
machine without a user manager, socket activation of the real rolecalld, packaging/install.sh,
and the Debian package (root only: it installs into /usr and removes itself again).

Run with the tests venv: tests/.venv/bin/pytest tests/packaging (tests/run does, as a stage).
Binaries come from $ROLECALL_BIN_DIR (default <repo>/target/debug), like the other black-box
tests; the fixtures are tests/py's.
"""

import json
import os
import pathlib
import plistlib
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "py"))

from conftest import bin_dir, bin_path  # noqa: E402
from e2e_fixtures import installation, world, wait_until  # noqa: E402,F401

PACKAGING = REPO / "packaging"
SERVICE_TEMPLATE = PACKAGING / "systemd" / "rolecalld.service"
SOCKET_UNIT = PACKAGING / "systemd" / "rolecalld.socket"
PLIST = PACKAGING / "launchd" / "com.rolecall.rolecalld.plist"


def need(program: str):
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (tests/setup-system.sh installs it)")


def render_service(daemon: pathlib.Path) -> str:
    return SERVICE_TEMPLATE.read_text().replace("@ROLECALLD@", str(daemon))


def cargo_env() -> dict:
    """The environment for scripts that run cargo: the same target dir as the binaries."""
    env = dict(os.environ)
    bins = bin_dir().resolve()
    if bins.name == "debug":
        env["CARGO_TARGET_DIR"] = str(bins.parent)
    return env


def systemd_verify(unit_dir: pathlib.Path, man_dir: pathlib.Path, *units: str):
    """`systemd-analyze verify` in user and system mode; returns (exit code, all output).
    MANPATH makes the Documentation=man:rolecall(1) check find the generated page."""
    runtime = unit_dir / "xdg-runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), MANPATH=str(man_dir))
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    rc, out = 0, ""
    for mode in (["--user"], []):
        r = subprocess.run(
            ["systemd-analyze", "verify", *mode, *units],
            cwd=unit_dir, env=env, capture_output=True, text=True, timeout=60,
        )
        rc = rc or r.returncode
        out += r.stdout + r.stderr
    return rc, out


@pytest.fixture
def man_dir(tmp_path):
    d = tmp_path / "man"
    r = subprocess.run([str(bin_path("rolecall")), "man", "--out-dir", str(d / "man1")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert (d / "man1" / "rolecall.1").is_file()
    return d


# --- unit files and agent ------------------------------------------------------------------


def test_systemd_units_verify_with_the_daemon_path_filled_in(tmp_path, man_dir):
    need("systemd-analyze")
    units = tmp_path / "units"
    units.mkdir()
    (units / "rolecalld.service").write_text(render_service(bin_path("rolecalld").resolve()))
    shutil.copy(SOCKET_UNIT, units / "rolecalld.socket")
    rc, out = systemd_verify(units, man_dir, "./rolecalld.service", "./rolecalld.socket")
    assert rc == 0 and out.strip() == "", out


def test_systemd_verify_catches_a_broken_unit(tmp_path, man_dir):
    """The check above can fail: a misspelt key and a missing binary are reported."""
    need("systemd-analyze")
    units = tmp_path / "units"
    units.mkdir()
    text = render_service(pathlib.Path("/nonexistent/rolecalld"))
    text = text.replace("LockPersonality=yes", "LockPersonalty=yes")
    (units / "rolecalld.service").write_text(text)
    shutil.copy(SOCKET_UNIT, units / "rolecalld.socket")
    rc, out = systemd_verify(units, man_dir, "./rolecalld.service", "./rolecalld.socket")
    assert "LockPersonalty" in out
    assert rc != 0 and "/nonexistent/rolecalld" in out


def test_units_say_what_the_issue_asks():
    service = SERVICE_TEMPLATE.read_text()
    socket_unit = SOCKET_UNIT.read_text()
    for line in [
        "ExecStart=@ROLECALLD@ --foreground",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=%S/rolecall %t/rolecall",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "LockPersonality=yes",
    ]:
        assert f"\n{line}\n" in service, line
    for line in ["ListenStream=%t/rolecall/rolecalld.sock", "SocketMode=0600", "DirectoryMode=0700"]:
        assert f"\n{line}\n" in socket_unit, line


def test_launchd_plist_parses_and_has_the_expected_keys():
    with open(PLIST, "rb") as f:
        agent = plistlib.load(f)
    assert agent["Label"] == "com.rolecall.rolecalld"
    assert agent["ProgramArguments"] == ["@ROLECALLD@", "--foreground"]
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["Umask"] == 0o077
    for key in ("StandardOutPath", "StandardErrorPath"):
        assert agent[key].startswith("@LOG_DIR@/rolecalld."), agent[key]
    assert set(agent) == {
        "Label", "ProgramArguments", "RunAtLoad", "KeepAlive", "ThrottleInterval", "Umask",
        "StandardOutPath", "StandardErrorPath",
    }


def test_homebrew_formula_is_valid_ruby_with_the_expected_parts():
    need("ruby")
    formula = PACKAGING / "homebrew" / "rolecall.rb"
    r = subprocess.run(["ruby", "-wc", str(formula)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stdout + r.stderr
    text = formula.read_text()
    for part in ['std_cargo_args(path: "cli")', 'std_cargo_args(path: "daemon")',
                 'generate_completions_from_executable(bin/"rolecall", "completions")',
                 '"man", "--out-dir", man1', "service do",
                 'run [opt_bin/"rolecalld", "--foreground"]']:
        assert part in text, part


# --- rolecall service without a user manager (this machine, CI containers) -----------------


def test_service_install_refuses_clearly_without_a_user_manager(installation):
    need("systemctl")
    inst = installation
    # An empty runtime dir and no bus address: systemctl --user finds no manager, as here.
    inst.env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    r = inst.run(["service", "install"])
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("rolecall: systemctl --user cannot reach a systemd user manager ("), lines[0]
    assert "Failed to connect to bus" in lines[0]
    assert "nothing was installed" in lines[0]
    assert not (inst.home / ".config" / "systemd").exists(), "install wrote files anyway"

    r = inst.run(["service", "status"])
    assert r.returncode == 3, r.stdout + r.stderr
    assert "not installed as a systemd user service" in r.stdout

    r = inst.run(["service", "uninstall"])
    assert r.returncode == 0, r.stderr
    assert "not installed" in r.stdout


def test_service_uninstall_without_a_manager_removes_the_files_and_links(installation):
    """Files left by an install on a machine whose user manager is gone: uninstall still
    cleans them (and the enablement links), and says it could not reach systemd."""
    need("systemctl")
    inst = installation
    unit_dir = inst.home / ".config" / "systemd" / "user"
    (unit_dir / "sockets.target.wants").mkdir(parents=True)
    (unit_dir / "rolecalld.service").write_text(render_service(bin_path("rolecalld").resolve()))
    shutil.copy(SOCKET_UNIT, unit_dir / "rolecalld.socket")
    os.symlink(unit_dir / "rolecalld.socket", unit_dir / "sockets.target.wants" / "rolecalld.socket")

    r = inst.run(["service", "status"])
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"Starts: {bin_path('rolecalld').resolve()} --foreground" in r.stdout
    assert "cannot reach a user manager" in r.stdout

    r = inst.run(["service", "uninstall"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "removing the files only" in r.stdout
    assert not (unit_dir / "rolecalld.service").exists()
    assert not (unit_dir / "rolecalld.socket").exists()
    assert not os.path.lexists(unit_dir / "sockets.target.wants" / "rolecalld.socket")


# --- socket activation ----------------------------------------------------------------------


def test_socket_activation_serves_credential_process(world):
    """systemd-socket-activate passes the listening socket the way systemd does (LISTEN_FDS,
    LISTEN_PID); the daemon serves on it, and no second daemon is autostarted."""
    need("systemd-socket-activate")
    inst = world.inst
    sock = inst.runtime_dir / "rolecalld.sock"
    act_log = open(inst.root / "activate.log", "wb")
    # systemd-socket-activate hands the daemon only a few variables of its own environment
    # (systemd hands it the user manager's): pass the installation's explicitly.
    setenv = [f"--setenv={k}={v}" for k, v in inst.env.items()]
    act = subprocess.Popen(
        ["systemd-socket-activate", "-l", str(sock), *setenv,
         str(bin_path("rolecalld")), "--foreground"],
        env=inst.env, stdin=subprocess.DEVNULL, stdout=act_log, stderr=act_log,
    )
    try:
        assert wait_until(sock.exists, timeout=10), "systemd-socket-activate did not listen"
        r = world.login()
        r = world.credential_process("dev-admin")
        assert r.returncode == 0, r.stderr
        creds = json.loads(r.stdout)
        assert creds["Version"] == 1 and creds["AccessKeyId"], creds
        pids = inst.daemon_pids()
        assert len(pids) == 1, f"expected one rolecalld, found {pids}"
        # It is the activated one: systemd-socket-activate execs the daemon in place.
        assert pids[0] == act.pid, (pids, act.pid)
        assert "activated=true" in inst.daemon_log().replace(" = ", "="), inst.daemon_log()[-2000:]
    finally:
        act.terminate()
        try:
            act.wait(timeout=10)
        except subprocess.TimeoutExpired:
            act.kill()
            act.wait()
        act_log.close()


# --- the unit's filesystem restrictions, applied by hand ---------------------------------------

# What ProtectSystem=strict + ReadWritePaths= + PrivateTmp= do, in a private mount namespace:
# every mount read-only except /proc, /sys, /dev and the read-write paths, and empty /tmp and
# /var/tmp. The script proves the restriction holds before it starts the daemon.
HARDEN = r"""
set -eu
for p in "$@"; do mount --bind "$p" "$p"; done
findmnt -rn -o TARGET | while read -r m; do
  m="$(printf '%b' "$m")"
  case "$m" in /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;; esac
  keep=0
  for p in "$@"; do [ "$m" = "$p" ] && keep=1; done
  [ "$keep" = 1 ] || mount -o remount,bind,ro "$m" 2>/dev/null || true
done
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
if touch "$HOME/.rw-probe" 2>/dev/null; then echo "home is writable" >&2; exit 97; fi
for p in "$@"; do touch "$p/.rw-probe" && rm "$p/.rw-probe"; done
exec "$ROLECALLD" --foreground
"""


def test_daemon_serves_within_the_units_filesystem_restrictions(tmp_path):
    """The daemon needs no write access beyond the unit's ReadWritePaths= (and a private
    /tmp): a login and credential_process work with everything else read-only."""
    if os.geteuid() != 0:
        pytest.skip("a private mount namespace needs root (CI runs as root)")
    need("unshare")
    need("findmnt")
    from e2e_fixtures import E2ESandbox, Installation, World

    # Outside /tmp: the private /tmp would hide the installation, as it would hide nothing of
    # systemd's (%S is ~/.local/state, %t is /run/user/<uid>).
    root = pathlib.Path(tempfile.mkdtemp(prefix="rc-harden-", dir=os.path.expanduser("~")))
    inst = Installation(root)
    sandbox = None
    daemon = None
    try:
        xdg = pathlib.Path(inst.env["XDG_RUNTIME_DIR"])
        inst.runtime_dir = xdg / "rolecall"
        inst.runtime_dir.mkdir(mode=0o700)
        inst.env["ROLECALL_RUNTIME_DIR"] = str(inst.runtime_dir)
        line = next(l for l in SERVICE_TEMPLATE.read_text().splitlines()
                    if l.startswith("ReadWritePaths="))
        rw = [w.replace("%S", inst.env["XDG_STATE_HOME"]).replace("%t", str(xdg))
              for w in line.split("=", 1)[1].split()]
        assert str(inst.state_dir) in rw and str(inst.runtime_dir) in rw, rw

        sandbox = E2ESandbox(root, auto_approve=True)
        # What runs inside the namespace is copied beside the installation: the checkout may
        # itself live under /tmp (CI clones there), which the unit's private /tmp would hide.
        # The daemon, and the browser stand-in it launches (the sandbox's robot browser).
        daemon_bin = root / "rolecalld"
        shutil.copy2(bin_path("rolecalld").resolve(), daemon_bin)
        robot_bin = root / "rolecall-sandbox"
        shutil.copy2(bin_path("rolecall-sandbox").resolve(), robot_bin)
        inst.use_browser(follow=True, sandbox_bin=robot_bin)
        inst.write_ic_setup(sandbox.url)
        env = dict(inst.env, ROLECALLD=str(daemon_bin))
        log = open(root / "daemon.out", "wb")
        daemon = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", HARDEN, "harden", *rw],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
        sock = inst.runtime_dir / "rolecalld.sock"
        ok = wait_until(lambda: sock.exists() or daemon.poll() is not None, timeout=15)
        out = (root / "daemon.out").read_text(errors="replace")
        assert ok and daemon.poll() is None, f"the daemon did not start: {out}"

        world = World(sandbox, inst)
        world.login()
        r = world.credential_process("dev-ro")
        assert r.returncode == 0, r.stderr + inst.daemon_log()[-2000:]
        assert json.loads(r.stdout)["AccessKeyId"]
        assert inst.daemon_pids() == [daemon.pid]
        # It wrote its state where the unit lets it: the encrypted store and the log.
        assert any(inst.state_dir.iterdir())
    finally:
        if daemon is not None:
            daemon.terminate()
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        inst.kill_all()
        if sandbox is not None:
            sandbox.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- packaging/install.sh -----------------------------------------------------------------


def demo_env(home: pathlib.Path, path_dirs) -> dict:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(home),
        "PATH": os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
        "TMPDIR": str(home),
    }


def run_demo(rolecall: pathlib.Path, env: dict):
    r = subprocess.run([str(rolecall), "demo"], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"demo failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_install_script_into_a_prefix_then_demo_then_uninstall(tmp_path):
    prefix = tmp_path / "prefix"
    script = PACKAGING / "install.sh"
    # --no-build: the binaries the other tests use (a `cargo build -p …` of a subset of the
    # workspace could unify features differently and rebuild dependencies for minutes).
    r = subprocess.run([str(script), "--prefix", str(prefix), "--profile", "dev", "--no-build"],
                       env=cargo_env(), stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    manifest = prefix / "share" / "rolecall" / "installed"
    files = manifest.read_text().split()
    for rel in ["bin/rolecall", "bin/rolecalld", "bin/rolecall-sandbox",
                "share/man/man1/rolecall.1", "share/man/man1/rolecall-login.1",
                "share/bash-completion/completions/rolecall", "share/zsh/site-functions/_rolecall",
                "share/fish/vendor_completions.d/rolecall.fish"]:
        assert str(prefix / rel) in files, rel
        assert (prefix / rel).is_file(), rel
    assert os.access(prefix / "bin" / "rolecalld", os.X_OK)

    installed = prefix / "bin" / "rolecall"
    v = subprocess.run([str(installed), "--version"], capture_output=True, text=True, timeout=30)
    assert v.returncode == 0 and v.stdout.startswith("rolecall "), v
    # Only the prefix on PATH: the demo must find the sandbox and the daemon it installed.
    run_demo(installed, demo_env(tmp_path / "home", [prefix / "bin"]))

    r = subprocess.run([str(script), "--uninstall", "--prefix", str(prefix)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    left = [f for f in files if os.path.lexists(f)]
    assert left == [] and not manifest.exists(), left


def test_install_script_rejects_bad_arguments(tmp_path):
    script = PACKAGING / "install.sh"
    r = subprocess.run([str(script), "--profile", "fast"], capture_output=True, text=True)
    assert r.returncode == 2 and "--profile must be release or dev" in r.stderr
    r = subprocess.run([str(script), "--uninstall", "--prefix", str(tmp_path / "none")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no rolecall installation" in r.stderr
    r = subprocess.run([str(script), "--no-build", "--prefix", str(tmp_path / "p")],
                       env=dict(os.environ, CARGO_TARGET_DIR=str(tmp_path / "empty-target")),
                       capture_output=True, text=True)
    assert r.returncode == 1 and "is missing (build it, or drop --no-build)" in r.stderr
    assert not (tmp_path / "p").exists()


# --- the Debian package -----------------------------------------------------------------------


def dpkg_installed(name: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


def test_deb_installs_runs_the_demo_and_removes_cleanly(tmp_path, man_dir):
    if os.geteuid() != 0:
        pytest.skip("installing a .deb needs root (CI runs as root)")
    need("dpkg")
    if subprocess.run(["cargo", "deb", "--version"], capture_output=True).returncode != 0:
        pytest.skip("cargo-deb is not installed (cargo install cargo-deb --locked)")
    if dpkg_installed("rolecall"):
        pytest.skip("a rolecall package is already installed on this machine; not touching it")

    # A debug-profile package of the binaries the other tests use (quick; not for release).
    r = subprocess.run([str(PACKAGING / "deb" / "build.sh"), "--profile", "dev", "--no-build"],
                       env=cargo_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    deb = pathlib.Path(r.stdout.strip().splitlines()[-1])
    assert deb.is_file() and deb.suffix == ".deb", r.stdout

    files = []
    r = subprocess.run(["dpkg", "-i", str(deb)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        listed = subprocess.run(["dpkg", "-L", "rolecall"], capture_output=True, text=True,
                                check=True).stdout.split("\n")
        files = [f for f in listed if f and os.path.isfile(f)]
        for f in ["/usr/bin/rolecall", "/usr/bin/rolecalld", "/usr/bin/rolecall-sandbox",
                  "/usr/lib/systemd/user/rolecalld.service", "/usr/lib/systemd/user/rolecalld.socket",
                  "/usr/share/man/man1/rolecall.1.gz",
                  "/usr/share/bash-completion/completions/rolecall",
                  "/usr/share/zsh/vendor-completions/_rolecall",
                  "/usr/share/fish/vendor_completions.d/rolecall.fish"]:
            assert f in files, f"{f} is not in the package: {files}"

        v = subprocess.run(["/usr/bin/rolecall", "--version"], capture_output=True, text=True)
        assert v.returncode == 0 and v.stdout.startswith("rolecall "), v
        # The packaged units start the packaged daemon, and verify as installed.
        rc, out = systemd_verify(tmp_path, man_dir, "/usr/lib/systemd/user/rolecalld.service",
                                 "/usr/lib/systemd/user/rolecalld.socket")
        assert rc == 0 and out.strip() == "", out
        assert "\nExecStart=/usr/bin/rolecalld --foreground\n" in pathlib.Path(
            "/usr/lib/systemd/user/rolecalld.service").read_text()
        run_demo(pathlib.Path("/usr/bin/rolecall"), demo_env(tmp_path / "home", []))
    finally:
        r = subprocess.run(["dpkg", "-r", "rolecall"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    left = [f for f in files if os.path.lexists(f)]
    assert left == [], f"left behind after dpkg -r: {left}"
    assert not dpkg_installed("rolecall")
    assert not pathlib.Path("/usr/share/doc/rolecall").exists()
