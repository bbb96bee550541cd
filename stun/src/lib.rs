//! STUN (RFC 5389/5780) message codec for Binding requests and responses. No I/O.
