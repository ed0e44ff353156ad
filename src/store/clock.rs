//! Where the store's time comes from: the system clock in production, a clock tests set by hand.
//! Does not make time monotonic; the writer never lets log times go backwards.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use prost_types::Timestamp;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        // Milliseconds are what ECS shows; finer precision would only bloat the log.
        Timestamp {
            seconds: since_epoch.as_secs() as i64,
            nanos: (since_epoch.subsec_millis() * 1_000_000) as i32,
        }
    }
}

/// A clock that only moves when told to (milliseconds since the epoch).
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    millis: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn new(millis: i64) -> Self {
        ManualClock {
            millis: Arc::new(AtomicI64::new(millis)),
        }
    }

    pub fn advance(&self, millis: i64) {
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }

    pub fn set(&self, millis: i64) {
        self.millis.store(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        let millis = self.millis.load(Ordering::SeqCst);
        Timestamp {
            seconds: millis.div_euclid(1000),
            nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
        }
    }
}
