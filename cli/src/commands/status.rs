//! `rolecall status [--json]`: the daemon's `GET /v1/status` — sources and their sign-in
//! state, profiles with time left, last refresh and last error, container tokens. `--json`
//! prints the `Status` document (stable field names for scripts); otherwise a table.

mod table;

use crate::cli::StatusArgs;
use crate::client::Client;
use anyhow::Context;
use rolecall_proto::api::Status;
use rolecall_proto::request::Request;
use std::io::{IsTerminal, Write};

pub fn run(a: &StatusArgs, autostart: bool) -> anyhow::Result<i32> {
    let client = Client::connect(autostart)?;
    let status: Status = client.send(&Request::Status)?;
    let text = if a.json {
        let mut s = serde_json::to_string_pretty(&status).context("cannot encode the status")?;
        s.push('\n');
        s
    } else {
        let color = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        table::render(&status, rolecall_proto::timefmt::now_epoch(), color)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .context("cannot write to stdout")?;
    Ok(0)
}
