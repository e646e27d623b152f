//! `rolecall container <profile> --format k8s`: the token as a Kubernetes Secret and the
//! variables as a ConfigMap, for pods that use the SDKs' EKS Pod Identity support against
//! rolecalld (docs/containers.md, *Local Kubernetes*). Meant for `| kubectl apply -f -`.
//!
//! The token goes in a Secret mounted as a file, never in an env value: the SDKs re-read
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` on every fetch, so a replaced Secret (a new token
//! after the old one expired) reaches running pods without a restart once the kubelet has
//! synced the volume.

/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` for Pod Identity clients: the EKS Pod Identity Agent's
/// address, which `rolecall container setup` forwards to rolecalld.
pub const POD_IDENTITY_URI: &str = "http://169.254.170.23/v1/credentials";

/// Where the manifests expect the Secret to be mounted in the pod.
pub const TOKEN_DIR: &str = "/var/run/secrets/rolecall";

/// The token file inside the pod (the Secret's key `token` under [`TOKEN_DIR`]).
pub fn token_path() -> String {
    format!("{TOKEN_DIR}/token")
}

/// `rolecall-<profile>`, made a valid object name (RFC 1123 label: lowercase alphanumerics
/// and `-`, at most 63 characters, alphanumeric at both ends).
pub fn object_name(profile: &str) -> String {
    let mut name: String = format!("rolecall-{profile}")
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

/// The Secret holding `token` and the ConfigMap holding `vars` (values already chosen for the
/// pod: the link-local URI and the in-pod token path), as one multi-document YAML stream.
pub fn manifests(
    profile: &str,
    token: &str,
    expires: Option<&str>,
    vars: &[(&str, String)],
) -> String {
    let name = object_name(profile);
    let q = super::yaml_quote;
    let mut out = format!(
        "# rolecall: Pod Identity-style credentials of profile {profile:?} for local Kubernetes.\n"
    );
    if let Some(when) = expires {
        out.push_str(&format!(
            "# The token expires at {when}; `rolecall container {profile} --renew` extends it.\n"
        ));
    }
    out.push_str(
        "# Needs, once, as root: rolecall container setup --interface <bridge> --apply\n\
         # (forwards 169.254.170.23:80). Pods: envFrom the ConfigMap, mount the Secret at\n",
    );
    out.push_str(&format!(
        "# {TOKEN_DIR} (see docs/containers.md).\n\
         apiVersion: v1\n\
         kind: Secret\n\
         metadata:\n\
         \x20 name: {name}\n\
         type: Opaque\n\
         stringData:\n\
         \x20 token: {}\n\
         ---\n\
         apiVersion: v1\n\
         kind: ConfigMap\n\
         metadata:\n\
         \x20 name: {name}\n\
         data:\n",
        q(token)
    ));
    out.push_str(&super::render(vars, super::ContainerFormat::K8s));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_kubernetes_object_names() {
        assert_eq!(object_name("dev-admin"), "rolecall-dev-admin");
        assert_eq!(object_name("Prod_RO.eu"), "rolecall-prod-ro-eu");
        let long = object_name(&"x".repeat(100));
        assert_eq!(long.len(), 63);
        assert_eq!(object_name(&format!("{}_", "a".repeat(53))).len(), 62);
    }

    #[test]
    fn the_secret_holds_the_token_and_the_config_map_the_variables() {
        let vars = vec![
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                POD_IDENTITY_URI.into(),
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_path()),
        ];
        let y = manifests("dev", "rct_T", Some("2026-01-01T00:00:00Z"), &vars);
        let (secret, config) = y.split_once("\n---\n").unwrap();
        assert!(secret.contains("kind: Secret\n"));
        assert!(
            secret.ends_with("\nstringData:\n  token: \"rct_T\""),
            "{secret}"
        );
        assert!(config.starts_with("apiVersion: v1\nkind: ConfigMap\n"));
        assert!(!config.contains("rct_T"));
        assert!(config.contains(
            "  AWS_CONTAINER_CREDENTIALS_FULL_URI: \"http://169.254.170.23/v1/credentials\"\n"
        ));
        assert!(config.contains(
            "  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: \"/var/run/secrets/rolecall/token\"\n"
        ));
    }
}
