//! `rolecall container <profile>`: mints a container token scoped to one profile and prints the
//! variables an SDK in a container needs; `--revoke` takes tokens back; `container setup`
//! prints (or applies) the one-time forwarding of 169.254.170.2.
//!
//! Exactly one of `AWS_CONTAINER_CREDENTIALS_FULL_URI` / `_RELATIVE_URI` is printed: SDKs
//! disagree on which wins when both are set. Both `AWS_REGION` and `AWS_DEFAULT_REGION` are
//! printed, since boto3 reads only the latter.
//!
//! `--pod-identity` points the URI at `http://169.254.170.23/v1/credentials`, the EKS Pod
//! Identity–style route where the token alone selects the profile; `--format k8s` prints that
//! as a Secret (the token) and a ConfigMap (the variables) for local Kubernetes.
//!
//! `--format docker` never puts the token on a command line (every local user can read another
//! process's argv in /proc): it writes the variables to a private env file and prints
//! `--env-file <path>`.

mod k8s;
mod setup;

use crate::cli::{ContainerArgs, ContainerCommand, ContainerFormat};
use crate::client::Client;
use anyhow::{bail, Context as _};
use rolecall_proto::api::{
    MintTokenReply, MintTokenRequest, OkReply, RenewTokenReply, RenewTokenRequest,
    RevokeTokenRequest,
};
use rolecall_proto::request::Request;
use std::io::Write as _;
use std::path::Path;

pub fn run(a: &ContainerArgs, autostart: bool) -> anyhow::Result<i32> {
    if let Some(ContainerCommand::Setup(s)) = &a.command {
        return setup::run(s);
    }
    if a.revoke {
        return revoke(a, autostart);
    }
    let Some(profile) = &a.profile else {
        bail!("name a profile: rolecall container <profile> (or rolecall container setup)");
    };
    if a.renew {
        return renew(profile, autostart);
    }
    let k8s = matches!(a.format, ContainerFormat::K8s);
    if k8s && a.token_file.is_some() {
        bail!("--format k8s puts the token in a Secret mounted in the pod; drop --token-file");
    }
    if k8s && a.relative {
        bail!("--format k8s uses the Pod Identity address; drop --relative");
    }
    let client = Client::connect(autostart)?;
    let reply: MintTokenReply = client.send_json(
        &Request::MintToken,
        &MintTokenRequest {
            profile: profile.clone(),
            bound_pid: None,
        },
    )?;
    let token_var = match &a.token_file {
        // The Secret is mounted in the pod: the variable names the file there.
        None if k8s => ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", k8s::token_path()),
        Some(path) => {
            write_token_file(path, &reply.token)?;
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                abs.display().to_string(),
            )
        }
        None => ("AWS_CONTAINER_AUTHORIZATION_TOKEN", reply.token.clone()),
    };
    let mut vars = variables(&reply, a.relative, token_var);
    if a.pod_identity || k8s {
        // The route that takes no profile in its URL, at the Pod Identity Agent's address.
        vars[0] = (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            k8s::POD_IDENTITY_URI.to_string(),
        );
    }
    if reply.region.is_none() {
        eprintln!(
            "rolecall: profile '{profile}' has no region; set AWS_REGION and AWS_DEFAULT_REGION yourself (or add region to the profile)"
        );
    }
    let text = match a.format {
        ContainerFormat::Docker => {
            let path = write_env_file(profile, &render(&vars, ContainerFormat::Env))?;
            docker_args(&path)
        }
        ContainerFormat::K8s => {
            let expires = reply.expires.map(rolecall_proto::timefmt::rfc3339);
            k8s::manifests(profile, &reply.token, expires.as_deref(), &vars)
        }
        f => render(&vars, f),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(0)
}

fn renew(profile: &str, autostart: bool) -> anyhow::Result<i32> {
    let client = Client::connect(autostart)?;
    let reply: RenewTokenReply = client.send_json(
        &Request::RenewTokens,
        &RenewTokenRequest {
            profile: profile.to_string(),
        },
    )?;
    eprintln!(
        "rolecall: renewed {} container token(s) of '{profile}' until {}",
        reply.renewed,
        rolecall_proto::timefmt::rfc3339(reply.expires)
    );
    Ok(0)
}

/// `--env-file <path>`, quoted for a POSIX shell when the path needs it.
fn docker_args(path: &Path) -> String {
    let p = path.display().to_string();
    if p.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-%+@:".contains(&b))
    {
        format!("--env-file {p}\n")
    } else {
        format!("--env-file '{}'\n", p.replace('\'', "'\\''"))
    }
}

/// Writes the dotenv text to `<runtime dir>/container-env/<profile>.env`, 0600 in a 0700
/// directory, replacing an earlier one atomically (a running container read it at start).
fn write_env_file(profile: &str, text: &str) -> anyhow::Result<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
    let dir = rolecall_proto::paths::runtime_dir().join("container-env");
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    // Never write a secret through a link or into a directory another user controls.
    let meta = std::fs::symlink_metadata(&dir)
        .with_context(|| format!("cannot inspect {}", dir.display()))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o077 != 0 {
        bail!(
            "{} is not a private directory of yours (0700); remove it and try again",
            dir.display()
        );
    }
    let name = rolecall_proto::paths::prompt_entry_name(profile);
    let path = dir.join(format!("{name}.env"));
    let tmp = dir.join(format!(".{name}.env.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, &path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(path)
}

/// The variables, in a stable order.
fn variables(
    reply: &MintTokenReply,
    relative: bool,
    token_var: (&'static str, String),
) -> Vec<(&'static str, String)> {
    let mut vars = vec![if relative {
        (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            reply.relative_uri.clone(),
        )
    } else {
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", reply.full_uri.clone())
    }];
    vars.push(token_var);
    if let Some(region) = &reply.region {
        vars.push(("AWS_REGION", region.clone()));
        vars.push(("AWS_DEFAULT_REGION", region.clone()));
    }
    vars
}

/// `env`: dotenv lines, unquoted (`docker run --env-file` takes values literally);
/// `docker`: one line of `-e KEY=value` arguments; `compose`: an `environment:` block.
fn render(vars: &[(&str, String)], format: ContainerFormat) -> String {
    match format {
        ContainerFormat::Env => vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect(),
        // Never rendered with the values: see `docker_args`.
        ContainerFormat::Docker => vars.iter().map(|(k, _)| format!("-e {k} ")).collect(),
        // The ConfigMap's `data:` entries (`k8s::manifests` puts the Secret around them).
        ContainerFormat::K8s => vars
            .iter()
            .map(|(k, v)| format!("  {k}: {}\n", yaml_quote(v)))
            .collect(),
        ContainerFormat::Compose => {
            let mut out = String::from("environment:\n");
            for (k, v) in vars {
                out.push_str(&format!("  {k}: {}\n", yaml_quote(v)));
            }
            out
        }
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn yaml_quote(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| format!("\"{v}\""))
}

/// Writes the token 0600 (no trailing newline: SDKs send the file's bytes as the header value).
///
/// The token goes into a fresh temp file beside the target (created with `O_EXCL|O_NOFOLLOW`,
/// so nothing planted there is opened), which is then renamed over the path. A symlink or
/// hard link planted at the path is replaced, never followed: the file it points to is left
/// untouched, and no reader ever sees a half-written token.
fn write_token_file(path: &Path, token: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let name = path
        .file_name()
        .with_context(|| format!("the token file {} names no file", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let mut nonce = [0u8; 8];
    getrandom_bytes(&mut nonce);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", hex_lower(&nonce)));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(token.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write the token file {}", path.display()));
    }
    Ok(())
}

/// Random bytes for a temp file's name (unpredictable, so it cannot be planted in advance).
fn getrandom_bytes(buf: &mut [u8]) {
    use std::io::Read as _;
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf));
    if filled.is_err() {
        // O_EXCL still refuses a planted name; the fallback only has to differ between runs.
        let t = crate::clock::system_now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8;
        }
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn revoke(a: &ContainerArgs, autostart: bool) -> anyhow::Result<i32> {
    let req = match (&a.profile, a.all) {
        (Some(_), true) => bail!("give either a profile or --all, not both"),
        (Some(p), false) => RevokeTokenRequest {
            id: None,
            profile: Some(p.clone()),
        },
        (None, true) => RevokeTokenRequest::default(),
        (None, false) => bail!("name the profile whose tokens to revoke, or --all"),
    };
    let client = Client::connect(autostart)?;
    let _: OkReply = client.send_json(&Request::RevokeTokens, &req)?;
    match &req.profile {
        Some(p) => eprintln!("rolecall: revoked the container tokens of '{p}'"),
        None => eprintln!("rolecall: revoked all container tokens"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(region: Option<&str>) -> MintTokenReply {
        MintTokenReply {
            id: "abc".into(),
            token: "rct_TOKEN".into(),
            profile: "dev".into(),
            full_uri: "http://127.0.0.1:9911/v1/container/dev".into(),
            relative_uri: "/v1/container/dev".into(),
            region: region.map(str::to_string),
            expires: None,
        }
    }

    #[test]
    fn env_format_is_plain_dotenv_with_exactly_one_uri() {
        let r = reply(Some("eu-west-1"));
        let v = variables(
            &r,
            false,
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", r.token.clone()),
        );
        assert_eq!(
            render(&v, ContainerFormat::Env),
            "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:9911/v1/container/dev\n\
             AWS_CONTAINER_AUTHORIZATION_TOKEN=rct_TOKEN\n\
             AWS_REGION=eu-west-1\n\
             AWS_DEFAULT_REGION=eu-west-1\n"
        );
        let v = variables(
            &r,
            true,
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/t".into()),
        );
        let out = render(&v, ContainerFormat::Env);
        assert!(out.starts_with("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v1/container/dev\n"));
        assert!(!out.contains("FULL_URI"));
        assert!(out.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/t\n"));
        assert!(!out.contains("AWS_CONTAINER_AUTHORIZATION_TOKEN="));
    }

    #[test]
    fn docker_and_compose_formats() {
        let r = reply(None);
        let v = variables(
            &r,
            false,
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", r.token.clone()),
        );
        assert!(!render(&v, ContainerFormat::Docker).contains("rct_TOKEN"));
        assert_eq!(
            docker_args(Path::new("/run/user/1/rolecall/container-env/dev.env")),
            "--env-file /run/user/1/rolecall/container-env/dev.env\n"
        );
        assert_eq!(
            docker_args(Path::new("/a b/x'y")),
            "--env-file '/a b/x'\\''y'\n"
        );
        assert_eq!(
            render(&v, ContainerFormat::Compose),
            "environment:\n  AWS_CONTAINER_CREDENTIALS_FULL_URI: \"http://127.0.0.1:9911/v1/container/dev\"\n  AWS_CONTAINER_AUTHORIZATION_TOKEN: \"rct_TOKEN\"\n"
        );
    }

    #[test]
    fn token_file_replaces_a_planted_symlink_and_leaves_its_target_alone() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let p = dir.path().join("tok");
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        write_token_file(&p, "rct_X").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(
            std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o644
        );
        let meta = std::fs::symlink_metadata(&p).unwrap();
        assert!(meta.file_type().is_file(), "the link itself was replaced");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "rct_X");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "no temp file left behind: {left:?}");
    }

    #[test]
    fn token_files_are_private_and_hold_only_the_token() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tok");
        std::fs::write(&p, "old content that is longer").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_token_file(&p, "rct_X").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "rct_X");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
