//! `rolecall console <profile>`: the AWS console signed in as the profile's role. The daemon
//! makes the federation sign-in URL (it holds the credentials and the HTTP client) and opens it
//! in the browser, or hands it back for `--print`, which writes it to stdout only: the URL is a
//! bearer secret for 15 minutes.

use crate::cli::ConsoleArgs;
use crate::client::Client;
use rolecall_proto::api::{ConsoleReply, ConsoleRequest};
use rolecall_proto::request::Request;
use std::io::Write;

pub fn run(a: &ConsoleArgs, autostart: bool) -> anyhow::Result<i32> {
    let client = Client::connect(autostart)?;
    let req = ConsoleRequest {
        profile: a.profile.clone(),
        service: a.service.clone(),
        region: a.region.clone(),
        session_duration: a.session_duration,
        open: !a.print,
    };
    let reply: ConsoleReply = client.send_json(&Request::Console, &req)?;
    match (a.print, reply.url) {
        (true, Some(url)) => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{url}")?;
            out.flush()?;
        }
        (true, None) => anyhow::bail!("rolecalld returned no sign-in URL"),
        (false, _) => eprintln!(
            "rolecall: opened the AWS console as '{}' in your browser ({})",
            a.profile, reply.destination
        ),
    }
    Ok(0)
}
