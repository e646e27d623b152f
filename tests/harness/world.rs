//! The usual end-to-end setup in one value: a sandbox, an installation whose identity-center
//! source `corp` points at it, profiles from the sandbox's default directory, and a counting
//! `$BROWSER`.

use crate::command::Run;
use crate::install::{BrowserMode, IcProfile, Installation};
use crate::sandbox::{Sandbox, SandboxOptions};
use std::time::Duration;

/// Profiles of the default directory (user alice): two accounts, several permission sets.
pub fn default_profiles() -> Vec<IcProfile> {
    vec![
        IcProfile::new("dev-admin", "111111111111", "DeveloperAdmin"),
        IcProfile::new("dev-ro", "111111111111", "DeveloperReadOnly"),
        IcProfile::new("staging-power", "222222222222", "DeveloperPowerUser"),
        IcProfile::new("prod-ro", "333333333333", "DeveloperReadOnly"),
    ]
}

pub struct World {
    pub sandbox: Sandbox,
    pub inst: Installation,
    pub profiles: Vec<IcProfile>,
}

/// How a [`World`] is set up.
#[derive(Debug, Clone)]
pub struct WorldOptions {
    /// The sandbox approves the browser step by itself.
    pub auto_approve: bool,
    pub browser: BrowserMode,
    /// Extra `[daemon]` lines.
    pub daemon_extra: String,
    pub profiles: Vec<IcProfile>,
}

impl Default for WorldOptions {
    fn default() -> Self {
        Self {
            auto_approve: true,
            browser: BrowserMode::Follow,
            daemon_extra: String::new(),
            profiles: default_profiles(),
        }
    }
}

impl World {
    /// Auto-approving sandbox, following browser, default profiles.
    pub fn new() -> Self {
        Self::with(WorldOptions::default())
    }

    pub fn with(opts: WorldOptions) -> Self {
        let sandbox = Sandbox::start(SandboxOptions {
            auto_approve: opts.auto_approve,
            ..Default::default()
        })
        .expect("start the sandbox");
        let mut inst = Installation::new();
        inst.use_browser(opts.browser);
        inst.write_ic_setup(sandbox.url(), &opts.profiles, &opts.daemon_extra);
        Self {
            sandbox,
            inst,
            profiles: opts.profiles,
        }
    }

    /// `rolecall login corp`, which must succeed.
    pub fn login(&self) -> Run {
        let run = self
            .inst
            .rolecall(["login", "corp"])
            .timeout(Duration::from_secs(60))
            .run();
        run.assert_success();
        run
    }

    /// `rolecall credential-process <profile>` with stdin not a terminal (as SDKs run it).
    pub fn credential_process(&self, profile: &str) -> Run {
        self.inst
            .rolecall(["credential-process", profile])
            .timeout(Duration::from_secs(60))
            .run()
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}
