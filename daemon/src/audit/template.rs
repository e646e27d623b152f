//! A hand-out's record serialised once and completed per request.
//!
//! The container endpoint and IMDS answer most requests with a reply rendered earlier in the
//! same second (`serve::container::replies`); the audit record of such a hand-out differs
//! from the previous one only in the caller (address and uid) and the token presented. So the
//! JSON of everything else is kept with the rendered reply, and a request queues only an
//! `Arc` of it with its caller and token: no copy of the record's strings on the serving
//! thread, and the writer thread splices a few dozen bytes instead of serialising the record.
//! The line written is byte for byte what serialising the whole record gives (tested).

use rolecall_proto::audit::{Caller, Handout, Record, TokenRef};
use std::io::Write as _;
use std::net::SocketAddr;

/// A TCP client as an audit record names it: its address and, on loopback, the uid owning
/// its socket (found when the listener admitted the connection).
#[derive(Debug, Clone, Copy)]
pub struct TcpCaller {
    pub uid: Option<u32>,
    pub addr: SocketAddr,
}

impl From<&crate::httpd::TcpPeer> for TcpCaller {
    fn from(p: &crate::httpd::TcpPeer) -> Self {
        Self {
            uid: p.uid,
            addr: p.peer,
        }
    }
}

/// The line of a hand-out record, split where the caller goes: `head` ends with
/// `"caller":`, `tail` is what follows the caller and the token.
#[derive(Debug)]
pub struct Template {
    head: Box<[u8]>,
    tail: Box<[u8]>,
}

const CALLER_KEY: &[u8] = b"\"caller\":";

impl Template {
    /// The template of `handout`'s record (its caller and token are ignored: each request
    /// brings its own).
    pub fn of(handout: &Handout) -> Self {
        let bare = Handout {
            caller: Caller::default(),
            token: None,
            ..handout.clone()
        };
        let json = serde_json::to_vec(&Record::Credentials(Box::new(bare))).unwrap_or_default();
        // An empty caller serialises as `{}`. The key cannot occur inside a string value: a
        // quote in a value is escaped, so `"caller":` there would read `\"caller\":`.
        let empty_caller = [CALLER_KEY, b"{}"].concat();
        match json
            .windows(empty_caller.len())
            .position(|w| w == empty_caller.as_slice())
        {
            Some(at) => Template {
                head: json[..at + CALLER_KEY.len()].into(),
                tail: json[at + empty_caller.len()..].into(),
            },
            // Not reachable with serde_json; keep a valid line rather than lose the record.
            None => {
                let open = json.len().saturating_sub(1);
                let mut head = json[..open].to_vec();
                head.extend_from_slice(b",\"caller\":");
                Template {
                    head: head.into(),
                    tail: b"}".as_slice().into(),
                }
            }
        }
    }

    /// Appends the record's line (without the newline) for `caller` and `token` to `out`,
    /// standing for `count` identical hand-outs.
    pub fn write_line(
        &self,
        caller: &TcpCaller,
        token: Option<&TokenRef>,
        count: u64,
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(&self.head);
        // `Caller`'s serialisation with only uid and addr set; an address's text needs no
        // JSON escaping (digits, dots, colons, brackets, and a numeric IPv6 scope id).
        out.push(b'{');
        if let Some(uid) = caller.uid {
            out.extend_from_slice(b"\"uid\":");
            write_decimal(uid, out);
            out.push(b',');
        }
        out.extend_from_slice(b"\"addr\":\"");
        write_addr(caller.addr, out);
        out.extend_from_slice(b"\"}");
        if let Some(t) = token {
            out.extend_from_slice(b",\"token\":");
            let _ = serde_json::to_writer(&mut *out, t);
        }
        // `count` is the record's last field: before the closing brace.
        let (close, rest) = self.tail.split_last().unwrap_or((&b'}', &[]));
        out.extend_from_slice(rest);
        if count > 1 {
            out.extend_from_slice(b",\"count\":");
            write_decimal_u64(count, out);
        }
        out.push(*close);
    }
}

/// `addr` as its `Display` writes it. IPv4 (every loopback client of these listeners) by hand:
/// the formatting machinery cost more than the rest of the line.
fn write_addr(addr: SocketAddr, out: &mut Vec<u8>) {
    match addr {
        SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                write_decimal(u32::from(octet), out);
            }
            out.push(b':');
            write_decimal(u32::from(v4.port()), out);
        }
        SocketAddr::V6(_) => {
            let _ = write!(out, "{addr}");
        }
    }
}

fn write_decimal(n: u32, out: &mut Vec<u8>) {
    write_decimal_u64(u64::from(n), out);
}

fn write_decimal_u64(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rolecall_proto::audit::Interface;

    fn handout(role_arn: Option<&str>, policy: Option<&str>) -> Handout {
        Handout {
            time: "2026-12-04T10:00:00Z".into(),
            interface: Interface::Container,
            // A profile name that holds the key's text and JSON's special characters.
            profile: r#"dev "caller":{} \ é"#.into(),
            role: Some("DeveloperAdmin".into()),
            role_arn: role_arn.map(String::from),
            account_id: "111111111111".into(),
            access_key_id: "ASIA0000000000000001".into(),
            expiration: "2026-12-04T11:00:00Z".into(),
            caller: Caller::default(),
            token: None,
            session_policy: policy.map(String::from),
            count: None,
        }
    }

    #[test]
    fn lines_are_what_serialising_the_whole_record_gives() {
        let addrs: [SocketAddr; 5] = [
            "127.0.0.1:40112".parse().unwrap(),
            "0.0.0.0:0".parse().unwrap(),
            "255.255.255.255:65535".parse().unwrap(),
            "[::1]:8080".parse().unwrap(),
            "[fe80::1%2]:9".parse().unwrap(),
        ];
        let tokens = [
            None,
            Some(TokenRef {
                id: "3f2a9c01".into(),
                bound_pid: None,
            }),
            Some(TokenRef {
                id: "77b0e2d4".into(),
                bound_pid: Some(4200),
            }),
        ];
        for h in [
            handout(None, None),
            handout(Some("arn:aws:iam::111111111111:role/R"), None),
            handout(None, Some("sha256:0123456789abcdef")),
        ] {
            let template = Template::of(&h);
            for addr in addrs {
                for uid in [None, Some(0), Some(1000), Some(u32::MAX)] {
                    for (token, count) in
                        tokens.iter().flat_map(|t| [1, 2, u64::MAX].map(|n| (t, n)))
                    {
                        let caller = TcpCaller { uid, addr };
                        let mut line = Vec::new();
                        template.write_line(&caller, token.as_ref(), count, &mut line);
                        let whole = Handout {
                            caller: Caller {
                                uid,
                                addr: Some(addr.to_string()),
                                ..Caller::default()
                            },
                            token: token.clone(),
                            count: Some(count).filter(|n| *n > 1),
                            ..h.clone()
                        };
                        let expected =
                            serde_json::to_vec(&Record::Credentials(Box::new(whole))).unwrap();
                        assert_eq!(
                            String::from_utf8_lossy(&line),
                            String::from_utf8_lossy(&expected)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_template_ignores_the_caller_and_token_it_was_made_from() {
        let mut h = handout(None, None);
        let plain = Template::of(&h);
        h.caller.pid = Some(7);
        h.token = Some(TokenRef::default());
        let other = Template::of(&h);
        assert_eq!((plain.head, plain.tail), (other.head, other.tail));
    }
}
