//! systemd: `rolecalld.service` + `rolecalld.socket` in the user's unit dir
//! (`$XDG_CONFIG_HOME/systemd/user`, which systemd reads before the packaged
//! `/usr/lib/systemd/user`), enabled through `systemctl --user`. The socket unit is what is
//! enabled: systemd listens at the daemon's usual path and starts it on the first request.

use super::{report_write, run_tool, step, tilde, units, write_if_changed, Written};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

pub struct Systemd {
    unit_dir: PathBuf,
}

impl Systemd {
    pub fn new() -> anyhow::Result<Self> {
        if !on_path("systemctl") {
            bail!("systemctl was not found: this system does not run systemd, so rolecall service cannot install a unit; the CLI starts rolecalld on demand (or run: rolecall daemon start)");
        }
        let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            Some(c) => PathBuf::from(c),
            None => super::home_dir()?.join(".config"),
        };
        Ok(Self {
            unit_dir: config.join("systemd").join("user"),
        })
    }

    fn service_path(&self) -> PathBuf {
        self.unit_dir.join(units::SERVICE_NAME)
    }

    fn socket_path(&self) -> PathBuf {
        self.unit_dir.join(units::SOCKET_NAME)
    }

    /// The links `systemctl enable` makes (removed by hand when no manager is reachable).
    fn wants_links(&self) -> [PathBuf; 2] {
        [
            self.unit_dir
                .join("sockets.target.wants")
                .join(units::SOCKET_NAME),
            self.unit_dir
                .join("default.target.wants")
                .join(units::SERVICE_NAME),
        ]
    }

    pub fn install(&self) -> anyhow::Result<i32> {
        let daemon = super::daemon_path()?;
        // Checked first, so that a machine without a user manager is left untouched.
        if let Err(why) = manager_reachable() {
            bail!("{}", no_manager(&why));
        }
        let service = units::systemd_service(&daemon)?;
        let w_service = write_if_changed(&self.service_path(), &service)?;
        report_write(&self.service_path(), w_service);
        let w_socket = write_if_changed(&self.socket_path(), units::SYSTEMD_SOCKET)?;
        report_write(&self.socket_path(), w_socket);
        println!(
            "  ExecStart={daemon} --foreground",
            daemon = daemon.display()
        );

        let changed = w_service != Written::Unchanged || w_socket != Written::Unchanged;
        if changed {
            step("systemctl", &["--user", "daemon-reload"])?;
        }
        let socket_was_active = is_active(units::SOCKET_NAME);
        if !socket_was_active {
            // An on-demand daemon holds the socket path and the single-instance lock.
            super::stop_stray_daemon()?;
        }
        if changed && is_active(units::SERVICE_NAME) {
            // The running daemon came from the old unit: the next request starts the new one.
            step("systemctl", &["--user", "stop", units::SERVICE_NAME])?;
        }
        if socket_was_active && w_socket != Written::Unchanged {
            step("systemctl", &["--user", "restart", units::SOCKET_NAME])?;
        }
        if is_enabled(units::SOCKET_NAME) && is_active(units::SOCKET_NAME) {
            println!("{} is already enabled and listening", units::SOCKET_NAME);
        } else {
            step(
                "systemctl",
                &["--user", "enable", "--now", units::SOCKET_NAME],
            )?;
        }
        println!(
            "rolecalld now starts through systemd on the first request to {} (logs: journalctl --user -u rolecalld, or rolecall daemon logs)",
            rolecall_proto::paths::socket_path().display()
        );
        Ok(0)
    }

    pub fn uninstall(&self) -> anyhow::Result<i32> {
        let present = self.service_path().exists() || self.socket_path().exists();
        let reachable = manager_reachable();
        if present {
            match &reachable {
                Ok(()) => {
                    let r = run_tool(
                        "systemctl",
                        &[
                            "--user",
                            "disable",
                            "--now",
                            units::SOCKET_NAME,
                            units::SERVICE_NAME,
                        ],
                    )?;
                    if !r.ok {
                        bail!(
                            "`systemctl --user disable --now {} {}` failed: {}",
                            units::SOCKET_NAME,
                            units::SERVICE_NAME,
                            r.first_err
                        );
                    }
                    println!(
                        "Ran: systemctl --user disable --now {} {}",
                        units::SOCKET_NAME,
                        units::SERVICE_NAME
                    );
                }
                Err(why) => println!(
                    "systemctl --user cannot reach a user manager ({why}): nothing runs under it here; removing the files only"
                ),
            }
        }
        let mut removed = 0;
        for p in self
            .wants_links()
            .iter()
            .chain([self.service_path(), self.socket_path()].iter())
        {
            if super::remove_if_present(p)? {
                println!("Removed {}", tilde(p));
                removed += 1;
            }
        }
        if removed == 0 {
            println!(
                "rolecalld is not installed as a systemd user service (nothing in {})",
                tilde(&self.unit_dir)
            );
            return Ok(0);
        }
        if reachable.is_ok() {
            step("systemctl", &["--user", "daemon-reload"])?;
        }
        println!(
            "rolecalld is no longer a systemd user service; the CLI starts it on demand again"
        );
        Ok(0)
    }

    pub fn status(&self) -> anyhow::Result<i32> {
        let service = self.service_path();
        let text = match std::fs::read_to_string(&service) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!(
                    "rolecalld is not installed as a systemd user service ({} does not exist); run: rolecall service install",
                    tilde(&service)
                );
                return Ok(super::NOT_INSTALLED);
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", service.display())),
        };
        println!("Unit: {}", tilde(&service));
        let installed_daemon = units::daemon_in_service(&text);
        match &installed_daemon {
            Some(d) => println!("Starts: {d} --foreground"),
            None => println!("Starts: (no ExecStart= line: the unit was edited)"),
        }
        if let (Some(d), Ok(current)) = (&installed_daemon, super::daemon_path()) {
            if Path::new(d) != current {
                println!(
                    "Note: this rolecall's daemon is {}; run `rolecall service install` to point the unit at it",
                    current.display()
                );
            }
        }
        if let Err(why) = manager_reachable() {
            println!("Manager: systemctl --user cannot reach a user manager ({why})");
            return Ok(super::NOT_INSTALLED);
        }
        let enabled = is_enabled(units::SOCKET_NAME);
        println!(
            "{}: {}, {}",
            units::SOCKET_NAME,
            if enabled { "enabled" } else { "not enabled" },
            if is_active(units::SOCKET_NAME) {
                "listening"
            } else {
                "not listening"
            }
        );
        println!(
            "{}: {}",
            units::SERVICE_NAME,
            if is_active(units::SERVICE_NAME) {
                "running"
            } else {
                "not running (starts on the first request)"
            }
        );
        Ok(if enabled { 0 } else { super::NOT_INSTALLED })
    }
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(name).is_file()))
}

/// Whether `systemctl --user` reaches a user manager; else systemctl's own explanation
/// ("Failed to connect to bus: No medium found", …).
fn manager_reachable() -> Result<(), String> {
    match run_tool(
        "systemctl",
        &["--user", "show", "--property=Version", "--value"],
    ) {
        Ok(r) if r.ok && !r.stdout.is_empty() => Ok(()),
        Ok(r) if !r.first_err.is_empty() => Err(r.first_err),
        Ok(_) => Err("no answer".to_string()),
        Err(e) => Err(format!("{e:#}")),
    }
}

fn no_manager(why: &str) -> String {
    format!(
        "systemctl --user cannot reach a systemd user manager ({why}): this session has none (a container, WSL without systemd, or su/sudo without a login session); nothing was installed — log in normally (or enable lingering: loginctl enable-linger) and retry; meanwhile the CLI starts rolecalld on demand"
    )
}

fn is_active(unit: &str) -> bool {
    run_tool("systemctl", &["--user", "is-active", "--quiet", unit]).is_ok_and(|r| r.ok)
}

fn is_enabled(unit: &str) -> bool {
    run_tool("systemctl", &["--user", "is-enabled", unit])
        .is_ok_and(|r| r.ok && r.stdout == "enabled")
}
