//! The DevTools protocol over the debugging pipe: NUL-terminated JSON messages. A reader thread
//! routes answers to their callers by `id` and events to one channel; EOF (the browser gone)
//! fails every waiting call and closes the event channel.

use super::BrowserError;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// One protocol event: the session it belongs to (flattened targets), method, params.
#[derive(Clone)]
pub struct Event {
    pub session_id: Option<String>,
    pub method: String,
    /// May hold a captured form body (the SAML response): never in Debug output.
    pub params: Value,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("session_id", &self.session_id)
            .field("method", &self.method)
            .field("params", &"** redacted **")
            .finish()
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

pub struct Cdp {
    writer: Arc<Mutex<File>>,
    next_id: Mutex<u64>,
    pending: Pending,
}

/// Messages larger than this are a protocol error (a SAML POST is well under 1 MiB).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

impl Cdp {
    /// Starts the reader thread on `events`; returns the client and the event stream.
    pub fn start(commands: File, events: File) -> (Cdp, mpsc::UnboundedReceiver<Event>) {
        let pending: Pending = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let p = Arc::clone(&pending);
        std::thread::Builder::new()
            .name("cdp-reader".into())
            .spawn(move || read_loop(events, p, tx))
            .expect("spawning a thread");
        (
            Cdp {
                writer: Arc::new(Mutex::new(commands)),
                next_id: Mutex::new(1),
                pending,
            },
            rx,
        )
    }

    /// Sends a command and waits for its answer (the `result`, or the protocol error message).
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        session_id: Option<&str>,
    ) -> Result<Value, BrowserError> {
        let id = {
            let mut n = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            *n
        };
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session_id {
            msg["sessionId"] = json!(s);
        }
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let mut bytes =
            serde_json::to_vec(&msg).map_err(|e| BrowserError::Protocol(e.to_string()))?;
        bytes.push(0);
        let writer = Arc::clone(&self.writer);
        // A write only blocks when the browser stopped reading and the pipe buffer is full.
        let written = tokio::task::spawn_blocking(move || {
            writer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(&bytes)
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return Err(BrowserError::Exited);
        }
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(m)) => Err(BrowserError::Protocol(format!("{method}: {m}"))),
            Err(_) => Err(BrowserError::Exited),
        }
    }
}

fn read_loop(events: File, pending: Pending, tx: mpsc::UnboundedSender<Event>) {
    let mut r = BufReader::new(events);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r
            .by_ref()
            .take(MAX_MESSAGE as u64 + 1)
            .read_until(0, &mut buf)
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if buf.last() == Some(&0) {
            buf.pop();
        } else if buf.len() > MAX_MESSAGE {
            break;
        }
        let Ok(v) = serde_json::from_slice::<Value>(&buf) else {
            continue;
        };
        if let Some(id) = v.get("id").and_then(Value::as_u64) {
            let waiter = pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            if let Some(w) = waiter {
                let res = match v.get("error") {
                    Some(e) => Err(e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("error")
                        .to_string()),
                    None => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
                };
                let _ = w.send(res);
            }
        } else if let Some(m) = v.get("method").and_then(Value::as_str) {
            let _ = tx.send(Event {
                session_id: v
                    .get("sessionId")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                method: m.to_string(),
                params: v.get("params").cloned().unwrap_or(Value::Null),
            });
        }
    }
    // The browser is gone: every waiting call fails (dropping the senders), the stream ends.
    pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
}
