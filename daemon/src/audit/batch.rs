//! What the writer gathered in one window, written with as few `write`s as the rotation
//! allows: lines are cut where the file would rotate, so that every file still ends at a line
//! boundary within `audit_max_size`.
//!
//! Identical hand-outs in one window — the same rendered record (profile, credentials,
//! interface, second), to the same connection (address and port, uid), through the same
//! token — are written as one line with a `count`. Nothing is lost but the repetition: a
//! client that asks the container endpoint in a tight loop no longer fills the log (and
//! rotates away the day's history) with copies of one line. Different connections, tokens or
//! credentials always get their own lines.

use super::{Entry, Shared, TcpCaller, Template};
use rolecall_proto::audit::{Record, TokenRef};
use rustc_hash::FxHashMap;
use std::collections::hash_map::Entry as Slot;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

enum Pending {
    Record(Record),
    Handouts {
        template: Arc<Template>,
        caller: TcpCaller,
        token: Option<Arc<TokenRef>>,
        count: u64,
    },
}

/// What makes two hand-outs the same line. The template and the token are compared by
/// identity (their `Arc`s live in the batch until it is written, so an address is not reused
/// meanwhile): one rendered reply's record, one token's entry (equal ones made apart merely
/// stay two lines).
#[derive(PartialEq, Eq, Hash)]
struct Same {
    template: usize,
    uid: Option<u32>,
    addr: SocketAddr,
    token: Option<usize>,
}

#[derive(Default)]
pub(super) struct Batch {
    order: Vec<Pending>,
    /// Fx, not SipHash: only hand-outs that passed the token check are keyed, and one
    /// connection gives one key per batch, so at most a few hundred keys can collide.
    groups: FxHashMap<Same, usize>,
    bytes: Vec<u8>,
    /// Lines in `bytes`, and the hand-outs they stand for (counted as lost if writing fails).
    lines: u64,
    records: u64,
}

impl Batch {
    pub fn add(&mut self, entry: Entry) {
        match entry {
            Entry::Record(r) => self.order.push(Pending::Record(r)),
            Entry::Templated {
                template,
                caller,
                token,
            } => {
                let same = Same {
                    template: Arc::as_ptr(&template) as usize,
                    uid: caller.uid,
                    addr: caller.addr,
                    token: token.as_ref().map(|t| Arc::as_ptr(t) as usize),
                };
                match self.groups.entry(same) {
                    Slot::Occupied(at) => {
                        if let Some(Pending::Handouts { count, .. }) = self.order.get_mut(*at.get())
                        {
                            *count += 1;
                        }
                    }
                    Slot::Vacant(slot) => {
                        slot.insert(self.order.len());
                        self.order.push(Pending::Handouts {
                            template,
                            caller,
                            token,
                            count: 1,
                        });
                    }
                }
            }
        }
    }

    /// Writes every gathered line.
    pub fn flush(&mut self, file: &mut super::writer::Writer, shared: &Shared) {
        self.groups.clear();
        let mut order = std::mem::take(&mut self.order);
        for pending in order.drain(..) {
            let start = self.bytes.len();
            let records = match &pending {
                Pending::Record(r) => {
                    if serde_json::to_writer(&mut self.bytes, r).is_err() {
                        self.bytes.truncate(start);
                        continue;
                    }
                    1
                }
                Pending::Handouts {
                    template,
                    caller,
                    token,
                    count,
                } => {
                    template.write_line(caller, token.as_deref(), *count, &mut self.bytes);
                    *count
                }
            };
            self.bytes.push(b'\n');
            if self.lines > 0 && file.would_rotate(self.bytes.len()) {
                // This line starts the next write, after the rotation.
                let line = self.bytes[start..].to_vec();
                self.bytes.truncate(start);
                self.write_out(file, shared);
                self.bytes.extend_from_slice(&line);
            }
            self.lines += 1;
            self.records += records;
        }
        self.order = order;
        self.write_out(file, shared);
    }

    fn write_out(&mut self, file: &mut super::writer::Writer, shared: &Shared) {
        if self.lines == 0 {
            return;
        }
        if let Err(e) = file.append(&self.bytes) {
            shared.dropped.fetch_add(self.records, Ordering::Relaxed);
            if !shared.warned.swap(true, Ordering::Relaxed) {
                tracing::error!(error = %e, "cannot write the audit log");
            }
        }
        self.bytes.clear();
        self.lines = 0;
        self.records = 0;
    }
}
