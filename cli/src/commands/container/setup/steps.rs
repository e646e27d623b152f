//! The steps `container setup` prints or applies: each one command with how to tell that its
//! effect is already in place and how to take it back, in the order that keeps every
//! intermediate state safe.

use super::privileged::{find_program, run_quiet, run_status, shell_line};
use super::{FORWARDED, NFT_TABLE};
use anyhow::bail;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// The packet filter tool the rules are made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Firewall {
    Iptables,
    Nft,
}

impl Firewall {
    /// The tools installed, iptables first (it also drives nftables on iptables-nft hosts).
    pub(super) fn present(root: bool) -> Vec<Firewall> {
        [(Firewall::Iptables, "iptables"), (Firewall::Nft, "nft")]
            .into_iter()
            .filter(|(_, name)| find_program(name, root).is_some())
            .map(|(f, _)| f)
            .collect()
    }
}

pub(super) struct Step {
    pub(super) run: Vec<String>,
    /// Fed to the command's standard input (an nft script).
    pub(super) stdin: Option<String>,
    /// A command that succeeds when the step's effect is already in place.
    pub(super) check: Option<Vec<String>>,
    /// The step is in place when this file (a sysctl) reads this value.
    pub(super) check_file: Option<(PathBuf, &'static str)>,
    /// What takes the step back (`--apply` runs it when a later step fails).
    pub(super) undo: Option<Vec<String>>,
}

impl Step {
    pub(super) fn cmd(run: Vec<String>) -> Step {
        Step {
            run,
            stdin: None,
            check: None,
            check_file: None,
            undo: None,
        }
    }

    pub(super) fn printed(&self, root: bool) -> String {
        let line = shell_line(&self.run, root);
        match &self.stdin {
            Some(script) => format!("{line} <<'EOF'\n{script}EOF"),
            None => line,
        }
    }

    /// Whether the step's effect is already there (so `--apply` skips it, `--remove` runs it).
    pub(super) fn in_place(&self, root: bool) -> anyhow::Result<Option<bool>> {
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
pub(super) fn checked(run: Vec<String>, check: Vec<String>) -> Step {
    let mut s = Step::cmd(run);
    s.check = Some(check);
    s
}

pub(super) fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

pub(super) fn route_localnet_file(iface: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/ipv4/conf/{iface}/route_localnet"))
}

pub(super) fn sysctl(iface: &str, value: &'static str) -> Step {
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
pub(super) fn iptables_rule(table: &str, chain: &str, op: &str, spec: &str) -> Step {
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
pub(super) fn iptables_rules(iface: &str, ip: Ipv4Addr, port: u16) -> Vec<Step> {
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
pub(super) fn nft_script(iface: &str, ip: Ipv4Addr, port: u16) -> String {
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

pub(super) fn nft_table_step(iface: &str, ip: Ipv4Addr, port: u16) -> Step {
    Step {
        run: argv("nft -f -"),
        stdin: Some(nft_script(iface, ip, port)),
        check: None,
        check_file: None,
        undo: Some(argv(&format!("nft delete table ip {NFT_TABLE}"))),
    }
}

pub(super) fn apply_steps(fw: Firewall, iface: &str, ip: Ipv4Addr, port: u16) -> Vec<Step> {
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
pub(super) fn remove_steps(fw: &[Firewall], iface: &str, ip: Ipv4Addr, port: u16) -> Vec<Step> {
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
pub(super) fn apply(steps: &[Step], root: bool) -> anyhow::Result<()> {
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
pub(super) fn remove(steps: &[Step], root: bool) -> anyhow::Result<()> {
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

pub(super) fn run_step(s: &Step, root: bool) -> anyhow::Result<()> {
    match run_status(&s.run, s.stdin.as_deref(), root) {
        Ok(true) => Ok(()),
        Ok(false) => bail!("`{}` failed", s.run.join(" ")),
        Err(e) => bail!("`{}` could not run: {e:#}", s.run.join(" ")),
    }
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
    fn printed_lines_quote_the_shell_negation() {
        let l = shell_line(&argv("iptables -t raw -A PREROUTING ! -i lo"), false);
        assert_eq!(l, "sudo iptables -t raw -A PREROUTING '!' -i lo");
    }
}
