//! A `taskledger serve` child process on 127.0.0.1:0: spawned over a data directory, its address
//! read from its stdout, stopped gracefully (SIGTERM, then SIGKILL), killed if dropped; and where
//! its binary is found (beside this executable unless `--server-binary` says otherwise).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context};
use tokio::sync::oneshot;

use crate::SPAWN_TIMEOUT;

/// A `taskledger serve` child process on 127.0.0.1:0; killed if dropped before `stop`.
pub(crate) struct ServerProcess {
    pub(crate) child: Child,
    pub(crate) endpoint: String,
}

impl ServerProcess {
    pub(crate) async fn spawn(binary: &Path, data_dir: &Path) -> anyhow::Result<ServerProcess> {
        let mut child = std::process::Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let stdout = child.stdout.take().context("the child's stdout is piped")?;
        let (found, listening) = oneshot::channel();
        // Reads every line, so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("taskledger listening on ") {
                    if let Some(found) = found.take() {
                        let _ = found.send(address.trim().to_string());
                    }
                }
            }
        });
        let mut server = ServerProcess {
            child,
            endpoint: String::new(),
        };
        let address = tokio::time::timeout(SPAWN_TIMEOUT, listening)
            .await
            .context("`taskledger serve` did not print its address in time")?
            .context("`taskledger serve` exited before listening (is the store locked or damaged?)")?;
        server.endpoint = format!("http://{address}");
        Ok(server)
    }

    /// SIGTERM (graceful shutdown), then SIGKILL if it has not exited within 10 s.
    pub(crate) async fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..1000 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await; // polling a child process for exit
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn server_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .context("locating this executable")?
            .with_file_name("taskledger"),
    };
    ensure!(
        path.is_file(),
        "{} not found: build it first (`cargo build --release --bin taskledger` for release, without --release for \
         debug) or pass --server-binary",
        path.display()
    );
    Ok(path)
}
