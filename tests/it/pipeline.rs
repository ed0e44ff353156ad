//! The commit pipeline: while one group's append waits on the disk, the writer decides the next
//! group on top of it; that group is answered, published and visible only once the group before
//! it is durable, and when the append before it fails, it fails too and is never written.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;
use taskledger::domain::EcsException;
use taskledger::proto::v1::*;
use taskledger::store::engine::{Engine, EngineError, EngineResult, Entries, SledEngine, SledOptions, WriteBatch};
use taskledger::store::{Caller, ManualClock, Store, StoreResult};

/// An engine whose fsync can be held at a gate (and made to fail when let through).
struct GatedSync {
    inner: SledEngine,
    gate: Mutex<Gate>,
    moved: Condvar,
}

#[derive(Default)]
struct Gate {
    closed: bool,
    fail: bool,
}

impl GatedSync {
    fn set(&self, change: impl FnOnce(&mut Gate)) {
        change(&mut self.gate.lock().unwrap());
        self.moved.notify_all();
    }
}

impl Engine for GatedSync {
    fn get(&self, key: &[u8]) -> EngineResult<Option<Vec<u8>>> {
        self.inner.get(key)
    }
    fn range(&self, start: &[u8], end: &[u8]) -> Entries<'_> {
        self.inner.range(start, end)
    }
    fn range_rev(&self, start: &[u8], end: &[u8]) -> Entries<'_> {
        self.inner.range_rev(start, end)
    }
    fn apply(&self, batch: WriteBatch) -> EngineResult<()> {
        self.inner.apply(batch)
    }
    fn sync(&self) -> EngineResult<()> {
        let gate = self
            .moved
            .wait_while(self.gate.lock().unwrap(), |gate| gate.closed)
            .unwrap();
        if gate.fail {
            return Err(EngineError("injected fdatasync failure".into()));
        }
        drop(gate);
        self.inner.sync()
    }
    fn size_on_disk(&self) -> EngineResult<u64> {
        self.inner.size_on_disk()
    }
}

struct Pipeline {
    engine: Arc<GatedSync>,
    store: Store,
    caller: Caller,
    clock: ManualClock,
    dir: tempfile::TempDir,
}

fn pipeline() -> Pipeline {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let engine = Arc::new(GatedSync {
        inner: SledEngine::open(dir.path(), &SledOptions::default()).unwrap(),
        gate: Mutex::default(),
        moved: Condvar::new(),
    });
    let store = Store::open_engine(engine.clone(), dir.path().into(), options(&clock)).unwrap();
    Pipeline {
        engine,
        store,
        caller: Caller::library(scope()),
        clock,
        dir,
    }
}

impl Pipeline {
    fn create(&self, name: &str) -> mpsc::Receiver<StoreResult<CreateClusterResponse>> {
        let (store, caller, request) = (
            self.store.clone(),
            self.caller.clone(),
            CreateClusterRequest {
                cluster_name: Some(name.into()),
                ..Default::default()
            },
        );
        let (answer, answered) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = answer.send(store.create_cluster(&caller, request));
        });
        answered
    }

    fn delete(&self, name: &str) -> mpsc::Receiver<StoreResult<DeleteClusterResponse>> {
        let (store, caller, request) = (
            self.store.clone(),
            self.caller.clone(),
            DeleteClusterRequest {
                cluster: Some(name.into()),
            },
        );
        let (answer, answered) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = answer.send(store.delete_cluster(&caller, request));
        });
        answered
    }

    /// Waits until the writer has decided `groups` groups in all (the writer publishes no event
    /// for a decision, so this yields until its counter moves).
    fn wait_for_groups(&self, groups: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.store.stats().groups.load(std::sync::atomic::Ordering::SeqCst) < groups {
            assert!(Instant::now() < deadline, "the writer never decided group {groups}");
            std::thread::yield_now();
        }
    }

    fn status_of(&self, name: &str) -> Option<String> {
        let described = self
            .store
            .describe_clusters(
                &scope(),
                &DescribeClustersRequest {
                    clusters: vec![name.into()],
                    ..Default::default()
                },
            )
            .unwrap();
        described.clusters.first().and_then(|c| c.status.clone())
    }
}

fn wait<T>(answered: &mpsc::Receiver<T>) -> T {
    answered
        .recv_timeout(Duration::from_secs(60))
        .expect("no answer within a minute")
}

/// A DeleteCluster decided while the CreateCluster it depends on is still being fsynced finds the
/// cluster (the writer decides on top of the group in flight), but nobody hears of either, and no
/// reader sees either, until the fsync is done.
#[test]
fn a_group_decided_during_the_previous_fsync_waits_for_it() {
    let p = pipeline();
    wait(&p.create("a")).unwrap();
    let head = p.store.head_seq();
    let groups = p.store.stats().groups.load(std::sync::atomic::Ordering::SeqCst);

    p.engine.set(|gate| gate.closed = true);
    let created = p.create("b");
    p.wait_for_groups(groups + 1);
    let deleted = p.delete("b");
    p.wait_for_groups(groups + 2);

    // Both groups are decided; neither is durable, so neither is answered or visible.
    assert!(matches!(created.try_recv(), Err(mpsc::TryRecvError::Empty)));
    assert!(matches!(deleted.try_recv(), Err(mpsc::TryRecvError::Empty)));
    assert_eq!(p.store.head_seq(), head);
    assert_eq!(p.status_of("b"), None, "a reader saw a group that is not durable");

    p.engine.set(|gate| gate.closed = false);
    wait(&created).unwrap();
    let deleted = wait(&deleted).expect("the delete was decided on top of the create");
    assert_eq!(deleted.cluster.unwrap().status.as_deref(), Some("INACTIVE"));
    assert_eq!(p.status_of("b").as_deref(), Some("INACTIVE"));
    assert!(p.store.head_seq() > head);
    assert!(p.store.verify(|_, _| {}).unwrap().is_clean());
}

/// When the fsync of a group fails, the group decided on top of it fails too: it is never
/// appended, and after reopening the store has at most the failed group (whose fsync may or may
/// not have reached the disk), never the one decided on it.
#[test]
fn a_failed_append_fails_the_group_decided_on_top_of_it() {
    let p = pipeline();
    wait(&p.create("a")).unwrap();
    let head = p.store.head_seq();
    let groups = p.store.stats().groups.load(std::sync::atomic::Ordering::SeqCst);

    p.engine.set(|gate| gate.closed = true);
    let created = p.create("b");
    p.wait_for_groups(groups + 1);
    let deleted = p.delete("b");
    p.wait_for_groups(groups + 2);
    p.engine.set(|gate| {
        gate.fail = true;
        gate.closed = false;
    });

    let created = wait(&created).unwrap_err();
    let deleted = wait(&deleted).unwrap_err();
    assert_eq!(created.exception(), EcsException::ServerException);
    assert_eq!(deleted.exception(), EcsException::ServerException);
    assert_eq!(p.store.head_seq(), head, "nothing after the failed fsync was published");
    assert_eq!(p.status_of("b"), None);
    assert!(p.store.write_refusal().is_some());

    let Pipeline {
        engine,
        store,
        clock,
        dir,
        ..
    } = p;
    drop(store);
    drop(engine);
    let store = Store::open_with(dir.path(), options(&clock)).unwrap();
    let described = store
        .describe_clusters(
            &scope(),
            &DescribeClustersRequest {
                clusters: vec!["b".into()],
                ..Default::default()
            },
        )
        .unwrap();
    let status = described.clusters.first().and_then(|c| c.status.as_deref());
    assert!(
        matches!(status, None | Some("ACTIVE")),
        "the delete decided on top of a failed group was written: {status:?}"
    );
    assert!(store.verify(|_, _| {}).unwrap().is_clean());
}
