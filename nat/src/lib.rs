//! A userspace NAT emulator (RFC 4787 mapping and filtering) and an RFC 5780 behaviour-discovery probe.
