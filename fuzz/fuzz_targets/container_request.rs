#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rolecall_fuzz_targets::container_request::run(data));
