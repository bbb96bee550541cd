// The body of the `read_capture` fuzz target, shared with the stable
// replay test (tests/fuzz_replay.rs) so that it is compiled and run by
// `cargo test` too.

/// Reads `data` as a capture to the end. Whatever the bytes, this must
/// return (no panic, no hang) with the reassembly state within its limits.
pub fn run(data: &[u8]) {
    // Small buffers keep each run cheap; the limits are what is checked.
    let limits = p2psip_capture::Limits {
        read_buffer: 4096,
        max_block: 1 << 20,
        ..p2psip_capture::Limits::default()
    };
    let Ok(mut reader) = p2psip_capture::CaptureReader::with_limits(data, limits) else {
        return;
    };
    let mut events = 0usize;
    while let Ok(true) = reader.step(&mut |_| events += 1) {
        assert!(reader.decoder().tcp_buffered_bytes() <= limits.max_tcp_bytes);
        assert!(reader.decoder().fragment_buffered_bytes() <= limits.max_frag_bytes);
        assert!(reader.buffer_capacity() <= limits.max_block + 1);
    }
    let _ = events;
}
