//! `rolecall container setup [--apply] [--docker-desktop] [--remove]`: the one-time root step
//! that makes `169.254.170.2:80` (the ECS container credentials address, which SDKs accept over
//! plain HTTP) and `169.254.170.23:80` (the EKS Pod Identity Agent's, for pods in a local
//! Kubernetes) reach rolecalld's loopback listener. Both addresses get the same rules, made and
//! taken back together; the IPv6 agent address `fd00:ec2::23` is not forwarded (the kernel has
//! no `route_localnet` for IPv6, so it cannot be DNAT-ed to `::1`).
//!
//! Linux (as AWS's amazon-ecs-local-container-endpoints documents): a DNAT rule for the one
//! bridge containers arrive on, a REDIRECT in OUTPUT for host processes, and `route_localnet` on
//! that bridge so the kernel routes the DNAT-ed packets to 127.0.0.1. `route_localnet` alone
//! would let a container that routes 127.0.0.0/8 through its gateway reach *every* loopback
//! service of the host (the CVE-2020-8558 class), so a raw-table guard drops packets from or to
//! 127.0.0.0/8 that arrive on any interface but `lo`; DNAT-ed packets still carry 169.254.170.2
//! at that point, so only the one forwarded port gets through.
//!
//! The order is what keeps every intermediate state safe: `--apply` adds the guard first and
//! sets `route_localnet` last, and undoes every step it made when a later one fails; `--remove`
//! turns `route_localnet` off first and removes the guard last. iptables is used when present,
//! else nftables (`nft`, one atomic table `ip rolecall`); with neither, nothing is changed.
//!
//! Docker Desktop (macOS, Windows): containers cannot reach the host's loopback through a rule,
//! so a relay container (`rolecall relay`, image from `packaging/relay/Dockerfile`) sits at
//! 169.254.170.2 on a user-defined network and forwards to `host.docker.internal`.

use crate::cli::ContainerSetupArgs;
use crate::client::Client;
use anyhow::{bail, Context as _};
use rolecall_proto::api::Status;
use rolecall_proto::request::Request;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const LINK_LOCAL: &str = "169.254.170.2";
/// Every address forwarded on Linux: the ECS one, then the Pod Identity Agent's.
const FORWARDED: [&str; 2] = [LINK_LOCAL, "169.254.170.23"];
const DEFAULT_LISTEN: &str = "127.0.0.1:9911";
const NETWORK: &str = "rolecall";
const RELAY: &str = "rolecall-relay";
/// The nftables table holding every rule of the forward (removed as one).
const NFT_TABLE: &str = "rolecall";

pub fn run(a: &ContainerSetupArgs) -> anyhow::Result<i32> {
    if a.docker_desktop {
        return docker_desktop(a, listener(a)?);
    }
    // Before asking the daemon anything: a missing bridge is the one error to report.
    let iface = interface(a.interface.as_deref())?;
    let target = listener(a)?;
    let root = is_root();
    let fw = if a.remove {
        // Remove with whatever is there: rules may have been made by either tool.
        Firewall::present(root)
    } else {
        match Firewall::present(root).first() {
            Some(f) => vec![*f],
            None => bail!(
                "neither iptables nor nft is installed, so nothing was changed; install iptables or nftables and run this again"
            ),
        }
    };
    let ip = forward_ip(target)?;
    let steps = if a.remove {
        remove_steps(&fw, &iface, ip, target.port())
    } else {
        apply_steps(fw[0], &iface, ip, target.port())
    };
    if !a.apply {
        let what = if a.remove { "undo" } else { "make" };
        println!(
            "# Run once as root to {what} the forward of {} (port 80) to rolecalld ({target}) on {iface};",
            FORWARDED.join(" and ")
        );
        println!(
            "# or run: rolecall container setup --interface {iface}{} --apply",
            if a.remove { " --remove" } else { "" }
        );
        for s in &steps {
            println!("{}", s.printed(root));
        }
        if !a.remove {
            println!("# The rules do not survive a reboot: save them (iptables-save / nft list ruleset) to keep them.");
        }
        return Ok(0);
    }
    if a.remove {
        remove(&steps, root)?;
    } else {
        if !Path::new("/sys/class/net").join(&iface).exists() {
            bail!("there is no interface named '{iface}' here; `ip -br link` lists them (docker0, br-… for user-defined networks)");
        }
        apply(&steps, root)?;
    }
    eprintln!(
        "rolecall: {} (port 80) on {iface} {} rolecalld at {target}",
        FORWARDED.join(" and "),
        if a.remove {
            "no longer forwards to"
        } else {
            "now forwards to"
        }
    );
    Ok(0)
}

/// The bridge to forward on: only ever the one named. Forwarding on every interface would
/// expose the daemon (and, through `all.route_localnet`, the host's loopback) to every network
/// the host is on.
fn interface(given: Option<&str>) -> anyhow::Result<String> {
    let Some(i) = given.map(str::to_string) else {
        let hint = if Path::new("/sys/class/net/docker0").exists() {
            "--interface docker0"
        } else {
            "--interface <bridge> (`ip -br link` lists them)"
        };
        bail!("name the bridge interface containers arrive on: rolecall container setup {hint}");
    };
    if i.is_empty()
        || i.len() > 15
        || !i
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
    {
        bail!("invalid interface name {i:?}");
    }
    if i == "lo" || i == "all" || i == "default" {
        bail!("--interface must name a bridge containers arrive on, not '{i}'");
    }
    Ok(i)
}

/// The daemon's container listener: `--to`, else what a running rolecalld reports, else the
/// default. Never starts a daemon: under `sudo` that would be root's daemon, not the user's.
fn listener(a: &ContainerSetupArgs) -> anyhow::Result<SocketAddr> {
    let text = match &a.to {
        Some(t) => t.clone(),
        None => Client::connect(false)
            .ok()
            .and_then(|c| c.send::<Status>(&Request::Status).ok())
            .and_then(|s| s.daemon.container_listen)
            .unwrap_or_else(|| {
                eprintln!("rolecall: rolecalld is not running here; assuming its listener is {DEFAULT_LISTEN} (use --to to choose)");
                DEFAULT_LISTEN.to_string()
            }),
    };
    text.parse()
        .with_context(|| format!("invalid listener address {text:?} (expected ip:port)"))
}

fn forward_ip(target: SocketAddr) -> anyhow::Result<Ipv4Addr> {
    match target.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => Ok(Ipv4Addr::LOCALHOST),
        IpAddr::V4(ip) => Ok(ip),
        IpAddr::V6(_) => bail!(
            "the {LINK_LOCAL} forward needs an IPv4 listener; set container_listen = \"127.0.0.1:9911\""
        ),
    }
}

/// The packet filter tool the rules are made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Firewall {
    Iptables,
    Nft,
}

impl Firewall {
    /// The tools installed, iptables first (it also drives nftables on iptables-nft hosts).
    fn present(root: bool) -> Vec<Firewall> {
        [(Firewall::Iptables, "iptables"), (Firewall::Nft, "nft")]
            .into_iter()
            .filter(|(_, name)| find_program(name, root).is_some())
            .map(|(f, _)| f)
            .collect()
    }
}

/// `name` on PATH (and, when the command will run through sudo, in the sbin directories of
/// sudo's secure_path, which a user's PATH often lacks).
fn find_program(name: &str, root: bool) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if !root {
        dirs.extend(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| {
        use std::os::unix::fs::PermissionsExt as _;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

struct Step {
    run: Vec<String>,
    /// Fed to the command's standard input (an nft script).
    stdin: Option<String>,
    /// A command that succeeds when the step's effect is already in place.
    check: Option<Vec<String>>,
    /// The step is in place when this file (a sysctl) reads this value.
    check_file: Option<(PathBuf, &'static str)>,
    /// What takes the step back (`--apply` runs it when a later step fails).
    undo: Option<Vec<String>>,
}

impl Step {
    fn cmd(run: Vec<String>) -> Step {
        Step {
            run,
            stdin: None,
            check: None,
            check_file: None,
            undo: None,
        }
    }

    fn printed(&self, root: bool) -> String {
        let line = shell_line(&self.run, root);
        match &self.stdin {
            Some(script) => format!("{line} <<'EOF'\n{script}EOF"),
            None => line,
        }
    }

    /// Whether the step's effect is already there (so `--apply` skips it, `--remove` runs it).
    fn in_place(&self, root: bool) -> anyhow::Result<Option<bool>> {
        if let Some((file, want)) = &self.check_file {
            let now = std::fs::read_to_string(file).unwrap_or_default();
            return Ok(Some(now.trim() == *want));
        }
        match &self.check {
            Some(c) => Ok(Some(run_quiet(c, root)?)),
            None => Ok(None),
        }
    }
}

/// A step skipped by `--apply` when `check` succeeds (and by `--remove` when it fails).
fn checked(run: Vec<String>, check: Vec<String>) -> Step {
    let mut s = Step::cmd(run);
    s.check = Some(check);
    s
}

fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn route_localnet_file(iface: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/ipv4/conf/{iface}/route_localnet"))
}

fn sysctl(iface: &str, value: &'static str) -> Step {
    let set = |v: &str| {
        argv(&format!(
            "sysctl -w net.ipv4.conf.{iface}.route_localnet={v}"
        ))
    };
    Step {
        run: set(value),
        stdin: None,
        check: None,
        check_file: Some((route_localnet_file(iface), value)),
        undo: Some(set(if value == "1" { "0" } else { "1" })),
    }
}

/// The iptables rule `spec` in `table`/`chain`, added with `op` (-A or -I), with its check and
/// its undo.
fn iptables_rule(table: &str, chain: &str, op: &str, spec: &str) -> Step {
    Step {
        run: argv(&format!("iptables -w -t {table} {op} {chain} {spec}")),
        stdin: None,
        check: Some(argv(&format!("iptables -w -t {table} -C {chain} {spec}"))),
        check_file: None,
        undo: Some(argv(&format!("iptables -w -t {table} -D {chain} {spec}"))),
    }
}

/// The guard first (dropping 127.0.0.0/8 from and to every interface but `lo`), the forward,
/// `route_localnet` last: should any step fail, the ones before never exposed the loopback.
fn iptables_rules(iface: &str, ip: Ipv4Addr, port: u16) -> Vec<Step> {
    let mut rules = vec![
        iptables_rule("raw", "PREROUTING", "-I", "! -i lo -d 127.0.0.0/8 -j DROP"),
        iptables_rule("raw", "PREROUTING", "-I", "! -i lo -s 127.0.0.0/8 -j DROP"),
    ];
    for addr in FORWARDED {
        let output = if ip == Ipv4Addr::LOCALHOST {
            format!("-d {addr}/32 -p tcp --dport 80 -j REDIRECT --to-ports {port}")
        } else {
            format!("-d {addr}/32 -p tcp --dport 80 -j DNAT --to-destination {ip}:{port}")
        };
        rules.push(iptables_rule(
            "nat",
            "PREROUTING",
            "-A",
            &format!(
                "-i {iface} -d {addr}/32 -p tcp --dport 80 -j DNAT --to-destination {ip}:{port}"
            ),
        ));
        rules.push(iptables_rule("nat", "OUTPUT", "-A", &output));
    }
    rules
}

/// One atomic nftables transaction: the table is replaced whole, guard and forward together.
fn nft_script(iface: &str, ip: Ipv4Addr, port: u16) -> String {
    let output = if ip == Ipv4Addr::LOCALHOST {
        format!("redirect to :{port}")
    } else {
        format!("dnat to {ip}:{port}")
    };
    // One rule per address (not a set), so each reads as the iptables rule for it does.
    let prerouting: String = FORWARDED
        .iter()
        .map(|a| format!("    iifname \"{iface}\" ip daddr {a} tcp dport 80 dnat to {ip}:{port}\n"))
        .collect();
    let out: String = FORWARDED
        .iter()
        .map(|a| format!("    ip daddr {a} tcp dport 80 {output}\n"))
        .collect();
    format!(
        "table ip {NFT_TABLE} {{}}\n\
         delete table ip {NFT_TABLE}\n\
         table ip {NFT_TABLE} {{\n\
         \x20 chain guard {{\n\
         \x20   type filter hook prerouting priority -300; policy accept;\n\
         \x20   iifname != \"lo\" ip daddr 127.0.0.0/8 drop\n\
         \x20   iifname != \"lo\" ip saddr 127.0.0.0/8 drop\n\
         \x20 }}\n\
         \x20 chain prerouting {{\n\
         \x20   type nat hook prerouting priority -100; policy accept;\n\
         {prerouting}\
         \x20 }}\n\
         \x20 chain output {{\n\
         \x20   type nat hook output priority -100; policy accept;\n\
         {out}\
         \x20 }}\n\
         }}\n"
    )
}

fn nft_table_step(iface: &str, ip: Ipv4Addr, port: u16) -> Step {
    Step {
        run: argv("nft -f -"),
        stdin: Some(nft_script(iface, ip, port)),
        check: None,
        check_file: None,
        undo: Some(argv(&format!("nft delete table ip {NFT_TABLE}"))),
    }
}

fn apply_steps(fw: Firewall, iface: &str, ip: Ipv4Addr, port: u16) -> Vec<Step> {
    let mut steps = match fw {
        Firewall::Iptables => iptables_rules(iface, ip, port),
        Firewall::Nft => vec![nft_table_step(iface, ip, port)],
    };
    // Only a loopback target needs the kernel to route DNAT-ed packets to 127.0.0.0/8.
    if ip.is_loopback() {
        steps.push(sysctl(iface, "1"));
    }
    steps
}

/// `route_localnet` off first: from then on nothing reaches the loopback, whatever else fails.
fn remove_steps(fw: &[Firewall], iface: &str, ip: Ipv4Addr, port: u16) -> Vec<Step> {
    let mut steps = vec![sysctl(iface, "0")];
    for f in fw {
        match f {
            Firewall::Iptables => {
                for r in iptables_rules(iface, ip, port).into_iter().rev() {
                    let mut s = Step::cmd(r.undo.clone().unwrap_or_default());
                    s.check = r.check;
                    steps.push(s);
                }
            }
            Firewall::Nft => {
                let mut s = Step::cmd(argv(&format!("nft delete table ip {NFT_TABLE}")));
                s.check = Some(argv(&format!("nft list table ip {NFT_TABLE}")));
                steps.push(s);
            }
        }
    }
    steps
}

/// Runs the steps not yet in place; when one fails, takes back (newest first) every step this
/// run made, so a half-made forward never stays behind.
fn apply(steps: &[Step], root: bool) -> anyhow::Result<()> {
    let mut done: Vec<&Step> = Vec::new();
    for s in steps {
        if s.in_place(root).unwrap_or(None) == Some(true) {
            continue;
        }
        eprintln!("+ {}", shell_line(&s.run, root));
        if let Err(why) = run_step(s, root) {
            let mut stuck = Vec::new();
            for d in done.iter().rev() {
                let Some(undo) = &d.undo else { continue };
                eprintln!("+ {}", shell_line(undo, root));
                if !matches!(run_status(undo, None, root), Ok(true)) {
                    stuck.push(undo.join(" "));
                }
            }
            if stuck.is_empty() {
                bail!(
                    "{why}; the {} step(s) already made were taken back, nothing is forwarded",
                    done.len()
                );
            }
            bail!(
                "{why}, and taking back `{}` failed too: run rolecall container setup --remove --apply",
                stuck.join("`, `")
            );
        }
        done.push(s);
    }
    Ok(())
}

/// Runs every removal whose effect is present; stops at the first failure (`route_localnet`
/// went first, so what is left cannot expose the loopback).
fn remove(steps: &[Step], root: bool) -> anyhow::Result<()> {
    for s in steps {
        let present = match (&s.check_file, &s.check) {
            // A sysctl already at its value, or gone with its interface, needs nothing.
            (Some((file, want)), _) => {
                std::fs::read_to_string(file).is_ok_and(|now| now.trim() != *want)
            }
            // A rule: removed only when its check finds it.
            (None, Some(c)) => run_quiet(c, root).unwrap_or(true),
            (None, None) => true,
        };
        if !present {
            continue;
        }
        eprintln!("+ {}", shell_line(&s.run, root));
        run_step(s, root)?;
    }
    Ok(())
}

fn run_step(s: &Step, root: bool) -> anyhow::Result<()> {
    match run_status(&s.run, s.stdin.as_deref(), root) {
        Ok(true) => Ok(()),
        Ok(false) => bail!("`{}` failed", s.run.join(" ")),
        Err(e) => bail!("`{}` could not run: {e:#}", s.run.join(" ")),
    }
}

fn docker_desktop(a: &ContainerSetupArgs, target: SocketAddr) -> anyhow::Result<i32> {
    let port = target.port();
    let steps: Vec<Step> = if a.remove {
        vec![
            checked(
                argv(&format!("docker rm -f {RELAY}")),
                argv(&format!("docker container inspect {RELAY}")),
            ),
            checked(
                argv(&format!("docker network rm {NETWORK}")),
                argv(&format!("docker network inspect {NETWORK}")),
            ),
        ]
    } else {
        vec![
            checked(argv(&format!(
                    "docker network create --driver bridge --subnet 169.254.170.0/24 --gateway 169.254.170.1 {NETWORK}"
                )), argv(&format!("docker network inspect {NETWORK}"))),
            checked(argv(&format!(
                    "docker run -d --name {RELAY} --restart unless-stopped --network {NETWORK} --ip {LINK_LOCAL} {RELAY} --listen 0.0.0.0:80 --to host.docker.internal:{port}"
                )), argv(&format!("docker container inspect {RELAY}"))),
        ]
    };
    if !a.apply {
        println!("# Docker Desktop: a relay container at {LINK_LOCAL} on the '{NETWORK}' network forwards to rolecalld.");
        if !a.remove {
            println!("# Build the relay image once, from a rolecall source checkout:");
            println!("#   docker build -t {RELAY} -f packaging/relay/Dockerfile .");
        }
        for s in &steps {
            println!("{}", s.run.join(" "));
        }
        if !a.remove {
            println!("# Then run containers with --network {NETWORK} and the variables of: rolecall container <profile> --relative");
        }
        return Ok(0);
    }
    for s in &steps {
        if let Some(check) = &s.check {
            if run_quiet(check, true)? != a.remove {
                continue;
            }
        }
        eprintln!("+ {}", s.run.join(" "));
        if !run_status(&s.run, None, true)? {
            bail!("`{}` failed", s.run.join(" "));
        }
    }
    Ok(0)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The command as printed: through sudo unless already root.
fn shell_line(cmd: &[String], root: bool) -> String {
    let line = cmd
        .iter()
        .map(|w| {
            if w == "!" {
                "'!'".to_string()
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    if root {
        line
    } else {
        format!("sudo {line}")
    }
}

fn command(cmd: &[String], root: bool) -> Command {
    let mut c = if root {
        Command::new(&cmd[0])
    } else {
        let mut c = Command::new("sudo");
        c.arg(&cmd[0]);
        c
    };
    c.args(&cmd[1..]);
    c
}

fn run_status(cmd: &[String], stdin: Option<&str>, root: bool) -> anyhow::Result<bool> {
    let mut c = command(cmd, root);
    if stdin.is_some() {
        c.stdin(Stdio::piped());
    }
    let mut child = c
        .spawn()
        .with_context(|| format!("cannot run {}", if root { &cmd[0] } else { "sudo" }))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A tool that exits early closes its end: its exit status tells what went wrong.
        let _ = pipe.write_all(text.as_bytes());
    }
    Ok(child.wait()?.success())
}

fn run_quiet(cmd: &[String], root: bool) -> anyhow::Result<bool> {
    let st = command(cmd, root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", if root { &cmd[0] } else { "sudo" }))?;
    Ok(st.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(steps: &[Step]) -> Vec<String> {
        steps.iter().map(|s| s.run.join(" ")).collect()
    }

    #[test]
    fn iptables_steps_guard_first_and_set_route_localnet_last() {
        let ip = Ipv4Addr::LOCALHOST;
        let steps = apply_steps(Firewall::Iptables, "docker0", ip, 9911);
        assert_eq!(
            lines(&steps),
            [
                "iptables -w -t raw -I PREROUTING ! -i lo -d 127.0.0.0/8 -j DROP",
                "iptables -w -t raw -I PREROUTING ! -i lo -s 127.0.0.0/8 -j DROP",
                "iptables -w -t nat -A PREROUTING -i docker0 -d 169.254.170.2/32 -p tcp --dport 80 -j DNAT --to-destination 127.0.0.1:9911",
                "iptables -w -t nat -A OUTPUT -d 169.254.170.2/32 -p tcp --dport 80 -j REDIRECT --to-ports 9911",
                "iptables -w -t nat -A PREROUTING -i docker0 -d 169.254.170.23/32 -p tcp --dport 80 -j DNAT --to-destination 127.0.0.1:9911",
                "iptables -w -t nat -A OUTPUT -d 169.254.170.23/32 -p tcp --dport 80 -j REDIRECT --to-ports 9911",
                "sysctl -w net.ipv4.conf.docker0.route_localnet=1",
            ]
        );
        assert!(steps.iter().all(|s| s.undo.is_some()));
        let undo = remove_steps(&[Firewall::Iptables, Firewall::Nft], "docker0", ip, 9911);
        let undo = lines(&undo);
        assert_eq!(undo[0], "sysctl -w net.ipv4.conf.docker0.route_localnet=0");
        assert!(undo[1].contains("-t nat -D OUTPUT -d 169.254.170.23/32"));
        assert!(undo[6].contains("-t raw -D PREROUTING ! -i lo -d 127.0.0.0/8"));
        assert_eq!(undo[7], "nft delete table ip rolecall");
    }

    #[test]
    fn nft_is_one_atomic_table_then_the_sysctl() {
        let steps = apply_steps(Firewall::Nft, "br-1", Ipv4Addr::LOCALHOST, 9911);
        assert_eq!(
            lines(&steps),
            ["nft -f -", "sysctl -w net.ipv4.conf.br-1.route_localnet=1"]
        );
        let script = steps[0].stdin.as_deref().unwrap();
        assert!(script.contains("iifname != \"lo\" ip saddr 127.0.0.0/8 drop"));
        assert!(script.contains(
            "iifname \"br-1\" ip daddr 169.254.170.2 tcp dport 80 dnat to 127.0.0.1:9911"
        ));
        assert!(script.contains(
            "iifname \"br-1\" ip daddr 169.254.170.23 tcp dport 80 dnat to 127.0.0.1:9911"
        ));
        assert!(script.contains("ip daddr 169.254.170.23 tcp dport 80 redirect to :9911"));
        // A non-loopback listener needs no route_localnet at all.
        let other = apply_steps(Firewall::Nft, "br-1", Ipv4Addr::new(10, 0, 0, 1), 9911);
        assert_eq!(other.len(), 1);
    }

    #[test]
    fn an_explicit_bridge_is_required() {
        let e = interface(None).unwrap_err().to_string();
        assert!(
            e.starts_with("name the bridge interface") && !e.contains('\n'),
            "{e}"
        );
        assert!(interface(Some("a;b")).is_err());
        assert!(interface(Some("lo")).is_err());
        assert!(interface(Some("all")).is_err());
        assert_eq!(interface(Some("br-0a1b")).unwrap(), "br-0a1b");
        assert!(forward_ip("[::1]:9911".parse().unwrap()).is_err());
    }

    #[test]
    fn printed_lines_quote_the_shell_negation() {
        let l = shell_line(&argv("iptables -t raw -A PREROUTING ! -i lo"), false);
        assert_eq!(l, "sudo iptables -t raw -A PREROUTING '!' -i lo");
    }
}
