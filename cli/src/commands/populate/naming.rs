//! Profile names for listed roles: the `--name-template` (default `{account_name}.{role}`),
//! the `--prefix`, and a character set that every consumer accepts unquoted (AWS config
//! section names, shell completion words; TOML keys are quoted by toml_edit anyway). No `/`:
//! the daemon refuses it in profile names, which travel in its socket API's paths.

use rolecall_proto::api::AvailableRole;

pub const DEFAULT_TEMPLATE: &str = "{account_name}.{role}";

/// Renders the template for one role. `{account_name}` falls back to the account id.
pub fn render(template: &str, prefix: &str, source: &str, r: &AvailableRole) -> String {
    let account_name = r
        .account_name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(&r.account_id);
    // For entra-* roles the "role" is an ARN: its last path segment is the readable part.
    let role = r.role.rsplit('/').next().unwrap_or(&r.role);
    let name = template
        .replace("{account_name}", account_name)
        .replace("{account_id}", &r.account_id)
        .replace("{role}", role)
        .replace("{source}", source);
    sanitize(&format!("{prefix}{name}"))
}

/// Keeps `[A-Za-z0-9._+@-]`, turns runs of anything else into one `-`, trims `-` and `.`,
/// starts with a letter or digit and stops at 128 characters (the daemon's rule for names).
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut dash = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '@' | '-') {
            out.push(c);
            dash = false;
        } else if !dash {
            out.push('-');
            dash = true;
        }
    }
    // No dash may hug a dot: "Prod (EU).Admin" reads "Prod-EU.Admin".
    while out.contains("-.") || out.contains(".-") {
        out = out.replace("-.", ".").replace(".-", ".");
    }
    // The daemon's one rule for names: a letter or digit first, at most 128 characters.
    let out = out.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut out: String = out
        .chars()
        .take(rolecall_proto::names::MAX_NAME_LEN)
        .collect();
    while out.ends_with(['-', '.']) {
        out.pop();
    }
    out
}

/// Checks a template before anything is listed: it must name something per role.
pub fn check_template(t: &str) -> anyhow::Result<()> {
    let known = ["{account_name}", "{account_id}", "{role}", "{source}"];
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| anyhow::anyhow!("--name-template: unclosed `{{` in {t:?}"))?;
        let ph = &rest[open..open + close + 1];
        if !known.contains(&ph) {
            anyhow::bail!(
                "--name-template: unknown placeholder {ph} (use {{account_name}} {{account_id}} {{role}} {{source}})"
            );
        }
        rest = &rest[open + close + 1..];
    }
    if !t.contains("{role}") || !(t.contains("{account_name}") || t.contains("{account_id}")) {
        anyhow::bail!(
            "--name-template must contain {{role}} and {{account_name}} or {{account_id}} so that names are unique"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(id: &str, name: Option<&str>, role: &str) -> AvailableRole {
        AvailableRole {
            account_id: id.into(),
            account_name: name.map(Into::into),
            role: role.into(),
            principal: None,
        }
    }

    #[test]
    fn default_template_and_prefix() {
        let r = role(
            "111111111111",
            Some("Prod Account (EU)"),
            "AdministratorAccess",
        );
        assert_eq!(
            render(DEFAULT_TEMPLATE, "", "corp", &r),
            "Prod-Account-EU.AdministratorAccess"
        );
        assert_eq!(
            render("{source}-{account_id}-{role}", "x.", "corp", &r),
            "x.corp-111111111111-AdministratorAccess"
        );
        let r = role(
            "111111111111",
            None,
            "arn:aws:iam::111111111111:role/team/Dev",
        );
        assert_eq!(render(DEFAULT_TEMPLATE, "", "s", &r), "111111111111.Dev");
        assert_eq!(
            render("{account_name}/{role}", "", "s", &r),
            "111111111111-Dev"
        );
    }

    #[test]
    fn templates_are_checked() {
        assert!(check_template(DEFAULT_TEMPLATE).is_ok());
        assert!(check_template("{account_id}.{role}").is_ok());
        assert!(check_template("{role}").is_err());
        assert!(check_template("{account_name}/{rol}").is_err());
        assert!(check_template("{account_name}/{role").is_err());
    }
}
