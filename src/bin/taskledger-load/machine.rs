//! The machine a report was measured on: build profile, cores, kernel, disk and load average
//! (read from /proc and /sys; "unknown" or null where they cannot be read).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub(crate) fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

pub(crate) fn machine() -> Value {
    let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_string()).ok();
    let rotational = read("/sys/block/vda/queue/rotational").map(|r| match r.as_str() {
        "0" => "vda non-rotational (SSD or virtual)".to_string(),
        "1" => "vda rotational".to_string(),
        other => format!("vda rotational={other}"),
    });
    json!({"nproc": std::thread::available_parallelism().map(|n| n.get()).ok(), "kernel": read("/proc/sys/kernel/osrelease"),
        "disk": rotational, "loadavg": loadavg(), "build": build(),
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).ok()})
}
