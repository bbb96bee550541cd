//! A byte stream cut at arbitrary points: the framer and `parse_one`
//! never panic and always make progress or ask for more.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    p2psip_wire::fuzzing::check_stream(data);
});
