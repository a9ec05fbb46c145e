pub mod proto {
    tonic::include_proto!("allocation.v1");
}
