//! The audit log (docs/audit.md): one JSON line per credential hand-out, in `audit.jsonl` in
//! the state dir, rotated with a size bound. Never a secret: only identifiers
//! ([`rolecall_proto::audit`] is the format).
//!
//! Serving paths call [`AuditLog::record`], which only queues the record: a dedicated thread
//! ([`writer`]) does the file I/O, so a slow disk never delays a credential. It writes what
//! gathered in a few milliseconds with one `write`, so a burst of hand-outs costs one system
//! call, not one per record. When the queue is
//! full the record is dropped and counted, and the next line written says how many were lost.
//! Who the caller is must be read while the request is being answered (a `credential_process`
//! exits right after), so [`caller`] runs on the serving path; it costs a few `/proc` reads.

mod batch;
pub mod caller;
pub mod template;
pub mod writer;

pub use template::{TcpCaller, Template};

use rolecall_proto::audit::{Caller, Handout, Interface, Record, TokenRef};
use rolecall_proto::timefmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use crate::credentials::RoleCredentials;

/// Records queued at most; beyond, records are dropped (and counted).
pub const QUEUE: usize = 4096;

/// The size bound: files of at most `max_size` bytes, `files` of them (the current one
/// included). Changed by a config reload.
#[derive(Debug)]
pub struct Limits {
    max_size: AtomicU64,
    files: AtomicU32,
}

impl Limits {
    pub fn new(max_size: u64, files: u32) -> Self {
        Self {
            max_size: AtomicU64::new(max_size),
            files: AtomicU32::new(files.max(1)),
        }
    }

    pub fn set(&self, max_size: u64, files: u32) {
        self.max_size.store(max_size, Ordering::Relaxed);
        self.files.store(files.max(1), Ordering::Relaxed);
    }

    pub fn max_size(&self) -> u64 {
        self.max_size.load(Ordering::Relaxed)
    }

    pub fn files(&self) -> u32 {
        self.files.load(Ordering::Relaxed)
    }
}

/// What the serving paths queue for the writer.
enum Entry {
    Record(Record),
    /// A hand-out whose record was serialised earlier but for its caller and token.
    Templated {
        template: Arc<Template>,
        caller: TcpCaller,
        token: Option<Arc<TokenRef>>,
    },
}

/// A handle on the log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: SyncSender<Entry>,
    shared: Arc<Shared>,
}

struct Shared {
    dropped: AtomicU64,
    /// Records queued and not yet written (or found unwritable).
    pending: AtomicU64,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    warned: AtomicBool,
    limits: Arc<Limits>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens `audit.jsonl` in `state_dir` (creating it 0600) and starts the writer thread.
    pub fn start(state_dir: PathBuf, limits: Limits) -> Result<Self, String> {
        Self::start_with_queue(state_dir, limits, QUEUE)
    }

    /// As [`AuditLog::start`] with another queue length (tests fill a tiny one).
    pub fn start_with_queue(
        state_dir: PathBuf,
        limits: Limits,
        queue: usize,
    ) -> Result<Self, String> {
        let limits = Arc::new(limits);
        let file = writer::Writer::open(state_dir, Arc::clone(&limits))?;
        let (tx, rx) = sync_channel(queue);
        let shared = Arc::new(Shared {
            dropped: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            warned: AtomicBool::new(false),
            thread: std::sync::Mutex::new(None),
            limits,
        });
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || run_writer(file, rx, thread_shared))
            .map_err(|e| format!("cannot start the audit writer: {e}"))?;
        *shared.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(Self { tx, shared })
    }

    /// Applies `audit_max_size` / `audit_files` (at a config reload).
    pub fn set_limits(&self, max_size: u64, files: u32) {
        self.shared.limits.set(max_size, files);
    }

    /// Queues one record; never blocks. A full queue drops it and counts it.
    pub fn record(&self, handout: Handout) {
        self.queue(Entry::Record(Record::Credentials(Box::new(handout))));
    }

    /// Queues the record of a hand-out to a TCP client from its `template`; never blocks.
    pub fn record_templated(
        &self,
        template: &Arc<Template>,
        caller: TcpCaller,
        token: Option<Arc<TokenRef>>,
    ) {
        self.queue(Entry::Templated {
            template: Arc::clone(template),
            caller,
            token,
        });
    }

    fn queue(&self, entry: Entry) {
        // Counted before the send: the writer may finish the record before try_send returns.
        self.shared.pending.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.shared.pending.fetch_sub(1, Ordering::AcqRel);
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                if !self.shared.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!("the audit log cannot keep up; records are being dropped (the log says how many)");
                }
            }
        }
    }

    /// Records dropped and not yet reported in the file.
    pub fn dropped_pending(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Waits (at most `limit`) until every queued record is written: the daemon calls it when
    /// stopping, so that the last hand-outs are not lost with the process.
    pub fn wait_written(&self, limit: std::time::Duration) -> bool {
        let deadline = crate::clock::monotonic() + limit;
        while self.shared.pending.load(Ordering::Acquire) > 0 {
            if crate::clock::monotonic() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        true
    }

    /// Writes what is queued and stops the writer. Only for the last handle: with others
    /// alive this waits until they are dropped too.
    pub fn close(self) {
        let handle = self
            .shared
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(self.tx);
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// How long the writer lets records gather after the first one of a burst arrives: a burst
/// (a container endpoint under load answers tens of thousands of requests a second) is then
/// written with one `write`, and the serving threads rarely have to wake the writer.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(5);

fn run_writer(mut file: writer::Writer, rx: Receiver<Entry>, shared: Arc<Shared>) {
    let mut batch = batch::Batch::default();
    // Ends when every handle is gone (the daemon is stopping) and the queue is drained.
    while let Ok(first) = rx.recv() {
        std::thread::sleep(BATCH_WINDOW);
        file.check_replaced();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(entry) = next {
            batch.add(entry);
            taken += 1;
            next = rx.try_recv().ok();
        }
        batch.flush(&mut file, &shared);
        shared.pending.fetch_sub(taken, Ordering::AcqRel);
        let lost = shared.dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            shared.warned.store(false, Ordering::Relaxed);
            let note = Entry::Record(Record::Dropped {
                time: timefmt::rfc3339(timefmt::now_epoch()),
                count: lost,
            });
            batch.add(note);
            batch.flush(&mut file, &shared);
        }
    }
}

/// Builds the record of credentials handed out now.
pub fn handout(
    interface: Interface,
    profile: &str,
    creds: &RoleCredentials,
    caller: Caller,
    token: Option<TokenRef>,
) -> Handout {
    Handout {
        time: timefmt::rfc3339(timefmt::now_epoch()),
        interface,
        profile: profile.to_string(),
        role: None,
        role_arn: Some(creds.role_arn.clone()).filter(|a| !a.is_empty()),
        account_id: creds.account_id.clone(),
        access_key_id: creds.access_key_id.clone(),
        expiration: timefmt::rfc3339(creds.expiration),
        caller,
        token,
        // Credentials of a scoped session are known by their access key id, whichever
        // interface hands them out.
        session_policy: crate::broker::scoped::policy_hash_of(&creds.access_key_id),
        count: None,
    }
}

#[cfg(test)]
mod tests;
