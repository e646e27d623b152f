#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| rolecall_fuzz_targets::saml_response::run(data));
