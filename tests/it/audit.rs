//! Audit and replay: subscriptions without gaps or duplicates, time travel against a fold of the
//! log, export/import round trips and refusal of damaged files, the EventBridge rendering.

use proptest::prelude::*;
use taskledger::audit::export::{self, Format};
use taskledger::audit::{eventbridge, history, AsOf};
use taskledger::domain::{evolve, query, MemoryState};
use taskledger::proto::v1::*;
use taskledger::store::subscribe::{Delivery, LogFilter};
use taskledger::store::{Caller, Store, StoreOptions};

use crate::support::*;

/// A workload of `tasks` Fargate tasks walked through part of their lifecycle.
fn lifecycle_workload(f: &Fixture, tasks: usize) -> Vec<String> {
    f.cluster("prod");
    f.fargate_definition("web");
    let mut arns = Vec::new();
    for i in 0..tasks {
        let arn = f.run_fargate("prod", "web", 1).tasks.remove(0).task_arn.unwrap();
        for status in ["PENDING", "RUNNING", "STOPPED"].iter().take(i % 4) {
            f.clock.advance(1000);
            f.report("prod", &arn, status).unwrap();
        }
        arns.push(arn);
    }
    arns
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn subscribers_see_every_seq_after_their_start_exactly_once_in_order(
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..5),
        writers in 1usize..4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), StoreOptions { sync: false, ..StoreOptions::default() }).unwrap();
        let caller = Caller::library(scope());
        store.create_cluster(&caller, CreateClusterRequest { cluster_name: Some("prod".into()), ..Default::default() }).unwrap();
        let per_writer = 40;
        // Starts anywhere from the first seq to the last one the writers will produce.
        let final_head = 1 + (writers * per_writer) as u64 + 1;
        let starts: Vec<u64> = picks.iter().map(|p| 1 + p.index(final_head as usize) as u64).collect();
        std::thread::scope(|threads| {
            let subscribers: Vec<_> = starts.iter().map(|&start| {
                let store = store.clone();
                threads.spawn(move || {
                    let mut subscription = store.subscribe(Some(start), LogFilter::default());
                    let mut seen = Vec::new();
                    // Ends once the writers' last event (the marker cluster) has been delivered.
                    loop {
                        match subscription.next_blocking().unwrap() {
                            Delivery::Record(record) => {
                                let done = matches!(
                                    record.event.as_ref().and_then(|e| e.kind.as_ref()),
                                    Some(taskledger::proto::log::event::Kind::ClusterCreated(c))
                                        if c.cluster.as_ref().and_then(|c| c.cluster_name.as_deref()) == Some("done")
                                );
                                seen.push(record.seq);
                                if done { return seen; }
                            }
                            Delivery::Checkpoint { .. } => {}
                        }
                    }
                })
            }).collect();
            let writer_handles: Vec<_> = (0..writers).map(|w| {
                let (store, caller) = (store.clone(), caller.clone());
                threads.spawn(move || {
                    for i in 0..per_writer {
                        let tag = TagResourceRequest {
                            resource_arn: Some(scope().cluster_arn("prod")),
                            tags: vec![Tag { key: Some(format!("w{w}")), value: Some(format!("{i}")) }],
                        };
                        store.tag_resource(&caller, tag).unwrap();
                    }
                })
            }).collect();
            for handle in writer_handles { handle.join().unwrap(); }
            store.create_cluster(&caller, CreateClusterRequest { cluster_name: Some("done".into()), ..Default::default() }).unwrap();
            let head = store.head_seq();
            prop_assert_eq!(head, final_head);
            for (start, handle) in starts.iter().zip(subscribers) {
                let seen = handle.join().unwrap();
                let expected: Vec<u64> = (*start..=head).collect();
                prop_assert_eq!(seen, expected, "subscriber from {}", start);
            }
            Ok(())
        })?;
    }

    #[test]
    fn time_travel_equals_a_fold_of_the_log_up_to_that_seq(picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..8)) {
        let f = fixture();
        let arns = lifecycle_workload(&f, 6);
        let log = f.store.read_log(1, usize::MAX).unwrap();
        for pick in picks {
            let seq = log[pick.index(log.len())].seq;
            let mut state = MemoryState::default();
            for record in log.iter().take_while(|r| r.seq <= seq) {
                evolve(&mut state, record.seq, record.time.as_ref().unwrap(), record.event.as_ref().unwrap()).unwrap();
            }
            let request = DescribeTasksRequest { cluster: Some("prod".into()), tasks: arns.clone(), include: vec![TaskField::Tags as i32] };
            let folded = query::describe_tasks(&state, &scope(), &request);
            let travelled = history::describe_tasks_as_of(&f.store, &scope(), &request, AsOf::Seq(seq)).unwrap();
            match folded {
                Ok(folded) => prop_assert_eq!(travelled, folded),
                // Before the cluster existed the fold has no cluster; time travel still answers.
                Err(_) => prop_assert!(travelled.tasks.is_empty()),
            }
        }
    }
}

#[test]
fn history_lists_each_event_with_the_state_after_it() {
    let f = fixture();
    let arns = lifecycle_workload(&f, 4);
    let entries = history::task_history(&f.store, &scope(), &arns[3], None, 100).unwrap();
    let statuses: Vec<_> = entries
        .iter()
        .map(|e| (e.task.version.unwrap(), e.task.last_status.clone().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (1, "PROVISIONING".into()),
            (2, "PENDING".into()),
            (3, "RUNNING".into()),
            (4, "STOPPED".into())
        ]
    );
    let cause = entries[0].record.cause.as_ref().unwrap();
    assert_eq!(
        (cause.operation.as_str(), cause.caller.as_str()),
        ("RunTask", "library")
    );
    assert!(!cause.request_id.is_empty() && cause.group_commit > 0);
    let page = history::task_history(&f.store, &scope(), &arns[3], Some(entries[1].record.seq), 1).unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].task.version, Some(3));
}

#[test]
fn time_travel_by_time_shows_the_task_as_it_was() {
    let f = fixture();
    f.cluster("prod");
    f.fargate_definition("web");
    let arn = f.run_fargate("prod", "web", 1).tasks.remove(0).task_arn.unwrap();
    f.clock.advance(10_000);
    f.report("prod", &arn, "RUNNING").unwrap();
    let request = DescribeTasksRequest {
        cluster: Some("prod".into()),
        tasks: vec![arn.clone()],
        include: vec![],
    };
    let before = prost_types::Timestamp {
        seconds: 1_700_000_005,
        nanos: 0,
    };
    let then = history::describe_tasks_as_of(&f.store, &scope(), &request, AsOf::Time(before)).unwrap();
    assert_eq!(then.tasks[0].last_status.as_deref(), Some("PROVISIONING"));
    let ancient = prost_types::Timestamp {
        seconds: 1_600_000_000,
        nanos: 0,
    };
    let earlier = history::describe_tasks_as_of(&f.store, &scope(), &request, AsOf::Time(ancient)).unwrap();
    assert_eq!(earlier.failures[0].reason.as_deref(), Some("MISSING"));
}

fn exported(store: &Store) -> Vec<u8> {
    let mut file = Vec::new();
    export::export(store, &mut file, Format::Binary, 1, None, &|_, _| {}).unwrap();
    file
}

#[test]
fn export_then_import_gives_the_same_views_and_a_clean_verify() {
    let f = fixture();
    lifecycle_workload(&f, 8);
    let file = exported(&f.store);
    let summary = export::check(file.as_slice(), &|_, _| {}).unwrap();
    assert_eq!(
        (summary.first_seq, summary.last_seq, summary.count),
        (1, f.store.head_seq(), f.store.head_seq())
    );
    let target = tempfile::tempdir().unwrap();
    export::import(target.path(), file.as_slice(), &|_, _| {}).unwrap();
    let imported = Store::open(target.path()).unwrap();
    assert_eq!(imported.head_seq(), f.store.head_seq());
    assert_eq!(
        imported.read_log(1, usize::MAX).unwrap(),
        f.store.read_log(1, usize::MAX).unwrap()
    );
    assert_eq!(imported.view_entries().unwrap(), f.store.view_entries().unwrap());
    assert!(imported.verify(|_, _| {}).unwrap().is_clean());
}

#[test]
fn a_damaged_or_incomplete_export_is_refused_with_its_position() {
    let f = fixture();
    lifecycle_workload(&f, 4);
    let file = exported(&f.store);
    // A flipped byte in the middle of the file.
    let mut flipped = file.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x20;
    let err = export::check(flipped.as_slice(), &|_, _| {}).unwrap_err().to_string();
    assert!(err.contains("entry"), "{err}");
    // A record cut out: re-export without seq 3 by splicing entries.
    let entries = split_entries(&file);
    let without_third: Vec<u8> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .flat_map(|(_, e)| e.clone())
        .collect();
    let err = export::check(without_third.as_slice(), &|_, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("seq 4") && err.contains("gap"), "{err}");
    // Truncated: no trailer.
    let truncated: Vec<u8> = entries[..entries.len() - 1].concat();
    let err = export::check(truncated.as_slice(), &|_, _| {}).unwrap_err().to_string();
    assert!(err.contains("truncated"), "{err}");
    // A non-empty target is refused.
    let err = export::import(f.dir.path().join("elsewhere").as_path(), file.as_slice(), &|_, _| {});
    assert!(err.is_ok());
    let err = export::import(f.dir.path().join("elsewhere").as_path(), file.as_slice(), &|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
}

/// The raw entries (length prefix included) of an export file.
fn split_entries(file: &[u8]) -> Vec<Vec<u8>> {
    let mut entries = Vec::new();
    let mut rest = file;
    while !rest.is_empty() {
        let length = prost::decode_length_delimiter(rest).unwrap();
        let prefix = prost::length_delimiter_len(length);
        entries.push(rest[..prefix + length].to_vec());
        rest = &rest[prefix + length..];
    }
    entries
}

#[test]
fn eventbridge_rendering_follows_the_ecs_task_state_change_event() {
    let f = fixture();
    let arns = lifecycle_workload(&f, 3);
    let records = f
        .store
        .task_history(arns[2].rsplit('/').next().unwrap(), None, 10)
        .unwrap();
    let rendered = eventbridge::render(&f.store, &records).unwrap();
    let last = rendered.last().unwrap().as_ref().unwrap();
    assert_eq!(last["version"], "0");
    assert_eq!(last["detail-type"], "ECS Task State Change");
    assert_eq!(last["source"], "aws.ecs");
    assert_eq!(last["account"], "123456789012");
    assert_eq!(last["region"], "us-east-1");
    assert_eq!(last["resources"][0], arns[2].as_str());
    let time = last["time"].as_str().unwrap();
    assert!(time.len() == 20 && time.ends_with('Z'), "seconds precision: {time}");
    let detail = &last["detail"];
    assert_eq!(detail["version"], 3);
    assert_eq!(detail["lastStatus"], "RUNNING");
    assert_eq!(detail["taskArn"], arns[2].as_str());
    let created = detail["createdAt"].as_str().unwrap();
    assert!(
        created.len() == 24 && created.ends_with('Z') && created.contains('.'),
        "milliseconds: {created}"
    );
    assert!(detail["updatedAt"].is_string());
    assert!(detail.get("tags").is_none());
    // The same change renders with the same id (consumers drop duplicates by it).
    assert_eq!(
        eventbridge::render(&f.store, &records)
            .unwrap()
            .last()
            .unwrap()
            .as_ref()
            .unwrap()["id"],
        last["id"]
    );
}
