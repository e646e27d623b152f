//! `rolecall container setup --apply / --remove` against the real iptables, nft and sysctl, in a
//! network namespace each test makes (its own loopback, bridge, sysctls and rule sets, so the
//! host's network is never touched). Failures are injected with stand-ins on PATH that pass
//! everything to the real tool except the change they are told to fail; after every failure
//! the namespace must show no loopback exposure: `route_localnet` 0 and no DNAT rule left.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BRIDGE: &str = "rcbr0";

fn skip(test: &str, reason: &str) {
    if let Some(log) = std::env::var_os("ROLECALL_SKIP_LOG") {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
        {
            let _ = writeln!(f, "{test}: {reason}");
        }
    }
    eprintln!("SKIP: {reason}");
}

/// A network namespace with a bridge, deleted on drop.
struct Netns {
    name: String,
    dir: tempfile::TempDir,
}

impl Netns {
    fn new(test: &str) -> Option<Netns> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            skip(test, "needs root to make a network namespace");
            return None;
        }
        for tool in ["ip", "iptables", "nft", "sysctl"] {
            if which(tool).is_none() {
                skip(
                    test,
                    &format!("needs {tool} (tests/setup-system.sh installs it)"),
                );
                return None;
            }
        }
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("rcsetup{}-{n}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            skip(test, "cannot make a network namespace here");
            return None;
        }
        let ns = Netns {
            name,
            dir: tempfile::tempdir().unwrap(),
        };
        ns.sh(&format!(
            "ip link set lo up && ip link add {BRIDGE} type bridge && ip link set {BRIDGE} up"
        ));
        assert_eq!(ns.route_localnet(), "0");
        Some(ns)
    }

    /// Runs a shell command line in the namespace; it must succeed.
    fn sh(&self, line: &str) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "sh", "-c", line])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `rolecall container setup … --interface rcbr0 --to 127.0.0.1:9911` in the namespace,
    /// with `path` as PATH.
    fn setup(&self, extra: &[&str], path: &str) -> Output {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        // PATH is the one under test: name `ip` by its full path.
        Command::new(which("ip").unwrap())
            .args(["netns", "exec", &self.name, env!("CARGO_BIN_EXE_rolecall")])
            .args(["container", "setup", "--interface", BRIDGE])
            .args(["--to", "127.0.0.1:9911"])
            .args(extra)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env("ROLECALL_RUNTIME_DIR", self.dir.path().join("run"))
            .output()
            .unwrap()
    }

    fn route_localnet(&self) -> String {
        self.sh(&format!(
            "cat /proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet"
        ))
        .trim()
        .to_string()
    }

    /// Every rule iptables and nft show in the namespace.
    fn rules(&self) -> String {
        self.sh("iptables -w -t raw -S; iptables -w -t nat -S; nft list ruleset")
    }

    /// What must hold after any failed or undone setup.
    fn assert_nothing_exposed(&self, context: &str) {
        assert_eq!(
            self.route_localnet(),
            "0",
            "{context}: route_localnet left on"
        );
        let rules = self.rules();
        assert!(
            !rules.contains("DNAT") && !rules.contains("dnat to"),
            "{context}: a forward was left behind:\n{rules}"
        );
    }

    /// A directory of stand-ins: `tools` are linked to the real ones, `scripts` written as given.
    fn bin_dir(&self, label: &str, tools: &[&str], scripts: &[(&str, String)]) -> PathBuf {
        let dir = self.dir.path().join(label);
        std::fs::create_dir_all(&dir).unwrap();
        for t in tools {
            std::os::unix::fs::symlink(which(t).unwrap(), dir.join(t)).unwrap();
        }
        for (name, body) in scripts {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// A stand-in for `tool` that fails its `n`th change (a call with one of `ops`) and passes
/// every other call to the real tool. Shell builtins only: PATH holds nothing else.
fn failing_at(tool: &str, ops: &[&str], n: usize, counter: &Path) -> String {
    let real = which(tool).unwrap();
    let cases = ops
        .iter()
        .map(|o| format!("*\" {o} \"*"))
        .collect::<Vec<_>>()
        .join("|");
    format!(
        "#!/bin/sh\n\
         case \" $* \" in {cases})\n\
         \x20 n=0; [ -f {c} ] && read n < {c}; n=$((n+1)); echo $n > {c}\n\
         \x20 if [ $n -eq {n} ]; then echo 'injected failure' >&2; exit 1; fi;;\n\
         esac\n\
         exec {real} \"$@\"\n",
        c = counter.display(),
        real = real.display(),
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The last line of stderr: the error (the lines before are the `+ command` trace).
fn error_line(o: &Output) -> String {
    stderr(o).lines().last().unwrap_or_default().to_string()
}

#[test]
fn apply_and_remove_with_iptables_and_with_nft() {
    let Some(ns) = Netns::new("apply_and_remove_with_iptables_and_with_nft") else {
        return;
    };
    let real_path = std::env::var("PATH").unwrap();
    let out = ns.setup(&["--apply"], &real_path);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ns.route_localnet(), "1");
    let rules = ns.rules();
    assert!(
        rules.contains("-A PREROUTING -s 127.0.0.0/8 ! -i lo -j DROP"),
        "{rules}"
    );
    assert!(
        rules.contains("-A PREROUTING -d 127.0.0.0/8 ! -i lo -j DROP"),
        "{rules}"
    );
    assert!(rules.contains(&format!("-A PREROUTING -d 169.254.170.2/32 -i {BRIDGE} -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:9911")), "{rules}");
    // Applying twice adds nothing.
    let again = ns.setup(&["--apply"], &real_path);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(ns.rules(), rules);
    let out = ns.setup(&["--remove", "--apply"], &real_path);
    assert!(out.status.success(), "{}", stderr(&out));
    ns.assert_nothing_exposed("after --remove");
    assert!(!ns.rules().contains("127.0.0.0/8"));

    // An nftables-only host: no iptables on PATH.
    let nft_only = ns.bin_dir("nft-only", &["nft", "sysctl"], &[]);
    let p = nft_only.display().to_string();
    let out = ns.setup(&["--apply"], &p);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(ns.route_localnet(), "1");
    let rules = ns.sh("nft list table ip rolecall");
    assert!(rules.contains("ip saddr 127.0.0.0/8 drop"), "{rules}");
    assert!(
        rules.contains(&format!(
            "iifname \"{BRIDGE}\" ip daddr 169.254.170.2 tcp dport 80 dnat to 127.0.0.1:9911"
        )),
        "{rules}"
    );
    assert!(ns.setup(&["--apply"], &p).status.success());
    assert_eq!(ns.sh("nft list table ip rolecall"), rules);
    let out = ns.setup(&["--remove", "--apply"], &p);
    assert!(out.status.success(), "{}", stderr(&out));
    ns.assert_nothing_exposed("after nft --remove");
}

#[test]
fn a_failure_at_any_step_is_rolled_back_with_no_exposure() {
    let Some(ns) = Netns::new("a_failure_at_any_step_is_rolled_back_with_no_exposure") else {
        return;
    };
    // The six iptables changes (the guard's two, then two per forwarded address), failed one
    // at a time.
    for n in 1..=6 {
        let counter = ns.dir.path().join(format!("count-ipt-{n}"));
        let dir = ns.bin_dir(
            &format!("ipt-{n}"),
            &["sysctl", "nft"],
            &[(
                "iptables",
                failing_at("iptables", &["-I", "-A"], n, &counter),
            )],
        );
        let out = ns.setup(&["--apply"], &dir.display().to_string());
        assert!(!out.status.success(), "step {n}: {}", stderr(&out));
        let e = error_line(&out);
        assert!(
            e.contains("injected") || e.contains("failed"),
            "step {n}: {e}"
        );
        assert!(e.contains("taken back"), "step {n}: {e}");
        ns.assert_nothing_exposed(&format!("iptables failing at change {n}"));
        assert!(
            !ns.rules().contains("127.0.0.0/8"),
            "step {n}: the guard stayed"
        );
    }
    // The last step (route_localnet) fails: the rules go again.
    let dir = ns.bin_dir(
        "sysctl-fails",
        &["iptables", "nft"],
        &[(
            "sysctl",
            "#!/bin/sh\necho 'injected failure' >&2\nexit 1\n".into(),
        )],
    );
    let out = ns.setup(&["--apply"], &dir.display().to_string());
    assert!(!out.status.success());
    assert!(error_line(&out).contains("taken back"), "{}", stderr(&out));
    ns.assert_nothing_exposed("sysctl failing");
    assert!(!ns.rules().contains("127.0.0.0/8"));

    // nft refusing the table on an nftables-only host.
    let counter = ns.dir.path().join("count-nft");
    let dir = ns.bin_dir(
        "nft-fails",
        &["sysctl"],
        &[("nft", failing_at("nft", &["-f"], 1, &counter))],
    );
    let out = ns.setup(&["--apply"], &dir.display().to_string());
    assert!(!out.status.success());
    ns.assert_nothing_exposed("nft failing");
}

/// Runs `f` on a thread that has entered the namespace: sockets it makes stay in there.
fn in_netns<T: Send + 'static>(ns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsRawFd as _;
    let path = format!("/var/run/netns/{}", ns.name);
    std::thread::spawn(move || {
        let handle = std::fs::File::open(&path).unwrap();
        // SAFETY: setns on a namespace file this thread owns; it changes this thread only.
        let r = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap()
}

/// Inside the namespace, a connection to `addr:80` reaches the listener standing in for
/// rolecalld at 127.0.0.1:9911 (the bytes sent arrive there).
fn reaches_the_listener(ns: &Netns, addr: &'static str) -> Result<(), String> {
    use std::io::{Read as _, Write as _};
    let listener = in_netns(ns, || {
        std::net::TcpListener::bind("127.0.0.1:9911").unwrap()
    });
    let sent = in_netns(ns, move || {
        let target: std::net::SocketAddr = format!("{addr}:80").parse().unwrap();
        let mut s =
            std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_secs(3))
                .map_err(|e| format!("connect {target}: {e}"))?;
        s.write_all(b"GET /v1/credentials")
            .map_err(|e| e.to_string())
    });
    sent?;
    let (mut conn, _) = listener.accept().map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    conn.read_to_end(&mut got).map_err(|e| e.to_string())?;
    if got != b"GET /v1/credentials" {
        return Err(format!("the listener got {got:?}"));
    }
    Ok(())
}

#[test]
fn the_pod_identity_address_reaches_the_listener_with_iptables_and_with_nft() {
    let test = "the_pod_identity_address_reaches_the_listener_with_iptables_and_with_nft";
    let Some(ns) = Netns::new(test) else {
        return;
    };
    let real_path = std::env::var("PATH").unwrap();
    // As on a host whose containers use the bridge: the link-local range routes through it
    // (without a route the connect fails before the OUTPUT rule is consulted).
    ns.sh(&format!("ip route add 169.254.170.0/24 dev {BRIDGE}"));
    // Nothing forwards it before the setup.
    assert!(reaches_the_listener(&ns, "169.254.170.23").is_err());
    let out = ns.setup(&["--apply"], &real_path);
    assert!(out.status.success(), "{}", stderr(&out));
    let rules = ns.rules();
    assert!(rules.contains(&format!("-A PREROUTING -d 169.254.170.23/32 -i {BRIDGE} -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:9911")), "{rules}");
    for addr in ["169.254.170.23", "169.254.170.2"] {
        reaches_the_listener(&ns, addr).unwrap_or_else(|e| panic!("iptables, {addr}: {e}"));
    }
    assert!(ns
        .setup(&["--remove", "--apply"], &real_path)
        .status
        .success());
    ns.assert_nothing_exposed("after --remove");
    assert!(reaches_the_listener(&ns, "169.254.170.23").is_err());

    let nft_only = ns.bin_dir("nft-only", &["nft", "sysctl"], &[]);
    let p = nft_only.display().to_string();
    let out = ns.setup(&["--apply"], &p);
    assert!(out.status.success(), "{}", stderr(&out));
    reaches_the_listener(&ns, "169.254.170.23").unwrap_or_else(|e| panic!("nft: {e}"));
    assert!(ns.setup(&["--remove", "--apply"], &p).status.success());
    ns.assert_nothing_exposed("after nft --remove");
}

#[test]
fn neither_iptables_nor_nft_changes_nothing() {
    let Some(ns) = Netns::new("neither_iptables_nor_nft_changes_nothing") else {
        return;
    };
    let dir = ns.bin_dir("bare", &["sysctl"], &[]);
    let out = ns.setup(&["--apply"], &dir.display().to_string());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("neither iptables nor nft"), "{err}");
    ns.assert_nothing_exposed("no firewall tool");
}

#[test]
fn a_failed_remove_has_already_turned_route_localnet_off() {
    let Some(ns) = Netns::new("a_failed_remove_has_already_turned_route_localnet_off") else {
        return;
    };
    let real_path = std::env::var("PATH").unwrap();
    assert!(ns.setup(&["--apply"], &real_path).status.success());
    assert_eq!(ns.route_localnet(), "1");
    let counter = ns.dir.path().join("count-del");
    let dir = ns.bin_dir(
        "del-fails",
        &["sysctl", "nft"],
        &[("iptables", failing_at("iptables", &["-D"], 1, &counter))],
    );
    let out = ns.setup(&["--remove", "--apply"], &dir.display().to_string());
    assert!(!out.status.success());
    assert_eq!(ns.route_localnet(), "0", "{}", stderr(&out));
    // The guard is still there (it goes last), so nothing is reachable; a second run finishes.
    assert!(ns.rules().contains("-s 127.0.0.0/8 ! -i lo -j DROP"));
    assert!(ns
        .setup(&["--remove", "--apply"], &real_path)
        .status
        .success());
    ns.assert_nothing_exposed("after the second --remove");
}

#[test]
fn no_interface_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rolecall"))
        .args(["container", "setup", "--apply"])
        .env("ROLECALL_RUNTIME_DIR", dir.path())
        .env("XDG_RUNTIME_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--interface"), "{err}");
    assert!(out.stdout.is_empty());
}
