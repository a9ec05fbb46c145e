//! The gRPC edge: generated code, validation and conversion, the service,
//! and the error-to-status mapping.

pub mod codec;
pub mod convert;
mod decision;
pub mod feed;
pub mod service;
pub mod shipping;
pub mod status;
mod stream;

/// Code generated from `proto/allocation/v1/allocation.proto` by `build.rs`.
#[allow(clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("allocation.v1");

    /// The encoded descriptors, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/allocation_descriptor.bin"));
}

pub use service::Service;
