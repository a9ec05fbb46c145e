//! Generates the gRPC code from `proto/` with `protox` (a pure-Rust protobuf
//! compiler), so a fresh machine needs no system `protoc`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/allocation/v1/allocation.proto"];
    println!("cargo:rerun-if-changed=proto");

    let descriptors = protox::compile(protos, ["proto"])?;

    // Server reflection serves this encoded descriptor set.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("allocation_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&descriptors),
    )?;

    tonic_prost_build::configure()
        // Undecodable requests are INVALID_ARGUMENT (src/grpc/codec.rs).
        .codec_path("crate::grpc::codec::ProtoCodec")
        // google.rpc.Status already exists as a Rust type in tonic-types.
        .extern_path(".google.rpc", "::tonic_types::pb")
        .compile_fds(descriptors)?;
    Ok(())
}
