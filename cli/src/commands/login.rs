//! `rolecall login [<source>]` and `rolecall logout [<source>]`.
//!
//! The daemon runs the login (it owns the browser, the loopback callback and the tokens); the CLI
//! starts it, shows what the user must do (a device-flow URL and code, with a QR code on a
//! terminal), and long-polls until it ends. Ctrl-C only stops the waiting here.

use crate::cli::{LoginArgs, LogoutArgs};
use crate::client::Client;
use anyhow::{bail, Context};
use rolecall_proto::api::{LoginPhase, LoginRequest, LoginState, LogoutRequest, OkReply, Status};
use rolecall_proto::request::Request;
use std::io::{IsTerminal, Read};
use std::time::Duration;

/// Long-poll window per request (the daemon answers earlier when the login ends).
const POLL_WAIT_SECS: u32 = 25;
/// How long to look for a device code or an opened browser before saying "waiting".
const EARLY: Duration = Duration::from_secs(10);

pub fn run_login(a: &LoginArgs, autostart: bool) -> anyhow::Result<i32> {
    // Bad arguments and a bad paste are reported before anything is started.
    let saml_response = if a.paste {
        if a.source.is_none() {
            bail!("--paste needs the source to sign in to — run: rolecall login <source> --paste");
        }
        Some(read_pasted_response()?)
    } else {
        None
    };
    let client = Client::connect(autostart)?;
    let sources = match &a.source {
        Some(s) => vec![s.clone()],
        None => {
            let status: Status = client.send(&Request::Status)?;
            if status.sources.is_empty() {
                bail!(
                    "no sources are configured in {} — run: rolecall setup (or rolecall import; see: rolecall demo)",
                    status.daemon.config
                );
            }
            status.sources.into_iter().map(|s| s.name).collect()
        }
    };
    let req = LoginRequest {
        no_browser: a.no_browser,
        force: a.force,
        saml_response,
    };
    let mut failed = 0;
    for source in &sources {
        if let Err(e) = login_one(&client, source, &req) {
            // One line per failed source; the others still get their turn.
            eprintln!("rolecall: {}", first_line(&format!("{e:#}")));
            failed += 1;
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

fn login_one(client: &Client, source: &str, req: &LoginRequest) -> anyhow::Result<()> {
    let mut state: LoginState = client.send_json(
        &Request::Login {
            source: source.to_string(),
        },
        req,
    )?;
    let mut shown = Shown::default();
    let started = crate::clock::monotonic();
    loop {
        match state.phase {
            LoginPhase::Succeeded => {
                eprintln!("Signed in to '{source}'{}", until(state.session_expires));
                return Ok(());
            }
            LoginPhase::Failed => {
                let e = state
                    .error
                    .map(|e| e.one_line())
                    .unwrap_or_else(|| "the login failed".into());
                bail!("sign-in to '{source}' failed: {e}");
            }
            LoginPhase::Idle => return settle_idle(client, source),
            LoginPhase::Pending => shown.show(source, &state, started.elapsed() >= EARLY),
        }
        // The long-poll answers only when the login ends, so while the daemon is still
        // preparing what the user must see (the device code, the browser), look briefly.
        let early = !shown.informed() && started.elapsed() < EARLY;
        let wait = if early { 0 } else { POLL_WAIT_SECS };
        let asked = crate::clock::monotonic();
        state = client.send(&Request::LoginState {
            source: source.to_string(),
            wait: Some(u64::from(wait)),
        })?;
        // A daemon that answers a long-poll at once must not turn this into a busy loop.
        if state.phase == LoginPhase::Pending && asked.elapsed() < Duration::from_millis(250) {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// `Idle` means no login runs: either none was needed or it ended before we looked. The
/// source's status tells which.
fn settle_idle(client: &Client, source: &str) -> anyhow::Result<()> {
    let status: Status = client.send(&Request::Status)?;
    match status.sources.iter().find(|s| s.name == source) {
        Some(s) if s.signed_in => {
            eprintln!("Signed in to '{source}'{}", until(s.session_expires));
            Ok(())
        }
        Some(s) => bail!(
            "sign-in to '{source}' ended without a session{} — run: rolecall login {source}",
            s.last_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ),
        None => bail!("no source named '{source}' — run: rolecall status"),
    }
}

fn until(expires: Option<i64>) -> String {
    match expires {
        Some(t) => format!(" (session until {})", rolecall_proto::timefmt::rfc3339(t)),
        None => String::new(),
    }
}

/// What was already printed, so that each poll does not repeat it.
#[derive(Default)]
struct Shown {
    code: Option<String>,
    browser: bool,
    waiting: bool,
    ctrl_c: bool,
}

impl Shown {
    /// Whether the user was told what to do (a code to enter, or a browser window to use).
    fn informed(&self) -> bool {
        self.code.is_some() || self.browser
    }

    fn show(&mut self, source: &str, st: &LoginState, late: bool) {
        if let Some(code) = &st.user_code {
            if self.code.as_ref() != Some(code) {
                let uri = st.verification_uri.as_deref().unwrap_or("");
                eprintln!("To sign in to '{source}', open {uri}\nand enter the code: {code}");
                if let Some(full) = &st.verification_uri_complete {
                    eprintln!("(or open {full})");
                    if std::io::stderr().is_terminal() {
                        if let Some(qr) = qr(full) {
                            eprintln!("{qr}");
                        }
                    }
                }
                self.code = Some(code.clone());
            }
        } else if st.browser_opened && !self.browser {
            eprintln!("Opened your browser to sign in to '{source}'…");
            self.browser = true;
        } else if late && !self.informed() && !self.waiting {
            eprintln!("Waiting for the sign-in to '{source}'…");
            self.waiting = true;
        }
        if !self.ctrl_c && (self.informed() || self.waiting) {
            eprintln!(
                "(Ctrl-C stops waiting here; rolecalld keeps the sign-in open until it times out.)"
            );
            self.ctrl_c = true;
        }
    }
}

/// A QR code of `text` in Unicode half blocks, two modules per character cell.
fn qr(text: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// `--paste`: a base64 SAMLResponse on stdin (as copied from the browser's developer tools or
/// a form field). Whitespace and line breaks are dropped, as is a `SAMLResponse=` prefix with its
/// URL encoding.
fn read_pasted_response() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Paste the base64 SAMLResponse, then press Enter and Ctrl-D:");
    }
    let mut raw = String::new();
    stdin
        .lock()
        .take(4 * 1024 * 1024)
        .read_to_string(&mut raw)
        .context("cannot read the SAMLResponse from stdin")?;
    let mut text: String = raw.split_whitespace().collect();
    if let Some(rest) = text.strip_prefix("SAMLResponse=") {
        text = percent_decode(rest);
    }
    if text.is_empty() {
        bail!("no SAMLResponse on stdin — run: rolecall login <source> --paste < response.b64");
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        bail!("the pasted SAMLResponse is not base64");
    }
    Ok(text)
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn run_logout(a: &LogoutArgs, autostart: bool) -> anyhow::Result<i32> {
    let client = Client::connect(autostart)?;
    let _: OkReply = client.send_json(
        &Request::Logout,
        &LogoutRequest {
            source: a.source.clone(),
        },
    )?;
    match &a.source {
        Some(s) => eprintln!("Signed out of '{s}'"),
        None => eprintln!("Signed out of every source"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_of_form_values() {
        assert_eq!(percent_decode("PHNhbWw%2B%3D"), "PHNhbWw+=");
        assert_eq!(percent_decode("abc%"), "abc%");
        assert_eq!(percent_decode("a%zz"), "a%zz");
    }

    #[test]
    fn qr_codes_render_as_half_blocks() {
        let q = qr("http://127.0.0.1:1234/device?user_code=ABCD-EFGH").unwrap();
        assert!(q.lines().count() > 10);
        assert!(q.contains('█') || q.contains('▀') || q.contains('▄'));
    }
}
