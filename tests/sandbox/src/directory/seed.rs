//! Seeds: the built-in default, TOML files (a file without `[tenant]` extends the default),
//! `[generate]` for benchmarks, and the checks that keep a seed consistent.

use super::{Account, Assignment, Directory, Generate, PermissionSet};
use std::collections::BTreeSet;

/// The built-in seed, also shipped as `seeds/default.toml` for reading.
pub const DEFAULT_SEED: &str = include_str!("../../seeds/default.toml");

impl Default for Directory {
    fn default() -> Self {
        Directory::from_toml(DEFAULT_SEED).expect("the built-in seed is valid")
    }
}

impl Directory {
    /// Parses and checks a seed; errors name the problem (`toml` gives line and column).
    ///
    /// A seed without `[tenant]` extends the built-in directory: its lists are appended to the
    /// default ones and its other sections replace them (so a file holding only `[generate]`
    /// is the default directory plus generated accounts).
    pub fn from_toml(text: &str) -> Result<Directory, String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| one_line_toml_error(text, &e))?;
        let mut d: Directory = if table.contains_key("tenant") {
            toml::from_str(text).map_err(|e| one_line_toml_error(text, &e))?
        } else {
            let mut base: toml::Table =
                toml::from_str(DEFAULT_SEED).expect("the built-in seed is TOML");
            for (k, v) in table {
                match (base.get_mut(&k), v) {
                    (Some(toml::Value::Array(a)), toml::Value::Array(b)) => a.extend(b),
                    (_, v) => {
                        base.insert(k, v);
                    }
                }
            }
            toml::Value::Table(base)
                .try_into()
                .map_err(|e: toml::de::Error| e.message().trim().replace('\n', " "))?
        };
        if let Some(g) = d.generate.take() {
            d.apply_generate(&g);
        }
        d.validate()?;
        Ok(d)
    }

    pub fn load(path: &std::path::Path) -> Result<Directory, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read seed: {e}", path.display()))?;
        Directory::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn apply_generate(&mut self, g: &Generate) {
        let ps_start = self.permission_sets.len();
        for i in 0..g.permission_sets {
            // Cycle through realistic durations: 1h, 4h, 8h, 12h.
            let hours = [1, 4, 8, 12][i % 4];
            self.permission_sets.push(PermissionSet {
                name: format!("GeneratedSet{:02}", i + 1),
                session_duration_secs: hours * 3600,
                policy: None,
            });
        }
        let new_sets: Vec<String> = self.permission_sets[ps_start..]
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let users: Vec<String> = self.users.iter().map(|u| u.upn.clone()).collect();
        for i in 0..g.accounts {
            let id = format!("{:012}", 500_000_000_000u64 + i as u64);
            self.accounts.push(Account {
                id: id.clone(),
                name: format!("generated-{:04}", i + 1),
                email: Some(format!("aws-generated-{:04}@example.com", i + 1)),
            });
            for u in &users {
                for ps in &new_sets {
                    self.assignments.push(Assignment {
                        user: u.clone(),
                        account: id.clone(),
                        permission_set: ps.clone(),
                    });
                }
            }
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.users.is_empty() {
            return Err("the directory needs at least one user".into());
        }
        let mut seen = BTreeSet::new();
        for a in &self.accounts {
            if a.id.len() != 12 || !a.id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("account id '{}' is not 12 digits", a.id));
            }
            if !seen.insert(a.id.clone()) {
                return Err(format!("account '{}' appears twice", a.id));
            }
        }
        for p in &self.permission_sets {
            if !(3600..=43200).contains(&p.session_duration_secs) {
                return Err(format!(
                    "permission set '{}': session_duration_secs must be 3600..43200",
                    p.name
                ));
            }
            if let Some(doc) = &p.policy {
                crate::iam::Policy::parse(doc)
                    .map_err(|e| format!("permission set '{}': policy: {e}", p.name))?;
            }
        }
        for a in &self.assignments {
            if self.user(&a.user).is_none() {
                return Err(format!("assignment names unknown user '{}'", a.user));
            }
            if self.account(&a.account).is_none() {
                return Err(format!("assignment names unknown account '{}'", a.account));
            }
            if self.permission_set(&a.permission_set).is_none() {
                return Err(format!(
                    "assignment names unknown permission set '{}'",
                    a.permission_set
                ));
            }
        }
        for r in &self.iam_roles {
            if !r.arn.starts_with("arn:aws:iam::") || !r.arn.contains(":role/") {
                return Err(format!("'{}' is not an IAM role ARN", r.arn));
            }
            if !(3600..=43200).contains(&r.max_session_duration_secs) {
                return Err(format!(
                    "role '{}': max_session_duration_secs must be 3600..43200",
                    r.arn
                ));
            }
            if let Some(doc) = &r.policy {
                crate::iam::Policy::parse(doc)
                    .map_err(|e| format!("role '{}': policy: {e}", r.arn))?;
            }
        }
        Ok(())
    }
}

/// `line L, column C: message` on one line (toml's own Display draws a multi-line snippet).
fn one_line_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {col}: {msg}")
        }
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_seed_is_realistic() {
        let d = Directory::default();
        assert_eq!(
            d.permission_set("DeveloperReadOnly")
                .unwrap()
                .session_duration_secs,
            4 * 3600
        );
        assert_eq!(
            d.permission_set("DeveloperPowerUser")
                .unwrap()
                .session_duration_secs,
            8 * 3600
        );
        assert_eq!(
            d.permission_set("DeveloperAdmin")
                .unwrap()
                .session_duration_secs,
            4 * 3600
        );
        let alice = &d.default_user().upn;
        assert!(d.accounts_of(alice).len() >= 3);
        assert!(!d.roles_of(alice, "111111111111").is_empty());
        assert!(d
            .iam_role("arn:aws:iam::333333333333:role/EntraAdmin")
            .is_some());
        assert!(d.saml_roles_of(alice).len() >= 2);
        assert!(d.is_tenant(&d.tenant.domain.to_uppercase()));
    }

    #[test]
    fn generate_adds_accounts() {
        let text = format!("{DEFAULT_SEED}\n[generate]\naccounts = 300\npermission_sets = 3\n");
        let d = Directory::from_toml(&text).unwrap();
        let alice = d.default_user().upn.clone();
        assert!(d.accounts_of(&alice).len() >= 300);
        assert_eq!(d.roles_of(&alice, "500000000299").len(), 3);
    }

    #[test]
    fn partial_seed_extends_the_default() {
        let d = Directory::from_toml(
            "[generate]\naccounts = 2\npermission_sets = 1\n\n[[accounts]]\nid = \"999999999999\"\nname = \"extra\"\n",
        )
        .unwrap();
        assert_eq!(d.tenant, Directory::default().tenant);
        assert!(d.account("111111111111").is_some() && d.account("999999999999").is_some());
        assert_eq!(d.accounts.len(), Directory::default().accounts.len() + 3);
        let e = Directory::from_toml("[[accounts]]\nid = \"1\"\nname = \"x\"\n").unwrap_err();
        assert!(e.contains("12 digits"), "{e}");
        let e = Directory::from_toml("[[accounts]]\nid = \"111111111111\"\nname = \"dup\"\n")
            .unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn shipped_populate_seed_has_900_pairs() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/populate-300x3.toml");
        let d = Directory::load(&path).unwrap();
        let alice = d.default_user().upn.clone();
        let pairs: usize = d
            .accounts_of(&alice)
            .iter()
            .map(|a| d.roles_of(&alice, &a.id).len())
            .sum();
        // 900 generated plus the default directory's 5.
        assert_eq!(pairs, 905);
    }

    #[test]
    fn seed_sets_lifetimes() {
        let d = Directory::from_toml("[lifetimes]\naccess_token_secs = 30\n").unwrap();
        let lt = d.lifetimes.unwrap();
        assert_eq!(lt.access_token_secs, 30);
        assert_eq!(lt.device_code_secs, 600);
        assert!(Directory::from_toml("[lifetimes]\nbogus = 1\n").is_err());
    }

    #[test]
    fn bad_seed_is_explained() {
        let e = Directory::from_toml("[tenant]\nid = \"x\"\ndomain = \"y\"\n").unwrap_err();
        assert!(e.contains("identity_center") && !e.contains('\n'), "{e}");
        let e = Directory::from_toml("[tenant]\nid = 3\n").unwrap_err();
        assert!(e.starts_with("line 2, column 6: "), "{e}");
        let bad = DEFAULT_SEED.replace("id = \"111111111111\"", "id = \"11\"");
        assert!(Directory::from_toml(&bad)
            .unwrap_err()
            .contains("12 digits"));
    }
}
