//! The code generated from `proto/` by `build.rs` (into `OUT_DIR`): ECS shapes and the gRPC
//! services (`v1`), the log format (`log`), the view records (`state`), and the encoded
//! descriptor set. Does not hold hand-written conversions; those live beside their users.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// Package paths as protobuf names them; generated code refers to siblings through `super::`.
pub mod taskledger {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/taskledger.v1.rs"));
    }
    pub mod log {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/taskledger.log.v1.rs"));
        }
    }
    pub mod state {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/taskledger.state.v1.rs"));
        }
    }
    pub mod export {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/taskledger.export.v1.rs"));
        }
    }
}

pub use taskledger::export::v1 as export;

pub use taskledger::log::v1 as log;
pub use taskledger::state::v1 as state;
pub use taskledger::v1;

/// The encoded `FileDescriptorSet` of every taskledger proto (with google's well-known types).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/taskledger_descriptor.bin"));
