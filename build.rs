//! Compiles the protos in `proto/` into `OUT_DIR` with protox, so no system `protoc` is needed:
//! the gRPC contract `taskledger.v1` (ECS shapes and services), the log format
//! `taskledger.log.v1` and the view records `taskledger.state.v1`. Also writes the encoded
//! descriptor set for server reflection and the ECS JSON transcoder. Writes nothing into `src/`.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/taskledger/v1/options.proto",
        "proto/taskledger/v1/ecs.proto",
        "proto/taskledger/log/v1/log.proto",
        "proto/taskledger/state/v1/state.proto",
        "proto/taskledger/export/v1/export.proto",
        "proto/taskledger/v1/ledger.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_files(files)?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Encoded by protox itself: going through prost_types would drop the custom options
    // (`ecs_value`) that the ECS JSON transcoder reads.
    std::fs::write(
        out_dir.join("taskledger_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let descriptors = compiler.file_descriptor_set();
    let mut config = prost_build::Config::new();
    // Type names let the ECS JSON transcoder find a message's descriptor from its Rust type.
    config.enable_type_names();
    // The gRPC services only with the `server` feature: the store alone needs the messages.
    let server = env::var_os("CARGO_FEATURE_SERVER").is_some();
    tonic_prost_build::configure()
        .build_server(server)
        .build_client(server)
        .btree_map(".")
        .compile_fds_with_config(descriptors, config)?;
    Ok(())
}
