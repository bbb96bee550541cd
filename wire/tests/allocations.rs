//! A parse allocates at most once (the header index) and never per
//! header: counted with a global allocator over the valid corpus.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use p2psip_wire::{ParseOptions, parse};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwards the caller's layout unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the pointer came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as GlobalAlloc::realloc, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn one_allocation_per_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/messages/valid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.retain(|p| p.extension().is_some_and(|x| x == "sip"));
    files.sort();
    assert!(files.len() >= 10);
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        for opts in [ParseOptions::strict(), ParseOptions::lenient()] {
            let before = ALLOCS.load(Ordering::Relaxed);
            let parsed = parse(&bytes, opts).unwrap();
            let during = ALLOCS.load(Ordering::Relaxed) - before;
            assert!(during <= 1, "{}: {during} allocations", path.display());
            assert!(parsed.message.headers.len() > 3);
            drop(parsed);
        }
    }
}
