/*!
The kernel backend: the IUT in its own network namespace behind nftables
masquerade. See `docs/nat.md` for what it would and would not emulate and
for its status.
*/

/// Why cases with `backend = "kernel"` are skipped here.
pub fn unavailable() -> Option<String> {
    Some(
        "the kernel NAT backend is not built (docs/nat.md); the userspace relay runs these cases"
            .into(),
    )
}
