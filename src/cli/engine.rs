//! Where a command finds the store's log: `--engine sled` (the data directory) or `--engine
//! etcd` (a binary built with the `etcd` feature; the data directory then holds this server's
//! derived data), shared by `serve` and the offline commands.
//! Does not open anything but the store.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::store::{Log, Store, StoreOptions};

#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Where the log lives: `sled` in the data directory, or `etcd` (a binary built with the
    /// `etcd` feature), with the data directory holding only this server's checkpoints and
    /// history index.
    #[arg(long, env = "TASKLEDGER_ENGINE", value_enum, default_value_t = EngineKind::Sled)]
    pub engine: EngineKind,
    /// etcd members, comma-separated (`--engine etcd`).
    #[arg(
        long,
        env = "TASKLEDGER_ETCD_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub etcd_endpoints: Vec<String>,
    /// The key prefix of this store on etcd; stores with different prefixes share a cluster.
    #[arg(long, env = "TASKLEDGER_ETCD_PREFIX", default_value = "/taskledger")]
    pub etcd_prefix: String,
    /// Longest one request to etcd may take, in milliseconds (an append that gets no answer is
    /// sent again a few times; after that the server refuses writes until it is restarted).
    #[arg(long, env = "TASKLEDGER_ETCD_TIMEOUT_MS", default_value_t = 5_000)]
    pub etcd_timeout_ms: u64,
    /// Archive files (`taskledger archive`) holding the seqs the log's engine no longer holds,
    /// comma-separated or repeated; needed to fold the log from its start or read those seqs.
    #[arg(
        long = "archive",
        env = "TASKLEDGER_ARCHIVES",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub archives: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    Sled,
    Etcd,
}

impl EngineArgs {
    /// Opens (or creates) the store whose data directory is `dir`, on the named engine.
    pub fn open(&self, dir: &Path, options: StoreOptions) -> anyhow::Result<Store> {
        let options = StoreOptions {
            archives: self.archives.clone(),
            ..options
        };
        match self.engine {
            EngineKind::Sled => Store::open_with(dir, options).with_context(|| {
                format!(
                    "cannot open the store at {dir} (is another taskledger using it? sled locks the directory; if \
                     its log is damaged, `taskledger repair --data-dir {dir}` shows what a repair removes)",
                    dir = dir.display()
                )
            }),
            EngineKind::Etcd => self.open_etcd(dir, options),
        }
    }

    /// Opens only the log (no views, no writer), for commands that read or archive it.
    pub fn open_log(&self, dir: &Path) -> anyhow::Result<std::sync::Arc<dyn Log>> {
        match self.engine {
            EngineKind::Sled => Store::open_log(dir, &self.archives)
                .with_context(|| format!("cannot open the log of the store at {}", dir.display())),
            EngineKind::Etcd => self.open_etcd_log(dir),
        }
    }

    #[cfg(feature = "etcd")]
    fn etcd_options(&self) -> crate::store::etcd::EtcdOptions {
        crate::store::etcd::EtcdOptions {
            endpoints: self.etcd_endpoints.clone(),
            prefix: self.etcd_prefix.clone(),
            timeout: std::time::Duration::from_millis(self.etcd_timeout_ms.max(1)),
        }
    }

    #[cfg(feature = "etcd")]
    fn etcd_context(&self, dir: &Path) -> String {
        format!(
            "cannot open the store on etcd at {} under {} (local data in {})",
            self.etcd_endpoints.join(","),
            self.etcd_prefix,
            dir.display()
        )
    }

    #[cfg(feature = "etcd")]
    fn open_etcd(&self, dir: &Path, options: StoreOptions) -> anyhow::Result<Store> {
        Store::open_etcd(dir, &self.etcd_options(), options).with_context(|| self.etcd_context(dir))
    }

    #[cfg(feature = "etcd")]
    fn open_etcd_log(&self, dir: &Path) -> anyhow::Result<std::sync::Arc<dyn Log>> {
        Store::open_etcd_log(dir, &self.etcd_options(), &self.archives).with_context(|| self.etcd_context(dir))
    }

    #[cfg(not(feature = "etcd"))]
    fn open_etcd(&self, _: &Path, _: StoreOptions) -> anyhow::Result<Store> {
        Err(without_etcd())
    }

    #[cfg(not(feature = "etcd"))]
    fn open_etcd_log(&self, _: &Path) -> anyhow::Result<std::sync::Arc<dyn Log>> {
        Err(without_etcd())
    }
}

#[cfg(not(feature = "etcd"))]
fn without_etcd() -> anyhow::Error {
    anyhow::anyhow!("this binary was built without the etcd engine; build it with `cargo build --features etcd`")
}
