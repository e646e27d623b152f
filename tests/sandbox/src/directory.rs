//! The seeded directory: who exists and who may do what.
//!
//! One TOML file (`--seed FILE`) or the built-in default describes the Entra tenant (users, app
//! registrations, the SAML enterprise app), the Identity Center instance (accounts, permission
//! sets, assignments) and IAM (roles, SAML and OIDC providers). `[generate]` adds many
//! accounts and permission sets for populate benchmarks. Reading and checking a seed is in
//! `seed`; this file holds the types and the questions the services ask of them.

mod seed;

pub use seed::DEFAULT_SEED;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub upn: String,
    /// Entra object id (GUID).
    pub oid: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PermissionSet {
    pub name: String,
    /// Session duration of the role credentials, in seconds (1h..12h in AWS).
    pub session_duration_secs: u64,
    /// The permissions (an IAM policy document); none = everything allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// User × account × permission set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub user: String,
    pub account: String,
    pub permission_set: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentityCenter {
    pub start_url: String,
    pub region: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// Directory (tenant) id, a GUID.
    pub id: String,
    /// Verified domain, usable in place of the id in URLs.
    pub domain: String,
}

/// An Entra app registration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EntraApp {
    pub client_id: String,
    pub display_name: String,
    /// "Allow public client flows" (needed for the device code flow).
    #[serde(default)]
    pub allow_public_client: bool,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// App ID URI of an exposed API (`api://…`), for v1 access tokens.
    #[serde(default)]
    pub app_id_uri: Option<String>,
}

/// One Role claim value of the SAML app: `role-arn,principal-arn`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SamlRoleClaim {
    pub role: String,
    pub principal: String,
    /// UPNs that get this role; empty = every user.
    #[serde(default)]
    pub users: Vec<String>,
}

/// The Entra SAML enterprise app ("AWS Single-Account Access").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SamlApp {
    /// Identifier (Entity ID) = the Audience of its assertions.
    pub identifier: String,
    /// Reply URL (ACS) where Entra posts the response.
    pub reply_url: String,
    /// SessionDuration attribute, seconds.
    pub session_duration_secs: u64,
    pub roles: Vec<SamlRoleClaim>,
}

/// An IAM role that a SAML or OIDC provider can assume.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IamRole {
    pub arn: String,
    /// MaxSessionDuration, seconds (3600..43200).
    pub max_session_duration_secs: u64,
    /// Provider ARNs (saml-provider/… or oidc-provider/…) the trust policy allows.
    pub trusted_providers: Vec<String>,
    /// `sts:ExternalId` the trust policy requires of `AssumeRole` callers, if any. (Any
    /// credentials the sandbox issued may assume any role here with `AssumeRole`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The role's identity-based policy (an IAM policy document); none = everything allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The trust policy names the role itself, so that its own sessions may assume it again
    /// (AWS requires this explicitly since 2023).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trusts_itself: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SamlProvider {
    pub arn: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OidcProvider {
    pub arn: String,
    /// Issuer URL (without scheme in the ARN, with it here).
    pub issuer: String,
    /// Client ids (audiences) it accepts.
    pub audiences: Vec<String>,
}

/// Bulk generation for benchmarks: extra accounts, each assigned every generated permission set
/// for every user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    #[serde(default)]
    pub accounts: usize,
    #[serde(default)]
    pub permission_sets: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    pub tenant: Tenant,
    pub identity_center: IdentityCenter,
    pub users: Vec<User>,
    #[serde(default)]
    pub accounts: Vec<Account>,
    #[serde(default)]
    pub permission_sets: Vec<PermissionSet>,
    #[serde(default)]
    pub assignments: Vec<Assignment>,
    #[serde(default)]
    pub entra_apps: Vec<EntraApp>,
    #[serde(default)]
    pub saml_app: Option<SamlApp>,
    #[serde(default)]
    pub iam_roles: Vec<IamRole>,
    #[serde(default)]
    pub saml_providers: Vec<SamlProvider>,
    #[serde(default)]
    pub oidc_providers: Vec<OidcProvider>,
    #[serde(default, skip_serializing)]
    pub generate: Option<Generate>,
    /// Lifetimes to start with (any subset; `SandboxOptions::lifetimes` wins over these).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetimes: Option<crate::clock::Lifetimes>,
}

impl Directory {
    /// The user approvals default to.
    pub fn default_user(&self) -> &User {
        &self.users[0]
    }

    pub fn user(&self, upn: &str) -> Option<&User> {
        self.users.iter().find(|u| u.upn.eq_ignore_ascii_case(upn))
    }

    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }

    pub fn permission_set(&self, name: &str) -> Option<&PermissionSet> {
        self.permission_sets.iter().find(|p| p.name == name)
    }

    /// Accounts the user has at least one assignment in, in directory order.
    pub fn accounts_of(&self, upn: &str) -> Vec<&Account> {
        self.accounts
            .iter()
            .filter(|a| {
                self.assignments
                    .iter()
                    .any(|s| s.account == a.id && s.user.eq_ignore_ascii_case(upn))
            })
            .collect()
    }

    /// Permission sets assigned to the user in one account.
    pub fn roles_of(&self, upn: &str, account: &str) -> Vec<&PermissionSet> {
        self.permission_sets
            .iter()
            .filter(|p| {
                self.assignments.iter().any(|s| {
                    s.account == account
                        && s.permission_set == p.name
                        && s.user.eq_ignore_ascii_case(upn)
                })
            })
            .collect()
    }

    /// Whether `tenant` (id or domain, case-insensitive) names this tenant.
    pub fn is_tenant(&self, tenant: &str) -> bool {
        tenant.eq_ignore_ascii_case(&self.tenant.id)
            || tenant.eq_ignore_ascii_case(&self.tenant.domain)
    }

    pub fn entra_app(&self, client_id: &str) -> Option<&EntraApp> {
        self.entra_apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    pub fn iam_role(&self, arn: &str) -> Option<&IamRole> {
        self.iam_roles.iter().find(|r| r.arn == arn)
    }

    /// The identity-based policy of the role a session belongs to (`arn:aws:sts::<acct>:
    /// assumed-role/<name>/<session>`): an IAM role's `policy`, or an Identity Center
    /// permission set's (`AWSReservedSSO_<set>_<hex>`); everything allowed when none is given.
    pub fn identity_policy_of(&self, session_arn: &str) -> String {
        let mut parts = session_arn.splitn(6, ':');
        let account = parts.nth(4).unwrap_or_default();
        let rest = parts.next().unwrap_or_default();
        let name = rest.split('/').nth(1).unwrap_or_default();
        let from_role = self.iam_roles.iter().find(|r| {
            r.arn.split(':').nth(4) == Some(account) && r.arn.rsplit('/').next() == Some(name)
        });
        let from_set = || {
            let set = name.strip_prefix("AWSReservedSSO_")?.rsplit_once('_')?.0;
            self.permission_set(set)?.policy.clone()
        };
        match from_role {
            Some(r) => r.policy.clone(),
            None => from_set(),
        }
        .unwrap_or_else(|| crate::iam::ADMINISTRATOR_ACCESS.to_string())
    }

    /// The SAML app's Role claim values for a user.
    pub fn saml_roles_of(&self, upn: &str) -> Vec<&SamlRoleClaim> {
        match &self.saml_app {
            None => Vec::new(),
            Some(app) => app
                .roles
                .iter()
                .filter(|r| {
                    r.users.is_empty() || r.users.iter().any(|u| u.eq_ignore_ascii_case(upn))
                })
                .collect(),
        }
    }

    pub fn oidc_provider_for_issuer(&self, issuer: &str) -> Vec<&OidcProvider> {
        self.oidc_providers
            .iter()
            .filter(|p| p.issuer == issuer)
            .collect()
    }
}
