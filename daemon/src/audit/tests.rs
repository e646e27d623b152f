use super::*;
use rolecall_proto::audit::file_path;
use std::os::unix::fs::PermissionsExt;
use zeroize::Zeroizing;

fn creds(n: usize) -> RoleCredentials {
    RoleCredentials {
        access_key_id: format!("ASIA{n:016}"),
        secret_access_key: Zeroizing::new("SECRET/KEY+value".into()),
        session_token: Zeroizing::new("SESSION-TOKEN-value".into()),
        expiration: 2_000_000_000,
        account_id: "111111111111".into(),
        role_arn: "arn:aws:iam::111111111111:role/R".into(),
    }
}

fn record(log: &AuditLog, n: usize) {
    log.record(handout(
        Interface::CredentialProcess,
        "dev",
        &creds(n),
        caller::socket(1000, Some(1)),
        None,
    ));
}

fn lines(dir: &std::path::Path, n: u32) -> Vec<Record> {
    std::fs::read_to_string(file_path(dir, n))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn records_land_one_per_line_0600_and_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::start(dir.path().into(), Limits::new(1 << 20, 3)).unwrap();
    record(&log, 1);
    record(&log, 2);
    assert!(log.wait_written(std::time::Duration::from_secs(5)));
    assert_eq!(
        lines(dir.path(), 0).len(),
        2,
        "written once wait_written returns"
    );
    log.close();
    let path = file_path(dir.path(), 0);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("SECRET") && !text.contains("SESSION-TOKEN"),
        "{text}"
    );
    let got = lines(dir.path(), 0);
    assert_eq!(got.len(), 2);
    match &got[1] {
        Record::Credentials(h) => {
            assert_eq!(h.access_key_id, "ASIA0000000000000002");
            assert_eq!(h.interface, Interface::CredentialProcess);
            assert_eq!(h.caller.uid, Some(1000));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rotation_keeps_the_size_and_file_bound() {
    let dir = tempfile::tempdir().unwrap();
    let max = 4096;
    let log = AuditLog::start(dir.path().into(), Limits::new(max, 3)).unwrap();
    // Far past the bound (each line is ~300 bytes): 1000 lines ≈ 75 files' worth.
    for n in 0..1000 {
        record(&log, n);
        if n % 50 == 0 {
            // Let the writer keep up (the tiny bound is the point here, not the queue).
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    log.close();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]);
    for n in 0..3 {
        let len = std::fs::metadata(file_path(dir.path(), n)).unwrap().len();
        assert!(
            len <= max && (n == 0 || len > max / 2),
            "file {n}: {len} bytes"
        );
        assert_eq!(
            std::fs::metadata(file_path(dir.path(), n))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    // Newest last, oldest in .2; the newest record is the last line of the current file.
    let newest = lines(dir.path(), 0);
    match newest.last() {
        Some(Record::Credentials(h)) => assert_eq!(h.access_key_id, format!("ASIA{:016}", 999)),
        other => panic!("{other:?}"),
    }
    let key = |r: &Record| match r {
        Record::Credentials(h) => h.access_key_id.clone(),
        Record::Dropped { .. } => String::new(),
    };
    let all: Vec<String> = (0..3)
        .rev()
        .flat_map(|n| lines(dir.path(), n))
        .map(|r| key(&r))
        .collect();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "rotated files keep the order");

    // A smaller `audit_files` takes effect at the next rotation.
    let log = AuditLog::start(dir.path().into(), Limits::new(max, 1)).unwrap();
    for n in 0..40 {
        record(&log, n);
    }
    log.close();
    let count = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(count, 1);
}

#[test]
fn a_full_queue_drops_records_and_says_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::start_with_queue(dir.path().into(), Limits::new(1 << 30, 1), 1).unwrap();
    let total = 20_000;
    for n in 0..total {
        record(&log, n);
    }
    log.close();
    let (mut written, mut dropped) = (0u64, 0u64);
    for r in lines(dir.path(), 0) {
        match r {
            Record::Credentials(_) => written += 1,
            Record::Dropped { count, .. } => dropped += count,
        }
    }
    // Every record is either in the file or counted by a `dropped` line.
    assert_eq!(
        written + dropped,
        total as u64,
        "written {written} dropped {dropped}"
    );
}

#[test]
fn a_log_moved_aside_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::start(dir.path().into(), Limits::new(1 << 20, 3)).unwrap();
    record(&log, 1);
    std::thread::sleep(std::time::Duration::from_millis(100));
    std::fs::rename(file_path(dir.path(), 0), dir.path().join("old")).unwrap();
    record(&log, 2);
    log.close();
    assert_eq!(lines(dir.path(), 0).len(), 1);
}

#[test]
fn a_symlinked_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/passwd", file_path(dir.path(), 0)).unwrap();
    let e = AuditLog::start(dir.path().into(), Limits::new(1 << 20, 3)).unwrap_err();
    assert!(e.contains("cannot open the audit log"), "{e}");
}

#[test]
fn identical_hand_outs_in_one_batch_are_one_line_with_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Arc::new(Limits::new(1 << 20, 3));
    let mut file = writer::Writer::open(dir.path().into(), Arc::clone(&limits)).unwrap();
    let shared = Shared {
        dropped: AtomicU64::new(0),
        pending: AtomicU64::new(0),
        thread: std::sync::Mutex::new(None),
        warned: AtomicBool::new(false),
        limits,
    };
    let template = |n| {
        let mut h = handout(
            Interface::Container,
            "dev",
            &creds(n),
            Caller::default(),
            None,
        );
        h.time = "2026-12-04T10:00:00Z".into();
        Arc::new(Template::of(&h))
    };
    let (first, other) = (template(1), template(2));
    let conn = |port| TcpCaller {
        uid: Some(1000),
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    };
    // One token is one `Arc` (its entry in the token index), however many requests present it.
    let tokens: std::collections::HashMap<&str, Arc<TokenRef>> = ["aa", "bb"]
        .into_iter()
        .map(|id| {
            let t = TokenRef {
                id: id.into(),
                bound_pid: None,
            };
            (id, Arc::new(t))
        })
        .collect();
    let token = |id: &str| Some(Arc::clone(&tokens[id]));
    let handout = |t: &Arc<Template>, caller, tok| Entry::Templated {
        template: Arc::clone(t),
        caller,
        token: tok,
    };
    let mut batch = batch::Batch::default();
    for _ in 0..3 {
        batch.add(handout(&first, conn(4000), token("aa")));
        batch.add(handout(&first, conn(4001), token("aa")));
    }
    batch.add(Entry::Record(Record::Dropped {
        time: "t".into(),
        count: 1,
    }));
    batch.add(handout(&first, conn(4000), token("bb")));
    batch.add(handout(&other, conn(4000), token("aa")));
    batch.add(handout(&first, conn(4000), None));
    batch.add(handout(&first, conn(4000), token("aa")));
    batch.flush(&mut file, &shared);

    let got = lines(dir.path(), 0);
    let summary: Vec<String> = got
        .iter()
        .map(|r| match r {
            Record::Credentials(h) => format!(
                "{} {} {} x{}",
                h.access_key_id,
                h.caller.addr.as_deref().unwrap_or("-"),
                h.token.as_ref().map_or("-", |t| t.id.as_str()),
                h.count.unwrap_or(1)
            ),
            Record::Dropped { count, .. } => format!("dropped {count}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "ASIA0000000000000001 127.0.0.1:4000 aa x4",
            "ASIA0000000000000001 127.0.0.1:4001 aa x3",
            "dropped 1",
            "ASIA0000000000000001 127.0.0.1:4000 bb x1",
            "ASIA0000000000000002 127.0.0.1:4000 aa x1",
            "ASIA0000000000000001 127.0.0.1:4000 - x1",
        ]
    );
    // A line of one hand-out carries no count.
    let text = std::fs::read_to_string(file_path(dir.path(), 0)).unwrap();
    assert_eq!(text.matches("\"count\":").count(), 3, "{text}");
}
