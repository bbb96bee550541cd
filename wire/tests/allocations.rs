//! A parse allocates at most once (the header index) and never per
//! header: counted with a global allocator over the valid corpus. What a
//! parse does allocate is freed with the message, but for the list's
//! buffer, which the next parse on the thread takes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use p2psip_wire::{ParseOptions, parse};

struct Counting;

// Counted per thread: the test runner allocates on its own threads
// meanwhile.
thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    /// Blocks allocated and not yet freed (a reallocation moves one).
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|n| n.set(n.get() + 1));
        LIVE.with(|n| n.set(n.get() + 1));
        // SAFETY: forwards the caller's layout unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.with(|n| n.set(n.get() - 1));
        // SAFETY: the pointer came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|n| n.set(n.get() + 1));
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
    let mut reused = 0;
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        for opts in [ParseOptions::strict(), ParseOptions::lenient()] {
            let before = allocs();
            let parsed = parse(&bytes, opts).unwrap();
            let during = allocs() - before;
            assert!(during <= 1, "{}: {during} allocations", path.display());
            reused += usize::from(during == 0);
            assert!(parsed.message.headers.len() > 3);
            drop(parsed);
        }
    }
    // Most lists are as long as the one before or shorter.
    assert!(reused > 10, "{reused}");
}

/// Text a parse had to own (parameters joined from apart, bytes that are
/// not UTF-8) is freed with the message; the list's buffer is kept for
/// the next parse, and only one.
#[test]
fn owned_text_is_freed_with_the_message() {
    let message = b"REGISTER sip:10.0.0.11:5060 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-ua1;rport\r\n\
        Max-Forwards: 70\r\nTo: <sip:alice@example.org>\r\n\
        From: <sip:alice@example.org>;tag=uat1\r\nCall-ID: ua-call-1\r\n\
        CSeq: 1 REGISTER\r\n\
        Contact: <sip:alice@192.0.2.10:5060;x=1;transport=tcp;y=2>\r\n\
        Subject: caf\xe9\r\nContent-Length: 0\r\n\r\n";
    // A thread of its own: nothing kept from another parse.
    std::thread::spawn(move || {
        let before = live();
        let parsed = parse(message, ParseOptions::lenient()).unwrap();
        assert_eq!(live() - before, 3, "the list and two owned texts");
        drop(parsed);
        assert_eq!(live() - before, 1, "the list's buffer, kept");
        for _ in 0..3 {
            let parsed = parse(message, ParseOptions::lenient()).unwrap();
            assert_eq!(live() - before, 3, "the kept buffer and two texts");
            drop(parsed);
            assert_eq!(live() - before, 1);
        }
    })
    .join()
    .unwrap();
}
