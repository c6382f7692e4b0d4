//! Ordo's protobuf contracts, generated from `proto/` at build time. Re-exports `tonic` and `prost`
//! so every crate speaks the same versions.

#![allow(unreachable_pub, missing_debug_implementations, clippy::all)]

pub use {prost, prost_types, tonic};

pub mod time;

/// The encoded `FileDescriptorSet` of every Ordo proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ordo_descriptor.bin"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("ordo.common.v1");
    }
}

// Each context re-exports the common messages its API uses, so `pb::ClientInfo` and `pb::PageRequest`
// name the one type.

pub mod identity {
    pub mod v1 {
        tonic::include_proto!("ordo.identity.v1");
        pub use crate::common::v1::{ClientInfo, PageRequest};
    }
}

pub mod project {
    pub mod v1 {
        tonic::include_proto!("ordo.project.v1");
        pub use crate::common::v1::{ClientInfo, PageRequest};
    }
}

pub mod task {
    pub mod v1 {
        tonic::include_proto!("ordo.task.v1");
        pub use crate::common::v1::{ClientInfo, PageRequest};
    }
}

pub mod audit {
    pub mod v1 {
        tonic::include_proto!("ordo.audit.v1");
        pub use crate::common::v1::PageRequest;
    }
}

pub mod notification {
    pub mod v1 {
        tonic::include_proto!("ordo.notification.v1");
        pub use crate::common::v1::PageRequest;
    }
}

pub mod events {
    pub mod v1 {
        tonic::include_proto!("ordo.events.v1");
    }
}
