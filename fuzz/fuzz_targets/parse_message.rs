//! Any bytes, in every mode and profile: no panic, and whatever parses
//! prints to a canonical form that reads back as the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    p2psip_wire::fuzzing::check_parse(data);
});
