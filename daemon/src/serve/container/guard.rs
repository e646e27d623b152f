//! Who may talk to a loopback credentials server: requests addressed to this listener by
//! name (its own ip:port, `localhost`, or the forwarded link-local address), never requests a
//! browser made on behalf of a web page (DNS rebinding, `Origin`, fetch metadata headers).

use arc_swap::ArcSwapOption;
use http::header::{HeaderName, HeaderValue, HOST, ORIGIN};
use http::HeaderMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

// Constants rather than `&str` keys: a string key is parsed into a header name on every lookup.
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");

/// Why a request was refused (one line for the error body; not secret).
pub type Refusal = &'static str;

/// The guard of one listener: checks Host and the browser-only headers. `forwarded` are the
/// link-local addresses (and port 80) that `rolecall container setup` forwards to the listener
/// (`169.254.170.2` and `169.254.170.23` for the container endpoint, `169.254.169.254` for
/// IMDS). It remembers the last Host value it accepted: every request of an SDK names the
/// endpoint the same way, and whether a Host value is accepted depends only on its bytes and
/// the listener's address, so a request bringing the same bytes is not parsed again.
pub struct Guard {
    forwarded: Vec<IpAddr>,
    accepted: ArcSwapOption<(HeaderValue, SocketAddr)>,
}

impl Guard {
    pub fn new(forwarded: &[IpAddr]) -> Self {
        Self {
            forwarded: forwarded.to_vec(),
            accepted: ArcSwapOption::empty(),
        }
    }

    pub fn check(&self, headers: &HeaderMap, local: SocketAddr) -> Result<(), Refusal> {
        refuse_browsers(headers)?;
        let host = only_host(headers)?;
        if let Some(known) = &*self.accepted.load() {
            if known.0 == host && known.1 == local {
                return Ok(());
            }
        }
        allowed(host, local, &self.forwarded)?;
        self.accepted.store(Some(Arc::new((host.clone(), local))));
        Ok(())
    }
}

/// Browsers always send Origin on cross-origin fetches and Sec-Fetch-* on everything; no AWS
/// SDK sends either. One pass over the (few) header names rather than a lookup per name.
fn refuse_browsers(headers: &HeaderMap) -> Result<(), Refusal> {
    for name in headers.keys() {
        if name == ORIGIN {
            return Err("requests with an Origin header are refused");
        }
        if name == SEC_FETCH_SITE || name == SEC_FETCH_MODE {
            return Err("requests from a browser are refused");
        }
    }
    Ok(())
}

fn only_host(headers: &HeaderMap) -> Result<&HeaderValue, Refusal> {
    let mut hosts = headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(h), None) => Ok(h),
        (None, _) => Err("a Host header is required"),
        (Some(_), Some(_)) => Err("more than one Host header"),
    }
}

fn allowed(host: &HeaderValue, local: SocketAddr, forwarded: &[IpAddr]) -> Result<(), Refusal> {
    let host = host.to_str().map_err(|_| "the Host header is not valid")?;
    if host_allowed(host, local, forwarded) {
        Ok(())
    } else {
        Err("the Host header does not name this endpoint")
    }
}

/// Splits `name[:port]`, with IPv6 literals in brackets.
fn split_host_port(host: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = host.strip_prefix('[') {
        let end = rest.find(']')?;
        let name = &rest[..end];
        let after = &rest[end + 1..];
        return match after {
            "" => Some((name, None)),
            _ => Some((name, Some(after.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) => Some((name, Some(port.parse().ok()?))),
        None => Some((host, None)),
    }
}

/// A Host naming the loopback or link-local address itself cannot come from a rebinding
/// attack (a browser puts the attacker's domain there), so a missing port is accepted; a
/// port that is given must be the one the name is reached on.
fn host_allowed(host: &str, local: SocketAddr, forwarded: &[IpAddr]) -> bool {
    let Some((name, port)) = split_host_port(host) else {
        return false;
    };
    if name.eq_ignore_ascii_case("localhost") {
        return port.is_none_or(|p| p == local.port());
    }
    let Ok(ip) = name.parse::<IpAddr>() else {
        return false;
    };
    if ip == local.ip() {
        return port.is_none_or(|p| p == local.port());
    }
    // Traffic DNAT-ed (or relayed) from the link-local address keeps that Host.
    forwarded.contains(&ip) && port.is_none_or(|p| p == 80)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const FWD: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 170, 2));

    /// A fresh guard each time, so that no check is answered from an earlier one's memory.
    fn check(headers: &HeaderMap, local: SocketAddr, forwarded: IpAddr) -> Result<(), Refusal> {
        Guard::new(&[forwarded]).check(headers, local)
    }

    fn check_any(
        headers: &HeaderMap,
        local: SocketAddr,
        forwarded: &[IpAddr],
    ) -> Result<(), Refusal> {
        Guard::new(forwarded).check(headers, local)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn own_address_localhost_and_the_forwarded_address_pass() {
        let local: SocketAddr = "127.0.0.1:9911".parse().unwrap();
        for ok in [
            "127.0.0.1:9911",
            "127.0.0.1",
            "localhost:9911",
            "LOCALHOST",
            "169.254.170.2",
            "169.254.170.2:80",
        ] {
            assert!(check(&headers(&[("host", ok)]), local, FWD).is_ok(), "{ok}");
        }
        let v6: SocketAddr = "[::1]:9911".parse().unwrap();
        assert!(check(&headers(&[("host", "[::1]:9911")]), v6, FWD).is_ok());
    }

    #[test]
    fn every_forwarded_address_passes_with_check_any_and_only_those() {
        let local: SocketAddr = "127.0.0.1:9911".parse().unwrap();
        let pod = IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 170, 23));
        for ok in ["169.254.170.2", "169.254.170.23", "169.254.170.23:80"] {
            assert!(
                check_any(&headers(&[("host", ok)]), local, &[FWD, pod]).is_ok(),
                "{ok}"
            );
        }
        for bad in ["169.254.170.23:9911", "169.254.170.24", "169.254.169.254"] {
            assert!(
                check_any(&headers(&[("host", bad)]), local, &[FWD, pod]).is_err(),
                "{bad}"
            );
        }
        // A listener forwarded one address only does not take the other.
        assert!(check(&headers(&[("host", "169.254.170.23")]), local, FWD).is_err());
    }

    #[test]
    fn other_hosts_ports_origins_and_browsers_are_refused() {
        let local: SocketAddr = "127.0.0.1:9911".parse().unwrap();
        for bad in [
            "evil.example",
            "evil.example:9911",
            "127.0.0.1:9912",
            "localhost:80",
            "169.254.170.2:9911",
            "127.0.0.2:9911",
            "[::1]:9911",
            "127.0.0.1:",
            "",
        ] {
            assert!(
                check(&headers(&[("host", bad)]), local, FWD).is_err(),
                "{bad}"
            );
        }
        assert!(check(&headers(&[]), local, FWD).is_err());
        assert!(check(
            &headers(&[("host", "127.0.0.1:9911"), ("host", "evil.example")]),
            local,
            FWD
        )
        .is_err());
        assert!(check(
            &headers(&[("host", "127.0.0.1:9911"), ("origin", "null")]),
            local,
            FWD
        )
        .is_err());
        assert!(check(
            &headers(&[("host", "127.0.0.1:9911"), ("sec-fetch-mode", "no-cors")]),
            local,
            FWD
        )
        .is_err());
    }

    #[test]
    fn a_guard_remembers_only_what_it_accepted_on_that_address() {
        let local: SocketAddr = "127.0.0.1:9911".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:9912".parse().unwrap();
        let guard = Guard::new(&[FWD]);
        let own = headers(&[("host", "127.0.0.1:9911")]);
        for _ in 0..2 {
            assert!(guard.check(&own, local).is_ok());
        }
        // The same bytes on another listener address, and anything refused, still are.
        assert!(guard.check(&own, other).is_err());
        assert!(guard
            .check(&headers(&[("host", "evil.example")]), local)
            .is_err());
        assert!(guard
            .check(
                &headers(&[("host", "127.0.0.1:9911"), ("origin", "null")]),
                local
            )
            .is_err());
        assert!(guard
            .check(
                &headers(&[("host", "127.0.0.1:9911"), ("host", "127.0.0.1:9911")]),
                local
            )
            .is_err());
        assert!(guard.check(&headers(&[]), local).is_err());
        assert!(guard.check(&own, local).is_ok());
    }
}
