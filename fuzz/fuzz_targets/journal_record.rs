#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| allocation::fuzzing::journal_payload(bytes));
