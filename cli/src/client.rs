//! The CLI's blocking client of the `rolecalld` socket API (`rolecall_proto::api`).
//!
//! ```ignore
//! let client = Client::connect(autostart)?;          // starts rolecalld when needed
//! let status: Status = client.send(&Request::Status)?;
//! let state: LoginState = client.send_json(&Request::Login { source }, &req)?;
//! ```
//!
//! - Requests are [`Request`]s of `rolecall_proto`: the path, method and query are written
//!   once, there, for the daemon's router and for this client.
//! - One request per Unix-socket connection (`Connection: close`); the first request reuses the
//!   connection `connect` opened, so a warm `credential-process` costs one connect.
//! - A non-2xx reply becomes [`ClientError::Api`] carrying the daemon's [`ErrorBody`]; its
//!   `Display` is the one line users see (`message — run: hint`).
//! - A daemon that is not running is [`ClientError::DaemonDown`] (see
//!   [`ClientError::is_daemon_down`]) when autostart is off; with autostart on, `rolecalld` is
//!   started (see `crate::autostart`).
//! - A reply whose `x-rolecall-protocol` differs from ours means an older daemon survived an
//!   upgrade: with autostart the daemon is replaced once and the request sent again.
//!
//! No tokio, no TLS, no config parsing: this is the hot path of every AWS call.

pub mod http;
pub mod peer;

use rolecall_proto::api::{ErrorBody, ErrorReply};
pub use rolecall_proto::request::Request;
use rolecall_proto::{paths, HEADER_PROTOCOL, PROTOCOL_VERSION};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use http::Response;

/// Everything that can go wrong talking to the daemon.
#[derive(Debug)]
pub enum ClientError {
    /// Nothing listens on the socket and autostart is off (or it is a command that never starts
    /// the daemon).
    DaemonDown { socket: PathBuf },
    /// Autostart (or `rolecall daemon start`) could not bring the daemon up.
    StartFailed(String),
    /// The socket exists but cannot be used (permissions, a non-socket file, ...).
    Connect { socket: PathBuf, error: io::Error },
    /// The connection broke while sending or receiving.
    Io(io::Error),
    /// The reply is not the HTTP/JSON the contract describes.
    Protocol(String),
    /// The daemon speaks another protocol number and could not be replaced.
    ProtocolMismatch { daemon: String },
    /// The runtime dir or the process serving the socket is not the user's own (or the socket
    /// path cannot work): nothing is sent. The text is the one line to show.
    Refused(String),
    /// The daemon answered with an error (its code implies the HTTP status).
    Api { error: ErrorBody },
}

impl ClientError {
    pub fn is_daemon_down(&self) -> bool {
        matches!(self, ClientError::DaemonDown { .. })
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::DaemonDown { .. } => {
                f.write_str("rolecalld is not running — run: rolecall daemon start")
            }
            ClientError::StartFailed(m) => write!(f, "could not start rolecalld: {m}"),
            ClientError::Connect { socket, error } => write!(
                f,
                "cannot connect to rolecalld at {}: {error}",
                socket.display()
            ),
            ClientError::Io(e) => write!(f, "lost the connection to rolecalld: {e}"),
            ClientError::Protocol(m) => write!(f, "unexpected reply from rolecalld: {m}"),
            ClientError::ProtocolMismatch { daemon } => write!(
                f,
                "rolecalld speaks protocol {daemon}, this rolecall speaks {PROTOCOL_VERSION} — run: rolecall daemon stop && rolecall daemon start"
            ),
            ClientError::Refused(m) => f.write_str(m),
            ClientError::Api { error } => f.write_str(&error.one_line()),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<http::HttpError> for ClientError {
    fn from(e: http::HttpError) -> Self {
        match e {
            http::HttpError::Io(e) => ClientError::Io(e),
            http::HttpError::Malformed(m) => ClientError::Protocol(m),
        }
    }
}

/// Whether a connect error means "nobody is listening" (absent or stale socket), as opposed to
/// a socket we may not use.
pub(crate) fn is_not_listening(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}

/// Sends one request on `stream` and reads the reply. No protocol check, no error mapping.
pub(crate) fn exchange(
    mut stream: UnixStream,
    request: &Request,
    body: Option<&[u8]>,
) -> Result<Response, ClientError> {
    stream
        .write_all(&http::encode_request(request, body))
        .map_err(ClientError::Io)?;
    let mut reader = BufReader::with_capacity(8 * 1024, stream);
    Ok(http::read_response(&mut reader, false)?)
}

/// A connection to the daemon.
pub struct Client {
    socket: PathBuf,
    autostart: bool,
    check_protocol: bool,
    /// The daemon was already replaced once for a protocol mismatch: never loop.
    replaced: Cell<bool>,
    /// The connection `connect` opened, used by the first request.
    pending: RefCell<Option<UnixStream>>,
    read_timeout: Cell<Option<Duration>>,
}

impl Client {
    /// Connects to the daemon at the default socket, starting it first when `autostart` is set
    /// and nothing listens.
    pub fn connect(autostart: bool) -> Result<Client, ClientError> {
        Client::connect_to(paths::socket_path(), autostart)
    }

    /// Connects to the daemon at `socket`.
    pub fn connect_to(socket: PathBuf, autostart: bool) -> Result<Client, ClientError> {
        let stream = open(&socket, autostart)?;
        Ok(Client {
            socket,
            autostart,
            check_protocol: true,
            replaced: Cell::new(false),
            pending: RefCell::new(Some(stream)),
            read_timeout: Cell::new(None),
        })
    }

    /// Connects to a running daemon whatever its protocol, never starting one: for
    /// `daemon stop` and `daemon status`, which must work against an old daemon too.
    pub fn connect_existing() -> Result<Client, ClientError> {
        let mut c = Client::connect_to(paths::socket_path(), false)?;
        c.check_protocol = false;
        Ok(c)
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// Bounds each wait for a reply (none by default: logins and interactive credential
    /// requests may legitimately take minutes).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) {
        self.read_timeout.set(timeout);
    }

    /// Sends a request without a body and decodes the reply.
    pub fn send<T: DeserializeOwned>(&self, request: &Request) -> Result<T, ClientError> {
        decode(self.request(request, None)?)
    }

    /// Sends a request with a JSON body and decodes the reply.
    pub fn send_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        request: &Request,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = encode(body)?;
        decode(self.request(request, Some(&bytes))?)
    }

    /// Sends one request and returns the raw reply, whatever its status. Checks the protocol
    /// number and replaces an incompatible daemon (once) when autostart is on.
    pub fn request(&self, request: &Request, body: Option<&[u8]>) -> Result<Response, ClientError> {
        let stream = match self.pending.borrow_mut().take() {
            Some(s) => s,
            None => open(&self.socket, self.autostart)?,
        };
        // A new socket has no timeout: skip the syscall on the hot path when none is wanted.
        if let Some(t) = self.read_timeout.get() {
            stream.set_read_timeout(Some(t)).map_err(ClientError::Io)?;
        }
        let reply = exchange(stream, request, body)?;
        if !self.check_protocol {
            return Ok(reply);
        }
        // A reply without the header is accepted: the contract puts it on every reply, and
        // restarting a daemon over a missing header would turn one bug into a restart loop.
        let theirs = match reply.header(HEADER_PROTOCOL) {
            Some(p) if p.parse::<u32>().ok() != Some(PROTOCOL_VERSION) => p.to_string(),
            _ => return Ok(reply),
        };
        if !self.autostart || self.replaced.get() {
            return Err(ClientError::ProtocolMismatch { daemon: theirs });
        }
        self.replaced.set(true);
        crate::autostart::replace_incompatible(&self.socket)?;
        self.request(request, body)
    }
}

/// Opens a connection, starting the daemon first when allowed and nothing listens. Nothing is
/// sent before the runtime dir and the peer's uid are checked (see [`trusted_connect`]).
fn open(socket: &Path, autostart: bool) -> Result<UnixStream, ClientError> {
    match trusted_connect(socket) {
        Ok(s) => Ok(s),
        Err(ClientError::Connect { error, .. }) if is_not_listening(&error) => {
            if autostart {
                crate::autostart::ensure_running(socket)
            } else {
                Err(ClientError::DaemonDown {
                    socket: socket.to_path_buf(),
                })
            }
        }
        Err(e) => Err(e),
    }
}

/// Connects to `socket` only when its directory is private to us (one `lstat`) and the process
/// serving it runs as our uid: a runtime dir another user created first could hold a fake
/// daemon that hands out credentials of its choosing and collects what we send.
pub(crate) fn trusted_connect(socket: &Path) -> Result<UnixStream, ClientError> {
    rolecall_proto::trust::check_socket_path(socket).map_err(ClientError::Refused)?;
    if let Some(dir) = socket.parent() {
        if let rolecall_proto::trust::DirState::Untrusted(why) =
            rolecall_proto::trust::runtime_dir_state(dir)
        {
            return Err(ClientError::Refused(why));
        }
    }
    let stream = UnixStream::connect(socket).map_err(|error| ClientError::Connect {
        socket: socket.to_path_buf(),
        error,
    })?;
    match peer::refusal(&stream, socket) {
        None => Ok(stream),
        Some(why) => Err(ClientError::Refused(why)),
    }
}

/// A request body as JSON.
fn encode<B: Serialize + ?Sized>(body: &B) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(body)
        .map_err(|e| ClientError::Protocol(format!("cannot encode the request: {e}")))
}

/// Turns a reply into `T`, or into the daemon's error.
fn decode<T: DeserializeOwned>(reply: Response) -> Result<T, ClientError> {
    if (200..300).contains(&reply.status) {
        return serde_json::from_slice(&reply.body).map_err(|e| {
            ClientError::Protocol(format!(
                "the {} reply is not the expected JSON: {e}",
                reply.status
            ))
        });
    }
    match serde_json::from_slice::<ErrorReply>(&reply.body) {
        Ok(r) => Err(ClientError::Api { error: r.error }),
        Err(_) => Err(ClientError::Protocol(format!(
            "status {} without an error body",
            reply.status
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rolecall_proto::api::{ErrorCode, OkReply};
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    /// A one-shot server that answers each connection with the next canned reply and records
    /// the requests.
    fn serve(replies: Vec<Vec<u8>>) -> (tempfile::TempDir, std::thread::JoinHandle<Vec<String>>) {
        let dir = private_dir();
        let listener = UnixListener::bind(dir.path().join("s.sock")).unwrap();
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for reply in replies {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = vec![0u8; 4096];
                let mut req = Vec::new();
                loop {
                    let n = conn.read(&mut buf).unwrap();
                    req.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&req);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                        if req.len() >= end + 4 + len {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                seen.push(String::from_utf8(req).unwrap());
                conn.write_all(&reply).unwrap();
            }
            seen
        });
        (dir, h)
    }

    #[test]
    fn get_decodes_and_error_replies_carry_the_body() {
        let err = r#"{"error":{"code":"not_signed_in","message":"not signed in to source 'corp'","hint":"rolecall login corp"}}"#;
        let (head, tail) = err.split_at(5);
        let chunked = format!(
            "HTTP/1.1 503 Service Unavailable\r\nx-rolecall-protocol: 1\r\ntransfer-encoding: chunked\r\n\r\n\
             {:x}\r\n{head}\r\n{:x}\r\n{tail}\r\n0\r\n\r\n",
            head.len(),
            tail.len()
        );
        let (dir, h) = serve(vec![
            b"HTTP/1.1 200 OK\r\nx-rolecall-protocol: 1\r\ncontent-length: 11\r\n\r\n{\"ok\":true}"
                .to_vec(),
            chunked.into_bytes(),
        ]);
        let c = Client::connect_to(dir.path().join("s.sock"), false).unwrap();
        let ok: OkReply = c.send(&Request::Status).unwrap();
        assert!(ok.ok);
        let e = c
            .send_json::<_, OkReply>(
                &Request::Login {
                    source: "corp".into(),
                },
                &OkReply { ok: false },
            )
            .unwrap_err();
        let ClientError::Api { error: body } = &e else {
            panic!("not an API error: {e}")
        };
        assert_eq!(body.code, ErrorCode::NotSignedIn);
        assert_eq!(
            e.to_string(),
            "not signed in to source 'corp' — run: rolecall login corp"
        );
        let seen = h.join().unwrap();
        assert!(seen[0].starts_with("GET /v1/status HTTP/1.1\r\n"));
        assert!(seen[1].ends_with("{\"ok\":false}"));
    }

    #[test]
    fn a_mismatched_protocol_without_autostart_is_an_error() {
        let (dir, h) = serve(vec![
            b"HTTP/1.1 200 OK\r\nx-rolecall-protocol: 999\r\ncontent-length: 11\r\n\r\n{\"ok\":true}".to_vec(),
        ]);
        let c = Client::connect_to(dir.path().join("s.sock"), false).unwrap();
        let e = c.send::<OkReply>(&Request::Version).unwrap_err();
        assert!(matches!(e, ClientError::ProtocolMismatch { .. }), "{e}");
        h.join().unwrap();
    }

    /// A temporary directory as private as a runtime dir must be (tempfile makes it 0755).
    fn private_dir() -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[test]
    fn down_daemon_and_garbage_replies() {
        let dir = private_dir();
        let e = Client::connect_to(dir.path().join("absent.sock"), false)
            .err()
            .unwrap();
        assert!(e.is_daemon_down());

        let (dir, h) = serve(vec![
            b"HTTP/1.1 500 Oops\r\ncontent-length: 3\r\n\r\nabc".to_vec()
        ]);
        let c = Client::connect_to(dir.path().join("s.sock"), false).unwrap();
        let e = c.send::<OkReply>(&Request::Status).unwrap_err();
        assert!(
            e.to_string().contains("status 500 without an error body"),
            "{e}"
        );
        h.join().unwrap();
    }

    #[test]
    fn nothing_is_sent_through_a_runtime_dir_others_can_enter() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, _h) = serve(vec![]);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = Client::connect_to(dir.path().join("s.sock"), false)
            .err()
            .expect("refused");
        assert!(matches!(e, ClientError::Refused(_)), "{e}");
        assert!(e.to_string().contains("mode 755"), "{e}");
        // The same through a symlink to a private dir.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let outer = private_dir();
        std::os::unix::fs::symlink(dir.path(), outer.path().join("run")).unwrap();
        let e = Client::connect_to(outer.path().join("run/s.sock"), false)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("is a symlink"), "{e}");
    }
}
