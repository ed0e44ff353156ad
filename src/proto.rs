//! The code generated from `proto/` by `build.rs` (into `OUT_DIR`): ECS shapes and the gRPC
//! services (`v1`), the log format (`log`), the view records (`state`), and the encoded
//! descriptor set. Does not hold hand-written conversions; those live beside their users.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// Package paths as protobuf names them; generated code refers to siblings through `super::`.
pub mod taskledger {
    pub mod v1 {
        tonic::include_proto!("taskledger.v1");
    }
    pub mod log {
        pub mod v1 {
            tonic::include_proto!("taskledger.log.v1");
        }
    }
    pub mod state {
        pub mod v1 {
            tonic::include_proto!("taskledger.state.v1");
        }
    }
    pub mod export {
        pub mod v1 {
            tonic::include_proto!("taskledger.export.v1");
        }
    }
}

pub use taskledger::export::v1 as export;

pub use taskledger::log::v1 as log;
pub use taskledger::state::v1 as state;
pub use taskledger::v1;

/// The encoded `FileDescriptorSet` of every taskledger proto (with google's well-known types).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/taskledger_descriptor.bin"));
