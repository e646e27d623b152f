//! A minimal, strict HTTP/1.1 client codec for rolecalld's Unix socket: writes one request and
//! reads one reply (status line, headers, and a body framed by Content-Length, chunked transfer
//! coding, or the end of the connection — hyper may choose any of them).
//!
//! It is deliberately small: the CLI links no HTTP library and no async runtime because
//! `credential-process` runs on every AWS call. Sizes are bounded so that a confused peer cannot
//! make the CLI allocate without limit.

use rolecall_proto::request::{Method, Request};
use std::fmt;
use std::io::{self, BufRead, Read, Write};

/// Longest status line or header line accepted.
const MAX_LINE: usize = 16 * 1024;
/// Most header lines accepted in one reply (trailers included).
const MAX_HEADERS: usize = 128;
/// Largest body accepted: `status` of a very large organisation is still far below this.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// One reply: status, headers (names lower-cased) and the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a reply could not be read.
#[derive(Debug)]
pub enum HttpError {
    Io(io::Error),
    /// The bytes are not an HTTP/1.1 reply we accept; the text says which part.
    Malformed(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Io(e) => write!(f, "{e}"),
            HttpError::Malformed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            HttpError::Malformed("the reply ended early".into())
        } else {
            HttpError::Io(e)
        }
    }
}

fn malformed<T>(what: impl Into<String>) -> Result<T, HttpError> {
    Err(HttpError::Malformed(what.into()))
}

/// Serialises a request into one buffer, so that it leaves in a single `write`.
pub fn encode_request(request: &Request, body: Option<&[u8]>) -> Vec<u8> {
    let (method, path) = (request.method(), request.path());
    let body_len = body.map_or(0, <[u8]>::len);
    let mut out = Vec::with_capacity(160 + path.len() + body_len);
    // `Connection: close`: one request per connection keeps the client trivially correct, and
    // the daemon frees the connection as soon as the reply is written.
    let _ = write!(
        out,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    );
    if let Some(b) = body {
        let _ = write!(
            out,
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            b.len()
        );
        out.extend_from_slice(b);
    } else if method != Method::Get {
        out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    } else {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one line ending in `\n` (a preceding `\r` is dropped), bounded by [`MAX_LINE`].
fn read_line(r: &mut impl BufRead) -> Result<String, HttpError> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if buf.last() != Some(&b'\n') {
        if n > MAX_LINE {
            return malformed("a reply line is too long");
        }
        return malformed("the reply ended early");
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).or_else(|_| malformed("a reply line is not valid UTF-8"))
}

fn parse_status_line(line: &str) -> Result<u16, HttpError> {
    let rest = match line.strip_prefix("HTTP/1.") {
        Some(r) if r.starts_with('1') || r.starts_with('0') => &r[1..],
        _ => {
            let shown: String = line.chars().take(40).collect();
            return malformed(format!("not an HTTP/1.x status line: {shown:?}"));
        }
    };
    let code = rest
        .strip_prefix(' ')
        .and_then(|r| r.get(..3))
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (100..=599).contains(c));
    match code {
        Some(c) if rest.len() == 4 || rest.as_bytes().get(4) == Some(&b' ') => Ok(c),
        _ => malformed("the status line has no valid status code"),
    }
}

/// Reads header lines up to the empty line, into `headers`.
fn read_headers(
    r: &mut impl BufRead,
    headers: &mut Vec<(String, String)>,
) -> Result<(), HttpError> {
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            return Ok(());
        }
        if headers.len() >= MAX_HEADERS {
            return malformed("the reply has too many headers");
        }
        if line.starts_with([' ', '\t']) {
            return malformed("the reply uses obsolete header folding");
        }
        let Some((name, value)) = line.split_once(':') else {
            return malformed("a reply header has no ':'");
        };
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return malformed("a reply header has an invalid name");
        }
        headers.push((
            name.to_ascii_lowercase(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
}

/// Reads one reply. `head` says the request was HEAD (no body follows whatever the headers say).
pub fn read_response(r: &mut impl BufRead, head: bool) -> Result<Response, HttpError> {
    let (status, headers) = loop {
        let status = parse_status_line(&read_line(r)?)?;
        let mut headers = Vec::new();
        read_headers(r, &mut headers)?;
        match status {
            // Interim replies (100 Continue, 103 Early Hints) precede the real one.
            100 | 102 | 103 => continue,
            101 => return malformed("the daemon switched protocols unasked"),
            _ => break (status, headers),
        }
    };
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head || status == 204 || status == 304 {
        return Ok(resp);
    }
    let chunked = match resp.header("transfer-encoding") {
        Some(te) => {
            let last = te.rsplit(',').next().unwrap_or("").trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return malformed(format!("unsupported transfer coding {te:?}"));
            }
            true
        }
        None => false,
    };
    if chunked {
        read_chunked(r, &mut resp)?;
    } else if let Some(len) = content_length(&resp.headers)? {
        if len > MAX_BODY {
            return malformed("the reply body is too large");
        }
        resp.body = vec![0; len];
        r.read_exact(&mut resp.body)?;
    } else {
        // No framing: the body runs to the end of the connection.
        r.take(MAX_BODY as u64 + 1).read_to_end(&mut resp.body)?;
        if resp.body.len() > MAX_BODY {
            return malformed("the reply body is too large");
        }
    }
    Ok(resp)
}

/// The Content-Length, if any; repeated values must agree (RFC 9112, section 6.3).
fn content_length(headers: &[(String, String)]) -> Result<Option<usize>, HttpError> {
    let mut found: Option<usize> = None;
    for (_, v) in headers.iter().filter(|(n, _)| n == "content-length") {
        for part in v.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || part.len() > 12 {
                return malformed(format!("invalid Content-Length {v:?}"));
            }
            let n: usize = part
                .parse()
                .or_else(|_| malformed(format!("invalid Content-Length {v:?}")))?;
            if found.is_some_and(|f| f != n) {
                return malformed("conflicting Content-Length headers");
            }
            found = Some(n);
        }
    }
    Ok(found)
}

fn read_chunked(r: &mut impl BufRead, resp: &mut Response) -> Result<(), HttpError> {
    loop {
        let line = read_line(r)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        if size_text.is_empty()
            || size_text.len() > 8
            || !size_text.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return malformed(format!("invalid chunk size {line:?}"));
        }
        let size = usize::from_str_radix(size_text, 16)
            .or_else(|_| malformed(format!("invalid chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, if any, end with an empty line; they are kept with the headers.
            return read_headers(r, &mut resp.headers);
        }
        if resp.body.len() + size > MAX_BODY {
            return malformed("the reply body is too large");
        }
        let start = resp.body.len();
        resp.body.resize(start + size, 0);
        r.read_exact(&mut resp.body[start..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
        if &crlf != b"\r\n" {
            return malformed("a chunk is not followed by CRLF");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn parse(raw: &[u8]) -> Result<Response, HttpError> {
        read_response(&mut BufReader::new(raw), false)
    }

    fn err(raw: &[u8]) -> String {
        match parse(raw) {
            Ok(r) => panic!("parsed {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn content_length_body() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Rolecall-Protocol: 1\r\n\r\nhelloEXTRA",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello");
        assert_eq!(r.header("x-rolecall-protocol"), Some("1"));
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let r = parse(
            b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n\
              4;ext=1\r\nabcd\r\nA\r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.body, b"abcd0123456789");
        assert_eq!(r.header("x-trailer"), Some("t"));
    }

    #[test]
    fn close_delimited_body_and_interim_reply() {
        let r = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\n{}").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"{}");
    }

    #[test]
    fn no_body_for_204_or_head() {
        let r = parse(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert!(r.body.is_empty());
        let r = read_response(
            &mut BufReader::new(&b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"[..]),
            true,
        )
        .unwrap();
        assert!(r.body.is_empty());
    }

    #[test]
    fn malformed_replies_are_refused_clearly() {
        assert!(err(b"").contains("ended early"));
        assert!(err(b"SSH-2.0-OpenSSH\r\n\r\n").contains("not an HTTP/1.x status line"));
        assert!(err(b"HTTP/1.1 2x0 OK\r\n\r\n").contains("no valid status code"));
        assert!(err(b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n").contains("no ':'"));
        assert!(err(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").contains("ended early"));
        assert!(err(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").contains("Content-Length"));
        assert!(
            err(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
                .contains("conflicting")
        );
        assert!(
            err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
                .contains("chunk size")
        );
        assert!(
            err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n")
                .contains("CRLF")
        );
        assert!(
            err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
                .contains("ended early")
        );
        assert!(
            err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").contains("transfer coding")
        );
        let long = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_LINE + 10)
        );
        assert!(err(long.as_bytes()).contains("too long"));
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(err(big.as_bytes()).contains("too large"));
    }

    #[test]
    fn requests_carry_host_and_length() {
        let login = Request::Login {
            source: "corp".into(),
        };
        let r = encode_request(&login, Some(b"{}"));
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("POST /v1/login/corp HTTP/1.1\r\nHost: localhost\r\n"));
        assert!(text.contains("Content-Length: 2\r\n\r\n{}"));
        let g = String::from_utf8(encode_request(&Request::Status, None)).unwrap();
        assert!(g.ends_with("\r\n\r\n") && !g.contains("Content-Length"));
        let p = String::from_utf8(encode_request(&Request::Shutdown, None)).unwrap();
        assert!(p.ends_with("Content-Length: 0\r\n\r\n"));
    }
}
