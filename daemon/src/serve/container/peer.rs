//! Which local user is at the other end of a loopback TCP connection.
//!
//! Loopback TCP has no SO_PEERCRED. On Linux the kernel lists every socket of the network
//! namespace in `/proc/net/tcp` and `/proc/net/tcp6` with its owner's uid: the client's socket
//! is the one whose local address is our peer's address and whose remote address is the
//! address the connection arrived on. IMDS and the container endpoint serve the daemon's own
//! user only; another local user is refused even with a valid token or session.
//!
//! Containers reached through the `169.254.170.2` DNAT arrive from their bridge address, not
//! from loopback: their sockets live in another namespace and are not looked up (the container
//! endpoint still demands a token from them). Elsewhere than Linux the lookup is not made.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a peer was refused (one line for the 403 body; not secret).
pub type Refusal = &'static str;

/// The uid that owns the client end of the connection `peer` → `local`, when it is a socket of
/// this network namespace.
#[cfg(target_os = "linux")]
pub fn peer_uid(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|f| {
        let table = std::fs::read_to_string(f).ok()?;
        find_uid(&table, peer, local)
    })
}

#[cfg(not(target_os = "linux"))]
pub fn peer_uid(_peer: SocketAddr, _local: SocketAddr) -> Option<u32> {
    None
}

/// The daemon's own (effective) uid.
pub fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// A loopback peer must be a socket of the daemon's user. Other peers are let through (the
/// caller decides whether it serves them at all).
pub fn check_local_user(peer: SocketAddr, local: SocketAddr) -> Result<(), Refusal> {
    if !unmapped(peer.ip()).is_loopback() || cfg!(not(target_os = "linux")) {
        return Ok(());
    }
    match peer_uid(peer, local) {
        Some(uid) if uid == own_uid() => Ok(()),
        Some(_) => Err("this endpoint serves only the user rolecalld runs as"),
        // Not found: the client is gone already, or the source address was forged.
        None => Err("the client's socket could not be identified"),
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn same(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && unmapped(a.ip()) == unmapped(b.ip())
}

/// Searches one `/proc/net/tcp{,6}` table for the socket `peer` → `local`; answers its uid.
fn find_uid(table: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    table.lines().skip(1).find_map(|line| {
        // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid …
        let f: Vec<&str> = line.split_whitespace().collect();
        let (mine, theirs, uid) = (parse_addr(f.get(1)?)?, parse_addr(f.get(2)?)?, f.get(7)?);
        (same(mine, peer) && same(theirs, local))
            .then(|| uid.parse().ok())
            .flatten()
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6). The kernel prints each 32-bit
/// word of the address as a native-endian integer.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex4(ip: Ipv4Addr) -> String {
        format!("{:08X}", u32::from_ne_bytes(ip.octets()))
    }

    #[test]
    fn finds_the_client_socket_and_its_uid() {
        let lo = Ipv4Addr::LOCALHOST;
        let table = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             \x20  0: {lo}:26B7 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
             \x20  1: {lo}:26B7 {lo}:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n\
             \x20  2: {lo}:D431 {lo}:26B7 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1\n",
            lo = hex4(lo)
        );
        let listener: SocketAddr = "127.0.0.1:9911".parse().unwrap();
        let client: SocketAddr = "127.0.0.1:54321".parse().unwrap();
        assert_eq!(find_uid(&table, client, listener), Some(1000));
        assert_eq!(
            find_uid(&table, "127.0.0.1:1".parse().unwrap(), listener),
            None
        );
        // The mapped form a v6 socket shows for the same connection matches too.
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:54321".parse().unwrap();
        assert_eq!(find_uid(&table, mapped, listener), Some(1000));
    }

    #[test]
    fn parses_v6_entries() {
        let one = Ipv6Addr::LOCALHOST.octets();
        let hex: String = one
            .chunks(4)
            .map(|c| format!("{:08X}", u32::from_ne_bytes(c.try_into().unwrap())))
            .collect();
        let a = parse_addr(&format!("{hex}:1F90")).unwrap();
        assert_eq!(a, "[::1]:8080".parse().unwrap());
        assert!(parse_addr("zz:1").is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_connection_maps_to_this_process_user() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, peer) = l.accept().unwrap();
        assert_eq!(peer_uid(peer, l.local_addr().unwrap()), Some(own_uid()));
        assert!(check_local_user(peer, l.local_addr().unwrap()).is_ok());
        drop(c);
    }
}
