//! Fuzz target: arbitrary bytes as a capture file.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("read_capture_body.rs");

fuzz_target!(|data: &[u8]| run(data));
