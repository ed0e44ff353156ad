//! Writes every target's valid seed inputs into `corpus/<target>/` (the directory cargo-fuzz
//! reads), so libFuzzer starts from real records, export files and requests.
//! Does not fuzz.

fn main() {
    let world = taskledger_fuzz::World::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for target in taskledger_fuzz::TARGETS {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        let seeds = taskledger_fuzz::seeds(&world, target);
        for (i, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed).expect("write a seed");
        }
        println!("{target}: {} seeds in {}", seeds.len(), dir.display());
    }
}
