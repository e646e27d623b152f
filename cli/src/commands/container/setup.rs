//! `rolecall container setup [--apply] [--docker-desktop] [--remove]`: the one-time root step
//! that makes `169.254.170.2:80` (the ECS container credentials address, which SDKs accept over
//! plain HTTP) reach rolecalld's loopback listener.
//!
//! Linux (as AWS's amazon-ecs-local-container-endpoints documents): `route_localnet` on the
//! bridge interface so the kernel routes DNAT-ed packets to 127.0.0.1, a DNAT rule in
//! PREROUTING for containers and a REDIRECT in OUTPUT for host processes. Because
//! `route_localnet` would also let a container that routes 127.0.0.0/8 through its gateway reach
//! every loopback service of the host, a raw-table rule drops packets addressed to 127.0.0.0/8
//! that arrive on any interface but `lo` — DNAT-ed packets still carry 169.254.170.2 at that
//! point, so only the one forwarded port gets through.
//!
//! Docker Desktop (macOS, Windows): containers cannot reach the host's loopback through a rule,
//! so a relay container (`rolecall relay`, image from `packaging/relay/Dockerfile`) sits at
//! 169.254.170.2 on a user-defined network and forwards to `host.docker.internal`.

use crate::cli::ContainerSetupArgs;
use crate::client::Client;
use anyhow::{bail, Context as _};
use rolecall_proto::api::Status;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;

const LINK_LOCAL: &str = "169.254.170.2";
const DEFAULT_LISTEN: &str = "127.0.0.1:9911";
const NETWORK: &str = "rolecall";
const RELAY: &str = "rolecall-relay";

pub fn run(a: &ContainerSetupArgs) -> anyhow::Result<i32> {
    let target = listener(a)?;
    if a.docker_desktop {
        return docker_desktop(a, target);
    }
    let iface = a.interface.clone().or_else(|| {
        std::path::Path::new("/sys/class/net/docker0")
            .exists()
            .then(|| "docker0".to_string())
    });
    let steps = linux_steps(target, iface.as_deref(), a.remove)?;
    let root = is_root();
    if !a.apply {
        let what = if a.remove { "undo" } else { "make" };
        println!(
            "# Run once as root to {what} the forward of {LINK_LOCAL}:80 to rolecalld ({target});"
        );
        println!(
            "# or run: rolecall container setup{} --apply",
            if a.remove { " --remove" } else { "" }
        );
        for s in &steps {
            println!("{}", shell_line(&s.run, root));
        }
        if !a.remove {
            println!("# The rules do not survive a reboot: save them with iptables-save / netfilter-persistent.");
        }
        return Ok(0);
    }
    for s in &steps {
        // Idempotent: a rule already present (or already gone) is left alone.
        if let Some(check) = &s.check {
            let present = run_quiet(check, root)?;
            if present != a.remove {
                continue;
            }
        }
        eprintln!("+ {}", shell_line(&s.run, root));
        if !run_status(&s.run, root)? {
            bail!("`{}` failed", s.run.join(" "));
        }
    }
    eprintln!(
        "rolecall: {LINK_LOCAL}:80 {} rolecalld at {target}",
        if a.remove {
            "no longer forwards to"
        } else {
            "now forwards to"
        }
    );
    Ok(0)
}

/// The daemon's container listener: `--to`, else what a running rolecalld reports, else the
/// default. Never starts a daemon: under `sudo` that would be root's daemon, not the user's.
fn listener(a: &ContainerSetupArgs) -> anyhow::Result<SocketAddr> {
    let text = match &a.to {
        Some(t) => t.clone(),
        None => Client::connect(false)
            .ok()
            .and_then(|c| c.get::<Status>("/v1/status").ok())
            .and_then(|s| s.daemon.container_listen)
            .unwrap_or_else(|| {
                eprintln!("rolecall: rolecalld is not running here; assuming its listener is {DEFAULT_LISTEN} (use --to to choose)");
                DEFAULT_LISTEN.to_string()
            }),
    };
    text.parse()
        .with_context(|| format!("invalid listener address {text:?} (expected ip:port)"))
}

struct Step {
    run: Vec<String>,
    /// A command that succeeds when the step's effect is already in place.
    check: Option<Vec<String>>,
}

fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// The iptables rule `spec` in `table`/`chain`: the append (or delete) and its check.
fn rule(table: &str, chain: &str, spec: &str, remove: bool) -> Step {
    let op = if remove { "-D" } else { "-A" };
    Step {
        run: argv(&format!("iptables -w -t {table} {op} {chain} {spec}")),
        check: Some(argv(&format!("iptables -w -t {table} -C {chain} {spec}"))),
    }
}

fn linux_steps(target: SocketAddr, iface: Option<&str>, remove: bool) -> anyhow::Result<Vec<Step>> {
    let ip = match target.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST,
        IpAddr::V4(ip) => ip,
        IpAddr::V6(_) => bail!(
            "the {LINK_LOCAL} forward needs an IPv4 listener; set container_listen = \"127.0.0.1:9911\""
        ),
    };
    if let Some(i) = iface {
        if i.is_empty()
            || !i
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
        {
            bail!("invalid interface name {i:?}");
        }
    }
    let port = target.port();
    let conf = iface.unwrap_or("all");
    let in_iface = iface.map(|i| format!("-i {i} ")).unwrap_or_default();
    let mut steps = Vec::new();
    if !remove {
        steps.push(Step {
            run: argv(&format!("sysctl -w net.ipv4.conf.{conf}.route_localnet=1")),
            check: None,
        });
    }
    steps.push(rule(
        "raw",
        "PREROUTING",
        "! -i lo -d 127.0.0.0/8 -j DROP",
        remove,
    ));
    steps.push(rule(
        "nat",
        "PREROUTING",
        &format!(
            "{in_iface}-d {LINK_LOCAL}/32 -p tcp --dport 80 -j DNAT --to-destination {ip}:{port}"
        ),
        remove,
    ));
    let output = if ip == Ipv4Addr::LOCALHOST {
        format!("-d {LINK_LOCAL}/32 -p tcp --dport 80 -j REDIRECT --to-ports {port}")
    } else {
        format!("-d {LINK_LOCAL}/32 -p tcp --dport 80 -j DNAT --to-destination {ip}:{port}")
    };
    steps.push(rule("nat", "OUTPUT", &output, remove));
    if remove {
        steps.push(Step {
            run: argv(&format!("sysctl -w net.ipv4.conf.{conf}.route_localnet=0")),
            check: None,
        });
    }
    Ok(steps)
}

fn docker_desktop(a: &ContainerSetupArgs, target: SocketAddr) -> anyhow::Result<i32> {
    let port = target.port();
    let steps: Vec<Step> = if a.remove {
        vec![
            Step {
                run: argv(&format!("docker rm -f {RELAY}")),
                check: Some(argv(&format!("docker container inspect {RELAY}"))),
            },
            Step {
                run: argv(&format!("docker network rm {NETWORK}")),
                check: Some(argv(&format!("docker network inspect {NETWORK}"))),
            },
        ]
    } else {
        vec![
            Step {
                run: argv(&format!(
                    "docker network create --driver bridge --subnet 169.254.170.0/24 --gateway 169.254.170.1 {NETWORK}"
                )),
                check: Some(argv(&format!("docker network inspect {NETWORK}"))),
            },
            Step {
                run: argv(&format!(
                    "docker run -d --name {RELAY} --restart unless-stopped --network {NETWORK} --ip {LINK_LOCAL} {RELAY} --listen 0.0.0.0:80 --to host.docker.internal:{port}"
                )),
                check: Some(argv(&format!("docker container inspect {RELAY}"))),
            },
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
        if !run_status(&s.run, true)? {
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

fn run_status(cmd: &[String], root: bool) -> anyhow::Result<bool> {
    let st = command(cmd, root)
        .status()
        .with_context(|| format!("cannot run {}", if root { &cmd[0] } else { "sudo" }))?;
    Ok(st.success())
}

fn run_quiet(cmd: &[String], root: bool) -> anyhow::Result<bool> {
    let st = command(cmd, root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
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
    fn linux_rules_forward_only_port_80_and_guard_loopback() {
        let steps = linux_steps("127.0.0.1:9911".parse().unwrap(), Some("docker0"), false).unwrap();
        assert_eq!(
            lines(&steps),
            [
                "sysctl -w net.ipv4.conf.docker0.route_localnet=1",
                "iptables -w -t raw -A PREROUTING ! -i lo -d 127.0.0.0/8 -j DROP",
                "iptables -w -t nat -A PREROUTING -i docker0 -d 169.254.170.2/32 -p tcp --dport 80 -j DNAT --to-destination 127.0.0.1:9911",
                "iptables -w -t nat -A OUTPUT -d 169.254.170.2/32 -p tcp --dport 80 -j REDIRECT --to-ports 9911",
            ]
        );
        let undo = linux_steps("127.0.0.1:9911".parse().unwrap(), None, true).unwrap();
        assert!(lines(&undo)
            .iter()
            .any(|l| l.contains(" -D PREROUTING -d 169.254.170.2/32")));
        assert!(lines(&undo)
            .last()
            .unwrap()
            .contains("all.route_localnet=0"));
        assert!(linux_steps("[::1]:9911".parse().unwrap(), None, false).is_err());
        assert!(linux_steps("127.0.0.1:1".parse().unwrap(), Some("a;b"), false).is_err());
    }

    #[test]
    fn printed_lines_quote_the_shell_negation() {
        let l = shell_line(&argv("iptables -t raw -A PREROUTING ! -i lo"), false);
        assert_eq!(l, "sudo iptables -t raw -A PREROUTING '!' -i lo");
    }
}
