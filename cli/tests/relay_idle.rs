//! `rolecall relay` closes connections with no traffic either way for `--idle-timeout`, so that
//! silent sockets cannot hold its connection slots forever, while a connection that keeps
//! moving bytes (in either direction) stays open.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An upstream that echoes every byte back.
fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = c.try_clone().unwrap();
                let _ = std::io::copy(&mut &c, &mut w);
            });
        }
    });
    addr
}

fn start_relay(to: std::net::SocketAddr, idle: &str) -> (Relay, std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolecall"))
        .args(["relay", "--listen", "127.0.0.1:0", "--to", &to.to_string()])
        .args(["--idle-timeout", idle])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "rolecall relay: 127.0.0.1:PORT -> TO"
    let listen = line
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    (Relay(child), listen)
}

#[test]
fn idle_connections_are_closed_and_busy_ones_kept() {
    let (_relay, addr) = start_relay(echo_server(), "1s");

    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut b = [0u8; 1];
    let n = idle.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );

    // A byte each 300 ms for 3 s (three idle periods): every one comes back.
    let mut busy = TcpStream::connect(addr).unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..10u8 {
        busy.write_all(&[i]).unwrap();
        let mut got = [0u8; 1];
        busy.read_exact(&mut got).unwrap();
        assert_eq!(got[0], i);
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_bad_idle_timeout_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_rolecall"))
        .args(["relay", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:9"])
        .args(["--idle-timeout", "0s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 1s"));
}
