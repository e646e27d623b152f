//! What the daemon listens on: the socket API, the container endpoint (and IMDS), and the
//! loopback OAuth callback. Servers do not know how credentials were obtained.

pub mod callback;
pub mod container;
pub mod socket;
