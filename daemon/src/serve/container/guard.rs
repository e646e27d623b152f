//! Who may talk to a loopback credentials server: requests addressed to this listener by
//! name (its own ip:port, `localhost`, or the forwarded link-local address), never requests a
//! browser made on behalf of a web page (DNS rebinding, `Origin`, fetch metadata headers).

use http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// Why a request was refused (one line for the error body; not secret).
pub type Refusal = &'static str;

/// Checks Host and the browser-only headers. `forwarded` is the link-local address (and port
/// 80) that `rolecall container setup` forwards to this listener (`169.254.170.2` for the
/// container endpoint, `169.254.169.254` for IMDS).
pub fn check(headers: &HeaderMap, local: SocketAddr, forwarded: IpAddr) -> Result<(), Refusal> {
    check_any(headers, local, &[forwarded])
}

/// [`check`] for a listener that several link-local addresses are forwarded to (the container
/// endpoint: `169.254.170.2` for ECS-style clients, `169.254.170.23` for Pod Identity ones).
pub fn check_any(
    headers: &HeaderMap,
    local: SocketAddr,
    forwarded: &[IpAddr],
) -> Result<(), Refusal> {
    // Browsers always send Origin on cross-origin fetches and Sec-Fetch-* on everything; no
    // AWS SDK sends either.
    if headers.contains_key(http::header::ORIGIN) {
        return Err("requests with an Origin header are refused");
    }
    if headers.contains_key("sec-fetch-site") || headers.contains_key("sec-fetch-mode") {
        return Err("requests from a browser are refused");
    }
    let mut hosts = headers.get_all(http::header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(h), None) => h.to_str().map_err(|_| "the Host header is not valid")?,
        (None, _) => return Err("a Host header is required"),
        (Some(_), Some(_)) => return Err("more than one Host header"),
    };
    if forwarded.iter().any(|f| host_allowed(host, local, *f)) {
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
fn host_allowed(host: &str, local: SocketAddr, forwarded: IpAddr) -> bool {
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
    ip == forwarded && port.is_none_or(|p| p == 80)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const FWD: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 170, 2));

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
}
