//! Language-neutral test vectors for P2P-SIP IDs, ring math and message parsing.
