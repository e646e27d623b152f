//! What the daemon listens on: the socket API, the container endpoint (and IMDS). Servers do
//! not know how credentials were obtained; the HTTP loop they share is [`crate::httpd`].

pub mod container;
pub mod socket;
