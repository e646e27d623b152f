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

mod privileged;
mod steps;

use privileged::{is_root, run_quiet, run_status};
use steps::{apply, apply_steps, argv, checked, remove, remove_steps, Firewall, Step};

use crate::cli::ContainerSetupArgs;
use crate::client::Client;
use anyhow::{bail, Context as _};
use rolecall_proto::api::Status;
use rolecall_proto::request::Request;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
