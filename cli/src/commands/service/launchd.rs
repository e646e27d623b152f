//! launchd: the agent `com.rolecall.rolecalld` in `~/Library/LaunchAgents/`, loaded into the
//! user's GUI domain with `launchctl bootstrap gui/<uid>`. It runs at login and is restarted
//! when it crashes; logs go to the state dir beside rolecalld's own log.

use super::{report_write, run_tool, step, tilde, units, write_if_changed, Written};
use anyhow::Context;
use std::path::PathBuf;

pub struct Launchd {
    plist: PathBuf,
    domain: String,
}

impl Launchd {
    pub fn new() -> anyhow::Result<Self> {
        let plist = super::home_dir()?
            .join("Library")
            .join("LaunchAgents")
            .join(format!("{}.plist", units::LAUNCHD_LABEL));
        Ok(Self {
            plist,
            domain: format!("gui/{}", rolecall_proto::paths::current_uid()),
        })
    }

    fn target(&self) -> String {
        format!("{}/{}", self.domain, units::LAUNCHD_LABEL)
    }

    fn loaded(&self) -> bool {
        run_tool("launchctl", &["print", &self.target()]).is_ok_and(|r| r.ok)
    }

    pub fn install(&self) -> anyhow::Result<i32> {
        let daemon = super::daemon_path()?;
        let log_dir = rolecall_proto::paths::state_dir();
        create_private_dir(&log_dir)?;
        let text = units::launchd_plist(&daemon, &log_dir)?;
        let w = write_if_changed(&self.plist, &text)?;
        report_write(&self.plist, w);
        println!("  ProgramArguments: {} --foreground", daemon.display());
        let plist = self.plist.to_string_lossy().into_owned();
        let loaded = self.loaded();
        if loaded && w == Written::Unchanged {
            println!("{} is already loaded", units::LAUNCHD_LABEL);
        } else {
            if loaded {
                // launchd keeps the definition it loaded: reload it to apply the new one.
                step("launchctl", &["bootout", &self.target()])?;
            } else {
                super::stop_stray_daemon()?;
            }
            // A previous `launchctl disable` would make bootstrap fail.
            step("launchctl", &["enable", &self.target()])?;
            step("launchctl", &["bootstrap", &self.domain, &plist])?;
        }
        println!(
            "rolecalld now runs under launchd at login (logs: {} and rolecall daemon logs)",
            log_dir.join("rolecalld.stderr.log").display()
        );
        Ok(0)
    }

    pub fn uninstall(&self) -> anyhow::Result<i32> {
        if self.loaded() {
            step("launchctl", &["bootout", &self.target()])?;
        }
        if super::remove_if_present(&self.plist)? {
            println!("Removed {}", tilde(&self.plist));
            println!("rolecalld is no longer a launchd agent; the CLI starts it on demand again");
        } else {
            println!(
                "rolecalld is not installed as a launchd agent ({} does not exist)",
                tilde(&self.plist)
            );
        }
        Ok(0)
    }

    pub fn status(&self) -> anyhow::Result<i32> {
        if !self.plist.exists() {
            println!(
                "rolecalld is not installed as a launchd agent ({} does not exist); run: rolecall service install",
                tilde(&self.plist)
            );
            return Ok(super::NOT_INSTALLED);
        }
        println!("Agent: {}", tilde(&self.plist));
        let r = run_tool("launchctl", &["print", &self.target()])?;
        if !r.ok {
            println!(
                "{}: not loaded (run: rolecall service install)",
                units::LAUNCHD_LABEL
            );
            return Ok(super::NOT_INSTALLED);
        }
        // `launchctl print` shows `state = running` and `pid = N` for a live job.
        let field = |key: &str| {
            r.stdout.lines().map(str::trim).find_map(|l| {
                l.strip_prefix(key)
                    .map(|v| v.trim_start_matches(" = ").to_string())
            })
        };
        let state = field("state").unwrap_or_else(|| "unknown".to_string());
        match field("pid") {
            Some(pid) => println!("{}: loaded, {state} (pid {pid})", units::LAUNCHD_LABEL),
            None => println!("{}: loaded, {state}", units::LAUNCHD_LABEL),
        }
        Ok(0)
    }
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn launchctl_targets_name_the_gui_domain_and_label() {
        let l = super::Launchd::new().unwrap();
        assert!(l.target().starts_with("gui/"));
        assert!(l.target().ends_with("/com.rolecall.rolecalld"));
        assert!(l
            .plist
            .ends_with("Library/LaunchAgents/com.rolecall.rolecalld.plist"));
    }
}
