//! `rolecall populate <source>`: asks the daemon for every account × role the source offers
//! (`GET /v1/sources/{source}/roles`), writes `[profiles.*]` into the rolecall config, and
//! mirrors every rolecall profile into the managed block of `~/.aws/config`.
//!
//! Both files are checked before anything is written, and each is written atomically and only
//! when it changes, so running it twice changes nothing. `--dry-run` prints unified diffs.

mod diff;
mod edit;
mod naming;

pub use diff::unified as unified_diff;
pub use naming::sanitize as sanitize_name;

use crate::awsconfig::{self, BlockProfile};
use crate::cli::PopulateArgs;
use crate::client::Client;
use anyhow::{bail, Context};
use rolecall_proto::api::{AvailableRole, AvailableRoles, OkReply};
use rolecall_proto::request::Request;
use std::collections::HashMap;
use std::path::Path;

pub fn run(a: &PopulateArgs, autostart: bool) -> anyhow::Result<i32> {
    let template = a
        .name_template
        .as_deref()
        .unwrap_or(naming::DEFAULT_TEMPLATE);
    naming::check_template(template)?;
    let prefix = a.prefix.as_deref().unwrap_or("");

    let config_path = rolecall_proto::paths::config_file();
    let config_text = read_or_empty(&config_path)?;
    let mut doc = parse_config(&config_text, &config_path)?;
    let known_source = doc
        .get("sources")
        .and_then(|s| s.as_table_like())
        .is_some_and(|s| s.contains_key(&a.source));
    if !known_source {
        bail!(
            "unknown source '{}' in {} — run: rolecall import, or add [sources.{}]",
            a.source,
            config_path.display(),
            a.source
        );
    }
    let aws_path = awsconfig::config_path();
    let aws_text = read_or_empty(&aws_path)?;
    // Checked now, before the daemon is asked anything: a malformed file is never written.
    awsconfig::split(&aws_text)
        .map_err(|e| anyhow::anyhow!("{}:{}: {}", aws_path.display(), e.line, e.message))?;

    let client = Client::connect(autostart)?;
    let listing: AvailableRoles = client
        .send(&Request::Roles {
            source: a.source.clone(),
        })
        .context("cannot list the source's roles")?;
    let named = name_roles(&listing.roles, template, prefix, &a.source);

    let changes = edit::apply(&mut doc, &a.source, &named, a.prune);
    let new_config = doc.to_string();

    let exe = rolecall_exe()?;
    let (new_aws, shadowed) = aws_update(&aws_text, &new_config, &exe)
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", aws_path.display()))?;

    for (name, why) in &changes.skipped {
        eprintln!("rolecall: warning: skipped {name}: {why}");
    }
    for name in &shadowed {
        eprintln!(
            "rolecall: warning: [profile {name}] is defined outside the rolecall block of {}; left out of the block",
            aws_path.display()
        );
    }
    warn_credentials_shadowing(&new_aws);

    let summary = format!(
        "{}: {} roles listed; {} added, {} account names updated, {} removed, {} unchanged{}",
        a.source,
        listing.roles.len(),
        changes.added.len(),
        changes.renamed_account.len(),
        changes.removed.len(),
        changes.unchanged,
        if changes.gone.is_empty() {
            String::new()
        } else {
            format!(
                "; {} no longer available (remove them with --prune)",
                changes.gone.len()
            )
        }
    );

    if a.dry_run {
        let mut out = String::new();
        out.push_str(&diff::unified(
            &config_text,
            &new_config,
            &config_path.display().to_string(),
            &config_path.display().to_string(),
        ));
        out.push_str(&diff::unified(
            &aws_text,
            &new_aws,
            &aws_path.display().to_string(),
            &aws_path.display().to_string(),
        ));
        print!("{out}");
        eprintln!("rolecall: dry run, nothing written: {summary}");
        return Ok(0);
    }

    let mut wrote = Vec::new();
    if new_config != config_text {
        awsconfig::write_atomic(&config_path, &new_config)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        wrote.push(config_path.display().to_string());
    }
    if new_aws != aws_text {
        awsconfig::write_atomic(&aws_path, &new_aws)
            .with_context(|| format!("cannot write {}", aws_path.display()))?;
        wrote.push(aws_path.display().to_string());
    }
    if new_config != config_text {
        // The daemon re-reads its config; a failure here only delays that to its next reload.
        if let Err(e) = client.send::<OkReply>(&Request::Reload) {
            eprintln!("rolecall: warning: the daemon did not reload its config: {e}");
        }
    }
    println!("{summary}");
    if wrote.is_empty() {
        println!("nothing to change");
    } else {
        println!("updated {}", wrote.join(" and "));
    }
    Ok(0)
}

/// Names every listed role, disambiguating names two roles would share with the account id.
fn name_roles(
    roles: &[AvailableRole],
    template: &str,
    prefix: &str,
    source: &str,
) -> Vec<(String, AvailableRole)> {
    let first: Vec<String> = roles
        .iter()
        .map(|r| naming::render(template, prefix, source, r))
        .collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for n in &first {
        *count.entry(n.as_str()).or_default() += 1;
    }
    let mut out: Vec<(String, AvailableRole)> = roles
        .iter()
        .zip(&first)
        .map(|(r, n)| {
            let name = if count[n.as_str()] > 1 {
                naming::sanitize(&format!("{n}-{}", r.account_id))
            } else {
                n.clone()
            };
            (name, r.clone())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The AWS config with its block rebuilt from every profile of `rolecall_config`, and the
/// profile names left out because the file defines them outside the block.
pub fn aws_update(
    aws_text: &str,
    rolecall_config: &str,
    exe: &str,
) -> anyhow::Result<(String, Vec<String>)> {
    let split = awsconfig::split(aws_text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let outside = split.outside_profiles();
    let profiles = super::use_profile::profiles::parse(rolecall_config)?;
    let mut shadowed = Vec::new();
    let block: Vec<BlockProfile> = profiles
        .into_iter()
        .filter(|p| {
            // Two sections of one name make botocore's parser fail on the whole file.
            let dup = outside.contains(&p.name);
            if dup {
                shadowed.push(p.name.clone());
            }
            !dup
        })
        .map(|p| BlockProfile {
            name: p.name,
            region: p.region,
        })
        .collect();
    let text = awsconfig::apply(aws_text, &split, &awsconfig::render_block(&block, exe));
    Ok((text, shadowed))
}

/// botocore prefers keys in `~/.aws/credentials` to `credential_process`: warn per profile.
fn warn_credentials_shadowing(aws_text: &str) {
    let path = awsconfig::credentials_path();
    let Ok(creds) = std::fs::read_to_string(&path) else {
        return;
    };
    let Ok(split) = awsconfig::split(aws_text) else {
        return;
    };
    let Some(block) = split.block else { return };
    let in_block: Vec<String> = block
        .lines()
        .filter_map(|l| {
            let inner = l.trim().strip_prefix('[')?.strip_suffix(']')?;
            awsconfig::profile_name(inner.trim())
        })
        .collect();
    for s in awsconfig::credentials_sections(&creds) {
        if in_block.contains(&s) {
            eprintln!(
                "rolecall: warning: {} has a [{s}] section; AWS clients use its keys instead of rolecall for profile {s}",
                path.display()
            );
        }
    }
}

fn read_or_empty(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub fn parse_config(text: &str, path: &Path) -> anyhow::Result<toml_edit::DocumentMut> {
    text.parse::<toml_edit::DocumentMut>().map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        let msg = e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_owned();
        anyhow::anyhow!("{}:{line}:{col}: {msg}", path.display())
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The absolute path of this binary, for `credential_process` (SDKs and IDEs may lack PATH).
pub fn rolecall_exe() -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("cannot find the path of this rolecall binary")?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    exe.to_str()
        .map(str::to_owned)
        .context("the path of this rolecall binary is not valid UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(id: &str, name: &str, role: &str) -> AvailableRole {
        AvailableRole {
            account_id: id.into(),
            account_name: Some(name.into()),
            role: role.into(),
            principal: None,
        }
    }

    #[test]
    fn shared_names_get_the_account_id() {
        let n = name_roles(
            &[
                role("1", "Shared", "Admin"),
                role("2", "Shared", "Admin"),
                role("3", "Solo", "Admin"),
            ],
            naming::DEFAULT_TEMPLATE,
            "",
            "corp",
        );
        let names: Vec<&str> = n.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Shared.Admin-1", "Shared.Admin-2", "Solo.Admin"]);
    }

    #[test]
    fn block_mirrors_every_profile_except_hand_written_ones() {
        let cfg = r#"
[sources.corp]
kind = "identity-center"
region = "eu-west-1"
[profiles.a]
source = "corp"
role = "R"
[profiles.mine]
source = "corp"
role = "R"
region = "us-east-2"
"#;
        let aws = "[profile mine]\nregion = us-east-1\n";
        let (text, shadowed) = aws_update(aws, cfg, "/bin/rolecall").unwrap();
        assert_eq!(shadowed, ["mine"]);
        assert!(text.starts_with(aws));
        assert!(text.contains(
            "[profile a]\ncredential_process = /bin/rolecall credential-process a\nregion = eu-west-1\n"
        ));
        assert!(!text[aws.len()..].contains("[profile mine]"));
    }

    #[test]
    fn config_errors_name_file_line_and_column() {
        let e = parse_config("[daemon]\nx = \n", Path::new("/c.toml")).unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("/c.toml:2:"), "{s}");
        assert!(!s.contains('\n'));
    }
}
