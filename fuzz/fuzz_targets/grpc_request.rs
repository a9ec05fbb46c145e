#![no_main]
// The first byte picks the RPC, the rest is the request message's bytes.
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Some((pick, body)) = bytes.split_first() else {
        return;
    };
    let methods = allocation::fuzzing::unary_methods();
    let (method, _) = &methods[usize::from(*pick) % methods.len()];
    allocation::fuzzing::grpc_request(method, body);
});
