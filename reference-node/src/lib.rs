//! The reference dsip-chord peer: a sans-I/O Chord core, a tokio driver and a deterministic simulator.
