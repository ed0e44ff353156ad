//! Which log engine the tests run on: sled by default, etcd with `TASKLEDGER_TEST_ENGINE=etcd`
//! (a build with `--features etcd`). On etcd every `Backend` gets its own key prefix on one real
//! etcd that the test process starts on free loopback ports the first time it is needed, and
//! that stops by itself when the test process ends (it is started under a shell that kills it
//! once the test process's end of a pipe closes).
//! Tests that exercise sled itself (faults, disk full, golden stores) do not go through here.

#![allow(dead_code)]

use std::path::Path;

use taskledger::store::{Store, StoreOptions, StoreResult};

/// The engine of one test's store, and how to open it or serve it.
#[derive(Debug, Clone)]
pub enum Backend {
    Sled,
    /// The endpoint of the test etcd and this test's own prefix.
    Etcd {
        endpoint: String,
        prefix: String,
    },
}

impl Backend {
    /// The engine `TASKLEDGER_TEST_ENGINE` names (`sled` when unset).
    pub fn from_env() -> Backend {
        match std::env::var("TASKLEDGER_TEST_ENGINE").as_deref() {
            Err(_) | Ok("") | Ok("sled") => Backend::Sled,
            Ok("etcd") => Backend::etcd(),
            Ok(other) => panic!("TASKLEDGER_TEST_ENGINE={other:?}: expected sled or etcd"),
        }
    }

    /// A fresh prefix on the test etcd, whatever the environment says.
    pub fn etcd() -> Backend {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        Backend::Etcd {
            endpoint: test_etcd::endpoint(),
            prefix: format!(
                "/taskledger-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    pub fn is_etcd(&self) -> bool {
        matches!(self, Backend::Etcd { .. })
    }

    /// Opens (or creates) the store: on sled in `dir`, on etcd with `dir` for its derived data.
    pub fn open(&self, dir: &Path, options: StoreOptions) -> StoreResult<Store> {
        match self {
            Backend::Sled => Store::open_with(dir, options),
            Backend::Etcd { endpoint, prefix } => open_etcd(endpoint, prefix, dir, options),
        }
    }

    /// The `taskledger serve` flags that put its log on this engine.
    pub fn serve_args(&self) -> Vec<String> {
        match self {
            Backend::Sled => Vec::new(),
            Backend::Etcd { endpoint, prefix } => vec![
                "--engine".into(),
                "etcd".into(),
                "--etcd-endpoints".into(),
                endpoint.clone(),
                "--etcd-prefix".into(),
                prefix.clone(),
            ],
        }
    }
}

#[cfg(feature = "etcd")]
fn open_etcd(endpoint: &str, prefix: &str, dir: &Path, options: StoreOptions) -> StoreResult<Store> {
    let etcd = taskledger::store::etcd::EtcdOptions {
        endpoints: vec![endpoint.to_string()],
        prefix: prefix.to_string(),
        ..Default::default()
    };
    Store::open_etcd(dir, &etcd, options)
}

#[cfg(not(feature = "etcd"))]
fn open_etcd(_: &str, _: &str, _: &Path, _: StoreOptions) -> StoreResult<Store> {
    panic!("TASKLEDGER_TEST_ENGINE=etcd needs a build with the etcd engine: cargo test --features etcd")
}

/// Real etcd processes for the tests: one shared by the whole test process, or private ones a
/// test can stop and start again.
pub mod test_etcd {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::OnceLock;

    /// An etcd member (alone in its cluster, or one of several), stopped when dropped.
    pub struct EtcdProcess {
        pub endpoint: String,
        name: String,
        dir: PathBuf,
        ports: (u16, u16),
        /// `name=peer-url,…` of every member.
        cluster: String,
        /// The watchdog shell while etcd runs; its stdin is the pipe whose closing stops etcd.
        child: Option<Child>,
    }

    type Lines = std::io::Lines<BufReader<std::process::ChildStdout>>;

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port()
    }

    impl EtcdProcess {
        /// Starts a one-member etcd with its data in `dir`, on free loopback ports.
        pub fn start(dir: &Path) -> EtcdProcess {
            EtcdProcess::cluster(dir, 1).pop().expect("one member")
        }

        /// Starts a cluster of `members` on free loopback ports, each with its data under `dir`.
        pub fn cluster(dir: &Path, members: usize) -> Vec<EtcdProcess> {
            let ports: Vec<(u16, u16)> = (0..members).map(|_| (free_port(), free_port())).collect();
            let cluster = ports
                .iter()
                .enumerate()
                .map(|(n, (_, peer))| format!("m{n}=http://127.0.0.1:{peer}"))
                .collect::<Vec<_>>()
                .join(",");
            let mut members: Vec<EtcdProcess> = ports
                .into_iter()
                .enumerate()
                .map(|(n, ports)| EtcdProcess {
                    endpoint: format!("http://127.0.0.1:{}", ports.0),
                    name: format!("m{n}"),
                    dir: dir.join(format!("m{n}")),
                    ports,
                    cluster: cluster.clone(),
                    child: None,
                })
                .collect();
            // A member serves clients only once the cluster has a leader: start them all first.
            let logs: Vec<Lines> = members.iter_mut().map(EtcdProcess::spawn).collect();
            for (member, log) in members.iter().zip(logs) {
                member.wait_serving(log);
            }
            members
        }

        /// Kills etcd (SIGKILL) and waits until it is gone.
        pub fn stop(&mut self) {
            if let Some(mut child) = self.child.take() {
                drop(child.stdin.take());
                let _ = child.wait();
            }
        }

        /// Starts it again on its data and ports (its cluster must have a quorum with it).
        pub fn start_again(&mut self) {
            self.stop();
            let log = self.spawn();
            self.wait_serving(log);
        }

        fn spawn(&mut self) -> Lines {
            let binary = std::env::var("TASKLEDGER_TEST_ETCD").unwrap_or_else(|_| "etcd".into());
            let peer_url = format!("http://127.0.0.1:{}", self.ports.1);
            // `exec`-free on purpose: the shell stays to kill etcd when our end of stdin closes,
            // which happens however the test process ends.
            let script = r#"
                "$0" --name "$1" --data-dir "$2" --listen-client-urls "$3" --advertise-client-urls "$3" \
                     --listen-peer-urls "$4" --initial-advertise-peer-urls "$4" --initial-cluster "$5" \
                     --logger zap --log-outputs stderr --quota-backend-bytes 4294967296 2>&1 &
                read -r _
                kill -9 "$!" 2>/dev/null
                wait "$!" 2>/dev/null
            "#;
            let mut child = Command::new("sh")
                .args(["-c", script, &binary, &self.name])
                .arg(&self.dir)
                .args([&self.endpoint, &peer_url, &self.cluster])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start etcd ({binary}): {e}; install Debian's etcd-server"));
            let log = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
            self.child = Some(child);
            log
        }

        /// Waits for etcd's log (through the pipe) to say it serves, then drains the rest.
        fn wait_serving(&self, mut log: Lines) {
            let mut seen = Vec::new();
            loop {
                match log.next() {
                    Some(Ok(line)) if line.contains("serving client traffic") => break,
                    Some(Ok(line)) => seen.push(line),
                    _ => panic!(
                        "etcd member {} exited before serving on {}:\n{}",
                        self.name,
                        self.endpoint,
                        seen.join("\n")
                    ),
                }
            }
            std::thread::spawn(move || log.for_each(drop));
        }
    }

    /// The etcd every `Backend::etcd()` shares, with its data directory.
    static SHARED: OnceLock<(EtcdProcess, tempfile::TempDir)> = OnceLock::new();

    /// The client URL of the shared test etcd, started on first use.
    pub fn endpoint() -> String {
        let (etcd, _) = SHARED.get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temp dir for etcd");
            (EtcdProcess::start(&dir.path().join("data")), dir)
        });
        etcd.endpoint.clone()
    }
}
