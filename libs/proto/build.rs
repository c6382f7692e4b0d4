//! Compiles `proto/` with protox (pure Rust, so no system `protoc` is needed) and generates the
//! prost messages and tonic clients and servers, plus a descriptor set for gRPC reflection.

use std::env;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "ordo/common/v1/common.proto",
    "ordo/identity/v1/identity.proto",
    "ordo/project/v1/project.proto",
    "ordo/task/v1/task.proto",
    "ordo/task/v1/report.proto",
    "ordo/task/v1/job.proto",
    "ordo/audit/v1/audit.proto",
    "ordo/notification/v1/notification.proto",
    "ordo/notification/v1/webhook.proto",
    "ordo/events/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(proto).display());
    }
    let fds = protox::compile(PROTOS, [&root])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out.join("ordo_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)?;
    Ok(())
}
