//! The fallback fuzzer that runs on the stable toolchain with `cargo test`: for each fuzz target
//! of `fuzz/src/targets.rs` it starts from the target's valid seeds and runs a fixed number of
//! randomly mutated inputs (bit flips, interesting bytes and numbers, JSON and ARN fragments,
//! insertions, deletions, duplications, splices of two seeds, truncation), each under
//! `catch_unwind`; every input that panics is written to `target/fuzz-findings/` and fails the
//! test. It has no coverage feedback, which `cargo fuzz` (see RELIABILITY.md) adds; it does run
//! everywhere, in seconds. Inputs that once failed are replayed first, as regression tests.
//!
//! `TASKLEDGER_FUZZ_ITERS` sets the inputs per target (default `DEFAULT_ITERS`) and
//! `TASKLEDGER_FUZZ_SEED` the seed (default: from the clock, printed).
//! Does not define the targets' promises (see `fuzz/src/targets.rs`).

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::fuzz_targets::{run, seeds, Reached, World, TARGETS};

const DEFAULT_ITERS: usize = 20_000;

/// Inputs that once broke a target, replayed on every run: (target, input).
const REGRESSIONS: &[(&str, &[u8])] = &[];

/// Fragments worth splicing into inputs: JSON tokens, extreme numbers, odd text and ARNs.
const DICTIONARY: &[&[u8]] = &[
    b"null",
    b"true",
    b"[]",
    b"{}",
    b"\"\"",
    b"-1",
    b"0",
    b"1e999",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"2147483648",
    b"1.5",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"\"\xf0\x9f\x9a\x80\"",
    b"\"arn:aws:ecs:eu-west-3:999999999999:cluster/prod\"",
    b"\"arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef\"",
    b"\"STOPPED\"",
    b"\"RUNNING\"",
    b"\"FARGATE\"",
    b"\"EC2\"",
    b"\"TAGS\"",
    b"\"aws:x\"",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80",
    b"\x00\x00\x00\x00",
];

struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Hostile JSON values to put in place of a member of a valid body.
fn hostile_json(random: &mut Random) -> serde_json::Value {
    use serde_json::json;
    let choices = [
        json!(null),
        json!(-1),
        json!(0),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1.5e300),
        json!(-0.0),
        json!(""),
        json!("x".repeat(70_000)),
        json!("\u{0}\u{7}\n"),
        json!("prød-🚀"),
        json!("arn:aws:ecs:eu-west-3:999999999999:cluster/prod"),
        json!("arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"),
        json!("BOGUS_ENUM"),
        json!([]),
        json!(vec!["a"; 101]),
        json!({}),
        json!(true),
        json!([[[[[[[[1]]]]]]]]),
    ];
    choices[random.below(choices.len())].clone()
}

/// Replaces one member (at any depth) of a JSON object or array with a hostile value.
fn mutate_json(random: &mut Random, value: &mut serde_json::Value, depth: usize) {
    let descend = depth < 6 && random.below(3) != 0;
    match value {
        serde_json::Value::Object(members) if !members.is_empty() => {
            let key = members
                .keys()
                .nth(random.below(members.len()))
                .cloned()
                .expect("in range");
            let member = members.get_mut(&key).expect("present");
            if descend && (member.is_object() || member.is_array()) {
                mutate_json(random, member, depth + 1);
            } else {
                *member = hostile_json(random);
            }
        }
        serde_json::Value::Array(items) if !items.is_empty() => {
            let i = random.below(items.len());
            if descend && (items[i].is_object() || items[i].is_array()) {
                mutate_json(random, &mut items[i], depth + 1);
            } else if random.below(4) == 0 {
                let copy = items[i].clone();
                items.extend(std::iter::repeat_n(copy, 100));
            } else {
                items[i] = hostile_json(random);
            }
        }
        other => *other = hostile_json(random),
    }
}

/// For an `aws_json` input (operation byte + JSON body), a structural mutation of the body.
fn mutate_structure(random: &mut Random, seeds: &[Vec<u8>]) -> Option<Vec<u8>> {
    let seed = &seeds[random.below(seeds.len())];
    let (choice, body) = seed.split_first()?;
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    for _ in 0..1 + random.below(3) {
        mutate_json(random, &mut value, 0);
    }
    let mut input = vec![*choice];
    input.extend(value.to_string().into_bytes());
    Some(input)
}

/// One to four stacked mutations of a seed.
fn mutate(random: &mut Random, seeds: &[Vec<u8>], structured: bool) -> Vec<u8> {
    if structured && random.below(2) == 0 {
        if let Some(input) = mutate_structure(random, seeds) {
            return input;
        }
    }
    let mut input = seeds[random.below(seeds.len())].clone();
    for _ in 0..1 + random.below(4) {
        let at = random.below(input.len() + 1);
        match random.below(9) {
            0 if !input.is_empty() => {
                let i = random.below(input.len());
                input[i] ^= 1 << random.below(8);
            }
            1 if !input.is_empty() => {
                let i = random.below(input.len());
                input[i] = [0, 1, 0x7f, 0x80, 0xff, b'"', b'{', b'['][random.below(8)];
            }
            2 => input.insert(at, random.next() as u8),
            3 if !input.is_empty() => {
                let end = (at + 1 + random.below(16)).min(input.len());
                input.drain(at.min(end)..end);
            }
            4 if at < input.len() => {
                let end = (at + 1 + random.below(32)).min(input.len());
                let chunk = input[at..end].to_vec();
                let to = random.below(input.len() + 1);
                input.splice(to..to, chunk);
            }
            5 => {
                let word = DICTIONARY[random.below(DICTIONARY.len())];
                input.splice(at..at, word.iter().copied());
            }
            6 => {
                let other = &seeds[random.below(seeds.len())];
                let from = random.below(other.len() + 1);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            7 => input.truncate(at),
            _ if !input.is_empty() => {
                // Overwrite a little-endian number in place with an extreme one.
                let extreme = [0u64, 1, u64::MAX, i64::MAX as u64, 1 << 31, 1 << 63][random.below(6)];
                for (k, byte) in extreme
                    .to_le_bytes()
                    .iter()
                    .take(input.len() - at.min(input.len()))
                    .enumerate()
                {
                    input[at + k] = *byte;
                }
            }
            _ => input.push(random.next() as u8),
        }
    }
    input
}

/// Runs `target` over its regressions, its seeds and `iterations` mutated inputs; fails with
/// every input that panicked.
fn fuzz(target: &str) {
    let iterations: usize = std::env::var("TASKLEDGER_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ITERS);
    let seed: u64 = std::env::var("TASKLEDGER_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1;
    let world = World::new();
    let seeds = seeds(&world, target);
    assert!(!seeds.is_empty(), "{target} has seeds");
    let mut random = Random(seed);
    let mut findings = Vec::new();
    let inputs = REGRESSIONS
        .iter()
        .filter(|(t, _)| *t == target)
        .map(|(_, input)| input.to_vec())
        .chain(seeds.iter().cloned())
        .chain((0..iterations).map(|_| mutate(&mut random, &seeds, target == "aws_json")));
    let mut reached: std::collections::BTreeMap<Reached, usize> = Default::default();
    for input in inputs {
        match catch_unwind(AssertUnwindSafe(|| run(&world, target, &input))) {
            Ok(how_far) => *reached.entry(how_far).or_default() += 1,
            Err(_) => findings.push(input),
        }
    }
    let executed: usize = reached.values().sum::<usize>() + findings.len();
    println!(
        "fuzz {target}: {executed} inputs (seed {seed}): {reached:?}, {} crashes",
        findings.len()
    );
    if !findings.is_empty() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-findings");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, input) in findings.iter().enumerate() {
            std::fs::write(dir.join(format!("{target}-{seed}-{i}.bin")), input).unwrap();
        }
        panic!(
            "{} inputs broke {target} (seed {seed}); written to {}; the first: {:?}",
            findings.len(),
            dir.display(),
            String::from_utf8_lossy(&findings[0])
        );
    }
}

#[test]
fn fuzzed_log_records_are_decoded_or_refused_naming_their_seq() {
    fuzz("log_record");
}

#[test]
fn fuzzed_export_files_are_checked_and_imported_or_refused() {
    fuzz("export_file");
}

#[test]
fn fuzzed_imported_events_fold_or_are_refused() {
    fuzz("export_events");
}

#[test]
fn fuzzed_aws_json_bodies_are_refused_with_an_ecs_exception_and_change_nothing() {
    fuzz("aws_json");
}

#[test]
fn fuzzed_protobuf_requests_are_refused_with_an_ecs_exception_and_change_nothing() {
    fuzz("protobuf");
}

#[test]
fn every_fuzz_target_has_a_test() {
    assert_eq!(
        TARGETS,
        ["log_record", "export_file", "export_events", "aws_json", "protobuf"]
    );
}
