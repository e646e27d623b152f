//! IAM policy documents, enough of them to prove that a session policy narrows a role session:
//! parsing (with STS's `MalformedPolicyDocument` refusals), the evaluation of one request
//! against a role's identity-based policy and the session's policies, and the few AWS managed
//! policies the sandbox knows by ARN.
//!
//! Evaluated: `Effect`, `Action`/`NotAction` and `Resource`/`NotResource` with `*` and `?`
//! wildcards (actions case-insensitive, resources case-sensitive), explicit `Deny` beating any
//! `Allow`, and the session's permissions being the intersection of the identity-based policy
//! and the session policies (inline and managed together: one allowing is enough). Not
//! evaluated: `Condition` (a statement with one never allows and always denies: the safe side),
//! policy variables, resource-based policies, permission boundaries, SCPs.

use serde_json::Value;

/// Whether a statement allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action` or `NotAction` (and the same shape for resources).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Patterns {
    Listed(Vec<String>),
    NotListed(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    effect: Effect,
    actions: Patterns,
    resources: Patterns,
    has_condition: bool,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// What one policy (or a set of them) says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// No statement matches: an implicit deny.
    NotApplicable,
}

/// The outcome of evaluating a request, with what AWS names in its AccessDenied message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    /// `with an explicit deny in a(n) <kind>`.
    ExplicitDeny(&'static str),
    /// `because no <kind> allows the <action> action`.
    NoAllow(&'static str),
}

impl Outcome {
    /// AWS's message for a refusal, `None` when allowed.
    pub fn denial(&self, caller_arn: &str, action: &str, resource: &str) -> Option<String> {
        let head = format!(
            "User: {caller_arn} is not authorized to perform: {action} on resource: {resource}"
        );
        match self {
            Outcome::Allowed => None,
            Outcome::ExplicitDeny(kind) => {
                Some(format!("{head} with an explicit deny in a {kind}"))
            }
            Outcome::NoAllow(kind) => Some(format!(
                "{head} because no {kind} allows the {action} action"
            )),
        }
    }
}

/// What `MalformedPolicyDocument` says: the first problem found.
pub type Malformed = String;

fn strings(v: &Value, what: &str) -> Result<Vec<String>, Malformed> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("Syntax errors in policy: {what} must hold strings."))
            })
            .collect(),
        _ => Err(format!(
            "Syntax errors in policy: {what} must be a string or a non-empty list of strings."
        )),
    }
}

fn one_of(
    st: &serde_json::Map<String, Value>,
    yes: &str,
    no: &str,
    missing: &str,
) -> Result<Patterns, Malformed> {
    match (st.get(yes), st.get(no)) {
        (Some(_), Some(_)) => Err(format!(
            "Syntax errors in policy: a statement has both {yes} and {no}."
        )),
        (Some(v), None) => Ok(Patterns::Listed(strings(v, yes)?)),
        (None, Some(v)) => Ok(Patterns::NotListed(strings(v, no)?)),
        (None, None) => Err(missing.to_string()),
    }
}

fn check_action(a: &str) -> Result<(), Malformed> {
    let ok = a == "*"
        || a.split_once(':').is_some_and(|(svc, op)| {
            !svc.is_empty()
                && !op.is_empty()
                && svc
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
                && op
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. (got {a:?})"
        ))
    }
}

impl Policy {
    /// Parses a session or identity policy as IAM does, refusing what it refuses.
    pub fn parse(text: &str) -> Result<Policy, Malformed> {
        let doc: Value =
            serde_json::from_str(text).map_err(|_| "Syntax errors in policy.".to_string())?;
        let obj = doc
            .as_object()
            .ok_or_else(|| "Syntax errors in policy.".to_string())?;
        for key in obj.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(format!("Syntax errors in policy: unknown field {key}."));
            }
        }
        if let Some(v) = obj.get("Version") {
            if !matches!(v.as_str(), Some("2012-10-17" | "2008-10-17")) {
                return Err("The policy failed legacy parsing".to_string());
            }
        }
        let raw = match obj.get("Statement") {
            Some(Value::Array(a)) => a.clone(),
            Some(v @ Value::Object(_)) => vec![v.clone()],
            _ => return Err("Syntax errors in policy: Statement is missing.".to_string()),
        };
        let mut statements = Vec::new();
        for st in &raw {
            let st = st
                .as_object()
                .ok_or_else(|| "Syntax errors in policy.".to_string())?;
            for key in st.keys() {
                match key.as_str() {
                    "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource"
                    | "Condition" => {}
                    "Principal" | "NotPrincipal" => {
                        return Err("Policy document should not specify a principal.".to_string())
                    }
                    other => {
                        return Err(format!("Syntax errors in policy: unknown field {other}."))
                    }
                }
            }
            let effect = match st.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err("Syntax errors in policy: Effect must be Allow or Deny.".into()),
            };
            let actions = one_of(
                st,
                "Action",
                "NotAction",
                "Policy statement must contain actions.",
            )?;
            let (Patterns::Listed(list) | Patterns::NotListed(list)) = &actions;
            for a in list {
                check_action(a)?;
            }
            let resources = one_of(
                st,
                "Resource",
                "NotResource",
                "Policy statement must contain resources.",
            )?;
            statements.push(Statement {
                effect,
                actions,
                resources,
                has_condition: st.contains_key("Condition"),
            });
        }
        Ok(Policy { statements })
    }

    /// This policy's say on `action` (e.g. `s3:PutObject`) on `resource` (an ARN).
    pub fn decide(&self, action: &str, resource: &str) -> Decision {
        let mut allowed = false;
        for st in &self.statements {
            let action_hit = match &st.actions {
                Patterns::Listed(l) => l.iter().any(|p| wildcard(p, action, false)),
                Patterns::NotListed(l) => !l.iter().any(|p| wildcard(p, action, false)),
            };
            let resource_hit = match &st.resources {
                Patterns::Listed(l) => l.iter().any(|p| wildcard(p, resource, true)),
                Patterns::NotListed(l) => !l.iter().any(|p| wildcard(p, resource, true)),
            };
            if !(action_hit && resource_hit) {
                continue;
            }
            match st.effect {
                // A condition the sandbox cannot evaluate: deny rather than guess.
                Effect::Deny => return Decision::Deny,
                Effect::Allow if !st.has_condition => allowed = true,
                Effect::Allow => {}
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::NotApplicable
        }
    }
}

/// `*` matches any run, `?` one character. Actions compare without case, resources with it.
pub fn wildcard(pattern: &str, value: &str, case_sensitive: bool) -> bool {
    let fold = |s: &str| {
        if case_sensitive {
            s.chars().collect::<Vec<_>>()
        } else {
            s.to_ascii_lowercase().chars().collect()
        }
    };
    let (p, v) = (fold(pattern), fold(value));
    // Iterative glob matching with one backtrack point.
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Combines several policies of one kind: any explicit deny wins, else any allow.
fn combined(policies: &[Policy], action: &str, resource: &str) -> Decision {
    let mut out = Decision::NotApplicable;
    for p in policies {
        match p.decide(action, resource) {
            Decision::Deny => return Decision::Deny,
            Decision::Allow => out = Decision::Allow,
            Decision::NotApplicable => {}
        }
    }
    out
}

/// A role session's request: allowed when the identity-based policy allows it, no policy denies
/// it, and — when the session has session policies — one of them allows it too.
pub fn evaluate(identity: &[Policy], session: &[Policy], action: &str, resource: &str) -> Outcome {
    let id = combined(identity, action, resource);
    let sess = combined(session, action, resource);
    if id == Decision::Deny {
        return Outcome::ExplicitDeny("identity-based policy");
    }
    if sess == Decision::Deny {
        return Outcome::ExplicitDeny("session policy");
    }
    if id != Decision::Allow {
        return Outcome::NoAllow("identity-based policy");
    }
    if !session.is_empty() && sess != Decision::Allow {
        return Outcome::NoAllow("session policy");
    }
    Outcome::Allowed
}

/// Evaluates a request made with an issued credential: its role's identity-based policy (from
/// the directory) within the session policies it was created with.
pub fn session_outcome(
    sb: &crate::Sandbox,
    cred: &crate::issued::IssuedCredential,
    action: &str,
    resource: &str,
) -> Outcome {
    let identity_text = sb.dir().identity_policy_of(&cred.arn);
    // Seeds and STS checked every document; one that fails to parse allows nothing.
    let identity: Vec<Policy> = Policy::parse(&identity_text).into_iter().collect();
    let mut session: Vec<Policy> = Vec::new();
    let texts = cred
        .session_policy
        .iter()
        .map(String::as_str)
        .chain(cred.policy_arns.iter().filter_map(|a| managed_policy(a)));
    for t in texts {
        session.push(Policy::parse(t).unwrap_or(Policy {
            statements: Vec::new(),
        }));
    }
    evaluate(&identity, &session, action, resource)
}

/// Allows everything: the identity-based policy of a role or permission set that names none.
pub const ADMINISTRATOR_ACCESS: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// The AWS managed policies the sandbox knows by ARN. `ReadOnlyAccess` is cut down to the
/// services the sandbox emulates (AWS's own lists several hundred actions, all reads).
pub fn managed_policy(arn: &str) -> Option<&'static str> {
    Some(match arn {
        "arn:aws:iam::aws:policy/AdministratorAccess" => ADMINISTRATOR_ACCESS,
        "arn:aws:iam::aws:policy/ReadOnlyAccess" => {
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*","s3:Describe*","sts:GetCallerIdentity","iam:Get*","iam:List*","sso:Get*","sso:List*"],"Resource":"*"}]}"#
        }
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess" => {
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*","s3:Describe*"],"Resource":"*"}]}"#
        }
        "arn:aws:iam::aws:policy/AmazonS3FullAccess" => {
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
        }
        _ => return None,
    })
}

/// The length AWS's 2048-character limit counts after packing, as the sandbox models it: the
/// policy without the whitespace outside its strings (AWS's real packing is a compression whose
/// ratio it does not document).
pub fn packed_len(text: &str) -> usize {
    let mut n = 0;
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            n += 1;
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !c.is_whitespace() {
            n += 1;
            if c == '"' {
                in_string = true;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Policy {
        Policy::parse(s).unwrap()
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("s3:Get*", "s3:GetObject", false));
        assert!(wildcard("S3:get*", "s3:GetObject", false));
        assert!(!wildcard("s3:Get*", "s3:PutObject", false));
        assert!(wildcard("*", "anything", true));
        assert!(wildcard("arn:aws:s3:::b/*", "arn:aws:s3:::b/k/x", true));
        assert!(!wildcard("arn:aws:s3:::B/*", "arn:aws:s3:::b/k", true));
        assert!(wildcard("s3:?etObject", "s3:GetObject", false));
        assert!(!wildcard("arn:aws:s3:::b", "arn:aws:s3:::b/k", true));
    }

    #[test]
    fn malformed_documents_are_refused() {
        for (doc, why) in [
            ("{not json", "Syntax errors"),
            (r#"{"Version":"2012-10-17"}"#, "Statement is missing"),
            (
                r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
                "Effect",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
                "must contain actions",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#,
                "must contain resources",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"GetObject","Resource":"*"}]}"#,
                "vendor",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#,
                "principal",
            ),
            (r#"{"Version":"2020-01-01","Statement":[]}"#, "legacy"),
        ] {
            let e = Policy::parse(doc).unwrap_err();
            assert!(e.contains(why), "{doc}: {e}");
        }
    }

    #[test]
    fn session_policies_narrow_and_deny_wins() {
        let admin = vec![p(ADMINISTRATOR_ACCESS)];
        let ro = vec![p(
            managed_policy("arn:aws:iam::aws:policy/ReadOnlyAccess").unwrap()
        )];
        assert_eq!(
            evaluate(&admin, &[], "s3:PutObject", "arn:aws:s3:::b/k"),
            Outcome::Allowed
        );
        assert_eq!(
            evaluate(&admin, &ro, "s3:GetObject", "arn:aws:s3:::b/k"),
            Outcome::Allowed
        );
        assert_eq!(
            evaluate(&admin, &ro, "s3:PutObject", "arn:aws:s3:::b/k"),
            Outcome::NoAllow("session policy")
        );
        let deny = p(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/secret*"}]}"#,
        );
        let s = vec![deny];
        assert_eq!(
            evaluate(&admin, &s, "s3:GetObject", "arn:aws:s3:::b/public"),
            Outcome::Allowed
        );
        assert_eq!(
            evaluate(&admin, &s, "s3:GetObject", "arn:aws:s3:::b/secret.txt"),
            Outcome::ExplicitDeny("session policy")
        );
        // A session policy never widens the role's own permissions.
        let s3_only = vec![p(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
        )];
        assert_eq!(
            evaluate(&s3_only, &admin, "iam:ListRoles", "*"),
            Outcome::NoAllow("identity-based policy")
        );
        // A condition is never taken as satisfied.
        let cond = vec![p(
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}}"#,
        )];
        assert_eq!(
            evaluate(&admin, &cond, "s3:GetObject", "arn:aws:s3:::b/k"),
            Outcome::NoAllow("session policy")
        );
    }

    #[test]
    fn packing_drops_whitespace_outside_strings() {
        assert_eq!(packed_len("{ \"a b\" : 1 }"), "{\"a b\":1}".len());
        assert_eq!(packed_len(r#"{"a\" ":1}"#), r#"{"a\" ":1}"#.len());
    }
}
