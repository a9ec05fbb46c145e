#![no_main]
// One data directory per fuzzing process, laid out anew for every input.
libfuzzer_sys::fuzz_target!(|image: &[u8]| {
    let dir = std::env::temp_dir().join(format!("allocation-fuzz-recovery-{}", std::process::id()));
    allocation::fuzzing::recovery(image, &dir);
});
