/*!
The buffer of a header list, kept from one parse to the next on a thread.

A parse allocates one thing, its header list, and a program that parses
messages one after another (a node, a capture checker) drops each before
the next arrives. The list dropped last is kept, emptied, and the next
parse on the same thread takes it instead of asking the allocator, which
for a list of a few kilobytes costs about as much as reading a header.
At most one buffer per thread is kept, and none beyond [`MAX_ENTRIES`].
*/

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use crate::message::Header;

/// The largest list kept (entries): a message with more headers than this
/// is rare, and its list is freed.
const MAX_ENTRIES: usize = 256;

/// An empty list's buffer: where it is and how many entries it holds.
struct Spare {
    ptr: NonNull<Header<'static>>,
    capacity: usize,
}

impl Drop for Spare {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `capacity` are those of a `Vec<Header>` that
        // was taken apart in `keep` (lifetimes do not change a layout),
        // with no element left in it.
        drop(unsafe { Vec::from_raw_parts(self.ptr.as_ptr(), 0, self.capacity) });
    }
}

thread_local! {
    static SPARE: Cell<Option<Spare>> = const { Cell::new(None) };
}

/// An empty list with room for `n` entries: the kept one when it is large
/// enough, else a new one.
#[inline]
pub(crate) fn list<'a>(n: usize) -> Vec<Header<'a>> {
    match SPARE.try_with(Cell::take) {
        Ok(Some(spare)) if spare.capacity >= n => {
            let spare = ManuallyDrop::new(spare);
            // SAFETY: as in `Spare::drop`; the buffer now belongs to the
            // returned list alone (`spare` is not dropped).
            unsafe { Vec::from_raw_parts(spare.ptr.as_ptr().cast(), 0, spare.capacity) }
        }
        // A kept buffer too small is freed here.
        _ => Vec::with_capacity(n),
    }
}

/// Keeps the buffer of `list`, which holds no entries any more.
#[inline]
pub(crate) fn keep(list: Vec<Header<'_>>) {
    debug_assert!(list.is_empty());
    if list.capacity() == 0 || list.capacity() > MAX_ENTRIES {
        return;
    }
    let mut list = ManuallyDrop::new(list);
    let spare = Spare {
        ptr: NonNull::from(&mut list[..]).cast(),
        capacity: list.capacity(),
    };
    // After the thread's storage is gone, `spare` is dropped (freed).
    let _ = SPARE.try_with(|slot| slot.set(Some(spare)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_buffer_is_taken_when_large_enough() {
        let first: Vec<Header<'_>> = list(8);
        let at = first.as_ptr();
        keep(first);
        let again: Vec<Header<'_>> = list(8);
        assert_eq!(again.as_ptr(), at);
        assert!(again.capacity() >= 8);
        keep(again);
        // Too small: a new one, and the kept one is freed.
        let larger: Vec<Header<'_>> = list(64);
        assert!(larger.capacity() >= 64);
        keep(larger);
        let kept = SPARE.with(|s| {
            let taken = s.take();
            let kept = taken.as_ref().map(|s| s.capacity);
            s.set(taken);
            kept
        });
        assert!(kept.is_some_and(|c| c >= 64));
        // Lists too large are not kept (the one before stays).
        keep(Vec::with_capacity(MAX_ENTRIES + 1));
        let kept = SPARE.with(|s| {
            let taken = s.take();
            let kept = taken.as_ref().map(|s| s.capacity);
            s.set(taken);
            kept
        });
        assert!(kept.is_some_and(|c| (64..=MAX_ENTRIES).contains(&c)));
    }
}
