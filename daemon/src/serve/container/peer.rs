//! Which local user is at the other end of a loopback TCP connection.
//!
//! Loopback TCP has no SO_PEERCRED. On Linux the kernel knows the owner of every socket of the
//! network namespace: the client's socket is the one whose local address is our peer's address
//! and whose remote address is the address the connection arrived on. It is looked up by that
//! exact 4-tuple over netlink `sock_diag` (what `ss` uses; constant time however many sockets
//! are open), or, where that is not available, found in `/proc/net/tcp` and `/proc/net/tcp6`.
//! IMDS and the container endpoint serve the daemon's own user only; another local user is
//! refused even with a valid token or session.
//!
//! Containers reached through the `169.254.170.2` DNAT arrive from their bridge address, not
//! from loopback: their sockets live in another namespace and are not looked up (the container
//! endpoint still demands a token from them). Elsewhere than Linux the lookup is not made.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub use crate::httpd::Refusal;

/// The uid that owns the client end of the connection `peer` → `local`, when it is a socket of
/// this network namespace.
#[cfg(target_os = "linux")]
pub fn peer_uid(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    match diag::lookup_uid(peer, local) {
        Ok(uid) => uid,
        // No sock_diag here (kernel without inet_diag): scan the tables instead.
        Err(_) => ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|f| {
            let table = std::fs::read_to_string(f).ok()?;
            find_uid(&table, peer, local)
        }),
    }
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

/// A loopback peer must be a socket of the daemon's user; answers its uid (looked up once per
/// connection: the audit log records it for every request of the connection). Other peers are
/// let through with no uid (the caller decides whether it serves them at all).
pub fn check_local_user(peer: SocketAddr, local: SocketAddr) -> Result<Option<u32>, Refusal> {
    if !unmapped(peer.ip()).is_loopback() || cfg!(not(target_os = "linux")) {
        return Ok(None);
    }
    match peer_uid(peer, local) {
        Some(uid) if uid == own_uid() => Ok(Some(uid)),
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

/// The exact-socket lookup of `NETLINK_SOCK_DIAG` (linux/inet_diag.h).
#[cfg(target_os = "linux")]
mod diag {
    use super::unmapped;
    use std::io;
    use std::net::{IpAddr, SocketAddr};
    use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 1;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_HDR: usize = 16;
    /// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, then the socket id.
    const REQ_LEN: usize = 8 + ID_LEN;
    /// `struct inet_diag_sockid`: sport, dport (big endian), src[16], dst[16], if, cookie[2].
    const ID_LEN: usize = 48;
    /// Offset of `idiag_uid` in `struct inet_diag_msg` (after 4 bytes, the id, expires,
    /// rqueue and wqueue).
    const UID_AT: usize = 4 + ID_LEN + 12;

    fn addr16(ip: IpAddr) -> [u8; 16] {
        let mut b = [0u8; 16];
        match unmapped(ip) {
            IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => b = v6.octets(),
        }
        b
    }

    /// `Ok(None)`: the kernel has no such socket. `Err`: sock_diag cannot be used here.
    pub fn lookup_uid(peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
        let family = match unmapped(peer.ip()) {
            IpAddr::V4(_) => libc::AF_INET,
            IpAddr::V6(_) => libc::AF_INET6,
        };
        // SAFETY: socket() with constant arguments; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a new, valid descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let timeout = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: a valid fd and a timeval of the size given.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };

        let mut msg = Vec::with_capacity(NLMSG_HDR + REQ_LEN);
        msg.extend_from_slice(&((NLMSG_HDR + REQ_LEN) as u32).to_ne_bytes());
        msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
        msg.push(family as u8);
        msg.push(libc::IPPROTO_TCP as u8);
        msg.extend_from_slice(&[0, 0]); // ext, pad
        msg.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
                                                        // The client's socket: its source is our peer, its destination our listener.
        msg.extend_from_slice(&peer.port().to_be_bytes());
        msg.extend_from_slice(&local.port().to_be_bytes());
        msg.extend_from_slice(&addr16(peer.ip()));
        msg.extend_from_slice(&addr16(local.ip()));
        msg.extend_from_slice(&0u32.to_ne_bytes()); // any interface
        msg.extend_from_slice(&[0xff; 8]); // INET_DIAG_NOCOOKIE
                                           // SAFETY: the kernel's netlink address (all zero but the family) and a buffer of the
                                           // length given.
        let sent = unsafe {
            let mut to: libc::sockaddr_nl = std::mem::zeroed();
            to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            libc::sendto(
                fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 8192];
        // SAFETY: a valid fd and a writable buffer of the length given.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let reply = &buf[..n as usize];
        let kind = u16::from_ne_bytes([reply[4], reply[5]]);
        if kind == NLMSG_ERROR {
            // The payload is -errno: ENOENT when there is no such socket; anything else means
            // the lookup itself is not supported.
            let errno = reply
                .get(NLMSG_HDR..NLMSG_HDR + 4)
                .map(|b| -i32::from_ne_bytes(b.try_into().unwrap_or_default()))
                .unwrap_or(0);
            return if errno == libc::ENOENT {
                Ok(None)
            } else {
                Err(io::Error::from_raw_os_error(errno))
            };
        }
        if kind != SOCK_DIAG_BY_FAMILY {
            return Err(io::Error::other("unexpected sock_diag answer"));
        }
        let body = &reply[NLMSG_HDR..];
        // The kernel may fall back to a listening socket: insist on the exact 4-tuple.
        let id = body.get(4..4 + ID_LEN).ok_or(io::ErrorKind::InvalidData)?;
        let exact = id[0..2] == peer.port().to_be_bytes()
            && id[2..4] == local.port().to_be_bytes()
            && id[4..20] == addr16(peer.ip())
            && id[20..36] == addr16(local.ip());
        let uid = body
            .get(UID_AT..UID_AT + 4)
            .ok_or(io::ErrorKind::InvalidData)?;
        Ok(exact.then(|| u32::from_ne_bytes(uid.try_into().unwrap_or_default())))
    }
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
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(l) = std::net::TcpListener::bind(bind) else {
                continue; // no IPv6 loopback here
            };
            let local = l.local_addr().unwrap();
            let c = std::net::TcpStream::connect(local).unwrap();
            let (_s, peer) = l.accept().unwrap();
            // Both ways of looking agree.
            assert_eq!(diag::lookup_uid(peer, local).unwrap(), Some(own_uid()));
            let table = if peer.is_ipv4() {
                "/proc/net/tcp"
            } else {
                "/proc/net/tcp6"
            };
            let table = std::fs::read_to_string(table).unwrap();
            assert_eq!(find_uid(&table, peer, local), Some(own_uid()));
            assert!(check_local_user(peer, local).is_ok());
            let t = crate::clock::monotonic();
            for _ in 0..1000 {
                assert_eq!(peer_uid(peer, local), Some(own_uid()));
            }
            eprintln!("{bind}: 1000 lookups in {:?}", t.elapsed());
            // A socket that does not exist is not found (and is not a listener's uid).
            let gone: SocketAddr = SocketAddr::new(peer.ip(), 1);
            assert_eq!(diag::lookup_uid(gone, local).unwrap(), None);
            drop(c);
        }
    }
}
