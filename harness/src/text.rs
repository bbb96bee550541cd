//! Small text helpers.

/// The largest char boundary of `s` at or below `i` (`str::floor_char_boundary`
/// is newer than the workspace's minimum Rust).
pub fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
