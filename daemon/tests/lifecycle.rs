//! The daemon in-process, as a library: `rolecall_daemon::run` on a real Unix socket and a real
//! loopback port, with a scripted source and a clock the test moves. It serves credentials
//! over the socket API, refreshes them ahead of expiry by itself, and on shutdown every task
//! ends and the socket is gone.

// Tests drive real processes, clocks and environments directly; the one-home rule of
// clippy.toml is for product code.
#![allow(clippy::disallowed_methods)]

mod rig;

use rolecall_daemon::broker::fake::FakeSource;
use rolecall_daemon::broker::Clock;
use rolecall_daemon::opener::{Browser, OpenError};
use rolecall_daemon::sources::Source;
use rolecall_daemon::{config, notify, Deps, Listeners, RunConfig, Secrets};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Wall-clock time that moves only when the test says.
struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Records what the daemon would open instead of starting a browser.
#[derive(Default)]
struct SeenUrls(Mutex<Vec<String>>);

impl Browser for SeenUrls {
    fn open(
        &self,
        url: &str,
        _env: &rolecall_daemon::endpoints::EnvSnapshot,
    ) -> Result<(), OpenError> {
        self.0.lock().unwrap().push(url.to_string());
        Ok(())
    }
}

struct Quiet;

impl notify::Sender for Quiet {
    fn send(&self, _note: &notify::Note) {}
}

fn access_key(socket: &Path) -> String {
    let r = rig::request(
        socket,
        "GET",
        "/v1/credentials/dev?via=credential_process",
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["AccessKeyId"].as_str().unwrap().to_string()
}

#[test]
fn serves_refreshes_and_stops_cleanly_in_process() {
    let dir = rig::private_dir();
    let runtime_dir = dir.path().join("run");
    rolecall_daemon::serve::socket::prepare_runtime_dir(&runtime_dir).unwrap();
    let socket = runtime_dir.join("rolecalld.sock");
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, rig::GOOD_CONFIG).unwrap();

    let start = 1_900_000_000;
    let clock = Arc::new(ManualClock(AtomicI64::new(start)));
    let source = FakeSource::new("corp", clock.clone());
    let factory_source = Arc::clone(&source);
    let deps = Deps {
        clock: clock.clone(),
        env: Arc::new(Default::default()),
        secrets: Secrets::FromConfig,
        browser: Arc::new(SeenUrls::default()),
        sources: Some(Arc::new(move |_name, _cfg| {
            Ok(Arc::clone(&factory_source) as Arc<dyn Source>)
        })),
        notifier: Some(Arc::new(Quiet)),
    };
    let listeners = Listeners {
        socket: rolecall_daemon::serve::socket::bind(&socket).unwrap(),
        socket_path: socket.clone(),
        remove_socket: true,
        container: Some(std::net::TcpListener::bind("127.0.0.1:0").unwrap()),
        imds: None,
    };
    let run_config = RunConfig {
        initial: config::load(&config_path),
        path: config_path,
        state_dir: dir.path().join("state"),
        snapshot: Some(dir.path().join("snapshot.json")),
        reload_on_hangup: false,
        refresh: rolecall_daemon::refresh::Settings {
            tick: Duration::from_millis(50),
            ..Default::default()
        },
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = runtime.spawn(rolecall_daemon::run(listeners, run_config, deps, async {
        let _ = stopped.await;
    }));

    // Credentials over the socket API, fetched once and then served from the cache.
    rig::wait_until("the socket to answer", Duration::from_secs(10), || {
        rig::request(&socket, "GET", "/v1/version", None).status == 200
    });
    assert_eq!(access_key(&socket), "ASIAFAKE0001");
    assert_eq!(access_key(&socket), "ASIAFAKE0001");
    assert_eq!(source.fetches(), 1);

    // The container endpoint listens on the port the test bound.
    let status = rig::request(&socket, "GET", "/v1/status", None).json();
    let listen = status["daemon"]["container_listen"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"),
        "{listen}"
    );

    // 45 minutes later the one-hour credentials are due: the scheduler fetches new ones
    // before anyone asks, and the socket serves those without another fetch.
    clock.0.fetch_add(45 * 60, Ordering::SeqCst);
    rig::wait_until("a refresh ahead of expiry", Duration::from_secs(10), || {
        source.fetches() == 2
    });
    assert_eq!(access_key(&socket), "ASIAFAKE0002");
    assert_eq!(source.fetches(), 2);

    // Shutdown: run() returns, every task it started has ended, the socket is gone.
    stop.send(()).unwrap();
    let result =
        runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), daemon).await });
    let outcome = result.expect("run() returns once asked to stop").unwrap();
    assert!(outcome.is_ok(), "{outcome:?}");
    // A task is counted until its worker releases it, a moment after its JoinHandle fired:
    // allow that moment, not more (one that ignores the stop never ends).
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while runtime.metrics().num_alive_tasks() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let alive = runtime.metrics().num_alive_tasks();
    assert_eq!(alive, 0, "tasks still alive after run() returned");
    assert!(!socket.exists(), "the socket file is left behind");
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_err());
}
