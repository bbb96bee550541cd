/*!
[`check_pipelined`]: the same analysis as [`check`](crate::check), on two
threads.

The capture is cut into *epochs*: the SIP payloads (and reader findings)
of a few MiB of capture, copied into a buffer with their place in it. Two
such buffers alternate. During one epoch:

- a helper thread reads and decodes the next epoch into the other buffer
  (link, IP, defragmentation, TCP reassembly), then parses messages of the
  current epoch, a chunk at a time;
- the calling thread judges the current epoch's messages strictly in
  capture order, parsing a chunk itself whenever the next one is not
  parsed yet (so neither thread waits while there is parsing to do).

Parsed messages borrow the current buffer, which neither thread changes
until the epoch ends (both threads are joined then), so they cross threads
without copies. Judgement order, and so every finding, its frame numbers
and the counters, are those of the one-thread pass (tested equal).

Memory: two epoch buffers (each [`Tuning::epoch_bytes`] of payload, or
one entry per 64 bytes of it, plus at most one capture block's worth), the
parsed messages of [`Tuning::lookahead`] chunks, and the reader's own
bounded state. It does not grow with the capture.
*/

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use p2psip_capture::{CaptureError, CaptureReader, Event, FindingKind, Transport};
use p2psip_wire::{ParseError, ParseOptions, Parsed, parse};

use crate::engine::Checker;
use crate::model::Analysis;
use crate::options::Options;
use crate::sink::At;

/// How the work is cut. The defaults suit large captures; tests use tiny
/// values to cross every boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Payload bytes per epoch (an epoch ends at the first capture block
    /// that reaches it).
    pub epoch_bytes: usize,
    /// Messages parsed as one unit of work.
    pub chunk: usize,
    /// Chunks parsed ahead of the judging, at most.
    pub lookahead: usize,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            epoch_bytes: 8 << 20,
            chunk: 64,
            lookahead: 4,
        }
    }
}

/// How long the judging thread waits for a chunk before looking whether
/// the helper is still alive (it parses the chunk itself if not).
const POLL: Duration = Duration::from_millis(50);
/// How long the judging thread waits for a chunk the helper is parsing
/// before parsing it itself (the helper may have lost its core).
const STEAL_AFTER: Duration = Duration::from_micros(200);
/// Payload bytes the helper reads when it is ahead of the judging.
const READ_STEP: usize = 64 * 1024;

/// A SIP payload: where it is in the epoch's buffer, and where it was in
/// the capture.
struct Item {
    at: At,
    start: usize,
    end: usize,
}

enum Entry {
    Sip(Item),
    Finding {
        frame: u64,
        kind: FindingKind,
        message: String,
    },
}

#[derive(Default)]
struct Epoch {
    data: Vec<u8>,
    entries: Vec<Entry>,
}

impl Epoch {
    fn with_capacity(bytes: usize) -> Epoch {
        Epoch {
            data: Vec::with_capacity(bytes + 65_536),
            entries: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
    }

    /// Holds `bytes` of payload, or one entry per 64 of them (a capture
    /// of reader findings and no SIP grows no payload).
    fn full(&self, bytes: usize) -> bool {
        self.data.len() >= bytes || self.entries.len() >= (bytes / 64).max(1)
    }

    fn payload(&self, i: &Item) -> &[u8] {
        &self.data[i.start..i.end]
    }
}

/// One parsed message per entry (`None` for reader findings).
type Chunk<'a> = Vec<Option<Result<Parsed<'a>, ParseError>>>;

/// [`check`](crate::check) on two threads (see the module text).
pub fn check_pipelined<R: Read + Send>(
    reader: R,
    options: &Options,
) -> Result<Analysis, CaptureError> {
    check_pipelined_with(reader, options, Tuning::default())
}

/// [`check_pipelined`] with the work cut as `tuning` says (the result does
/// not depend on it).
pub fn check_pipelined_with<R: Read + Send>(
    reader: R,
    options: &Options,
    tuning: Tuning,
) -> Result<Analysis, CaptureError> {
    let tuning = Tuning {
        epoch_bytes: tuning.epoch_bytes.max(1),
        chunk: tuning.chunk.max(1),
        lookahead: tuning.lookahead.max(1),
    };
    let mut capture = CaptureReader::with_limits(reader, options.limits)?;
    let mut checker = Checker::new(options.clone());
    let opts = [
        checker.parse_options(Transport::Udp),
        checker.parse_options(Transport::Tcp),
    ];
    let mut epochs = [
        Epoch::with_capacity(tuning.epoch_bytes),
        Epoch::with_capacity(tuning.epoch_bytes),
    ];
    let mut more = fill(&mut capture, &mut epochs[0], tuning.epoch_bytes)?;
    let mut cur = 0;
    while !epochs[cur].entries.is_empty() {
        let (a, b) = epochs.split_at_mut(1);
        let (now, next) = if cur == 0 {
            (&a[0], &mut b[0])
        } else {
            (&b[0], &mut a[0])
        };
        next.clear();
        more = run_epoch(
            now,
            next,
            more.then_some(&mut capture),
            &mut checker,
            opts,
            tuning,
        )?;
        cur = 1 - cur;
    }
    Ok(checker.finish(capture.stats()))
}

/// Reads capture blocks into `epoch` until it is [full](Epoch::full) for
/// `bytes` or the capture is over; `false` once it is over.
fn fill<R: Read>(
    capture: &mut CaptureReader<R>,
    epoch: &mut Epoch,
    bytes: usize,
) -> Result<bool, CaptureError> {
    loop {
        if !capture.step(&mut |event| push(epoch, event))? {
            return Ok(false);
        }
        if epoch.full(bytes) {
            return Ok(true);
        }
    }
}

fn push(epoch: &mut Epoch, event: Event<'_>) {
    if let Some((at, payload)) = At::of_sip(&event) {
        let start = epoch.data.len();
        epoch.data.extend_from_slice(payload);
        epoch.entries.push(Entry::Sip(Item {
            at,
            start,
            end: epoch.data.len(),
        }));
        return;
    }
    if let Event::Finding {
        frame,
        kind,
        message,
    } = event
    {
        epoch.entries.push(Entry::Finding {
            frame,
            kind,
            message,
        });
    }
}

/// Who claimed a chunk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    Nobody,
    Helper,
    Judge,
}

/// Where the chunks of an epoch stand.
struct Board<'a> {
    owner: Vec<Owner>,
    /// Parsed ahead and not yet judged, with who parsed it.
    slots: Vec<Option<(Chunk<'a>, Owner)>>,
    /// Chunks judged so far (in order).
    judged: usize,
    /// The helper claims no chunk before this one (it moves forward).
    helper_from: usize,
    /// Judged chunks the helper parsed, for the helper to free.
    spent: Vec<Chunk<'a>>,
    /// The judging thread stopped (it panicked): the helper stops too.
    closed: bool,
}

impl Board<'_> {
    /// The first chunk after `from` that nobody claimed, within `end`.
    fn unclaimed(&self, from: usize, end: usize) -> Option<usize> {
        (from..end.min(self.owner.len())).find(|&c| self.owner[c] == Owner::Nobody)
    }
}

struct Shared<'a> {
    board: Mutex<Board<'a>>,
    changed: Condvar,
    chunks: usize,
    lookahead: usize,
}

/// Closes the board when the judging thread leaves, however it leaves.
struct Closer<'s, 'a>(&'s Shared<'a>);

impl Drop for Closer<'_, '_> {
    fn drop(&mut self) {
        if let Ok(mut b) = self.0.board.lock() {
            b.closed = true;
        }
        self.0.changed.notify_all();
    }
}

/// Parsed messages waiting to be freed by the thread that parsed them, one
/// before each new one: memory is freed by the thread that allocated it
/// and reused at once, so neither heap swings (freeing a whole chunk at
/// once lets malloc give the top of its heap back to the system, and
/// parsing the next chunk page-faults it in again).
#[derive(Default)]
struct Trash<'a>(VecDeque<std::vec::IntoIter<Option<Result<Parsed<'a>, ParseError>>>>);

impl<'a> Trash<'a> {
    fn add(&mut self, chunk: Chunk<'a>) {
        self.0.push_back(chunk.into_iter());
    }

    /// Frees the oldest parsed message.
    fn free_one(&mut self) {
        while let Some(front) = self.0.front_mut() {
            if front.next().is_some() {
                return;
            }
            self.0.pop_front();
        }
    }
}

fn parse_one<'a>(
    epoch: &'a Epoch,
    e: &Entry,
    opts: [ParseOptions; 2],
) -> Option<Result<Parsed<'a>, ParseError>> {
    match e {
        Entry::Sip(i) => {
            let o = match i.at.transport {
                Transport::Udp => opts[0],
                Transport::Tcp => opts[1],
            };
            Some(parse(epoch.payload(i), o))
        }
        Entry::Finding { .. } => None,
    }
}

fn chunk_entries(epoch: &Epoch, c: usize, chunk: usize) -> &[Entry] {
    &epoch.entries[c * chunk..epoch.entries.len().min((c + 1) * chunk)]
}

fn parse_chunk<'a>(
    epoch: &'a Epoch,
    c: usize,
    chunk: usize,
    opts: [ParseOptions; 2],
    trash: &mut Trash<'a>,
) -> Chunk<'a> {
    chunk_entries(epoch, c, chunk)
        .iter()
        .map(|e| {
            trash.free_one();
            parse_one(epoch, e, opts)
        })
        .collect()
}

/// One epoch: `now` judged on this thread, `next` filled from `capture`
/// (if the capture is not over) on a helper that also parses chunks of
/// `now`. Returns whether the capture goes on after `next`.
fn run_epoch<R: Read + Send>(
    now: &Epoch,
    next: &mut Epoch,
    capture: Option<&mut CaptureReader<R>>,
    checker: &mut Checker,
    opts: [ParseOptions; 2],
    tuning: Tuning,
) -> Result<bool, CaptureError> {
    let chunks = now.entries.len().div_ceil(tuning.chunk);
    let shared = Shared {
        board: Mutex::new(Board {
            owner: vec![Owner::Nobody; chunks],
            slots: (0..chunks).map(|_| None).collect(),
            judged: 0,
            helper_from: 0,
            spent: Vec::new(),
            closed: false,
        }),
        changed: Condvar::new(),
        chunks,
        lookahead: tuning.lookahead.max(1),
    };
    std::thread::scope(|s| {
        let helper = s.spawn(|| -> Result<bool, CaptureError> {
            let mut feed = Feed {
                capture,
                epoch: next,
                limit: tuning.epoch_bytes,
            };
            let mut trash = Trash::default();
            loop {
                match claim_for_helper(&shared, &mut trash, feed.pending()) {
                    Claim::Chunk(c) => {
                        // The reading kept on schedule with the parsing, so
                        // that it is done when this epoch's judging is.
                        feed.to(tuning.epoch_bytes * c / chunks)?;
                        let parsed = parse_chunk(now, c, tuning.chunk, opts, &mut trash);
                        let Ok(mut b) = shared.board.lock() else {
                            break;
                        };
                        if b.owner[c] == Owner::Helper {
                            b.slots[c] = Some((parsed, Owner::Helper));
                            drop(b);
                            shared.changed.notify_all();
                        } else {
                            // Taken over by the judging thread meanwhile.
                            drop(b);
                            trash.add(parsed);
                        }
                    }
                    // Ahead of the judging: read meanwhile.
                    Claim::Ahead => {
                        let more = feed.epoch.data.len() + READ_STEP;
                        feed.to(more)?;
                    }
                    Claim::Over => break,
                }
            }
            feed.to(tuning.epoch_bytes)?;
            Ok(feed.capture.is_some())
        });
        {
            let _closer = Closer(&shared);
            let mut trash = Trash::default();
            for j in 0..chunks {
                match take_chunk(now, j, &shared, &helper, &mut trash, opts, tuning.chunk) {
                    Some((parsed, owner)) => {
                        judge_chunk(now, j, tuning.chunk, &parsed, checker);
                        let mut b = shared.board.lock().ok();
                        if let Some(b) = b.as_mut() {
                            b.judged = j + 1;
                        }
                        match (owner, b) {
                            (Owner::Helper, Some(mut b)) => b.spent.push(parsed),
                            _ => trash.add(parsed),
                        }
                    }
                    None => {
                        // Claimed here: parsed, judged and freed message
                        // by message, as the one-thread pass does.
                        for e in chunk_entries(now, j, tuning.chunk) {
                            trash.free_one();
                            judge(now, e, &parse_one(now, e, opts), checker);
                        }
                        if let Ok(mut b) = shared.board.lock() {
                            b.judged = j + 1;
                        }
                    }
                }
                shared.changed.notify_all();
            }
        }
        helper.join().unwrap_or_else(|_| {
            Err(CaptureError::Io(std::io::Error::other(
                "the helper thread panicked",
            )))
        })
    })
}

/// What the helper does next.
enum Claim {
    /// Parse this chunk.
    Chunk(usize),
    /// Nothing to parse within the lookahead yet; reading is pending.
    Ahead,
    /// Every chunk is claimed (or the judging stopped).
    Over,
}

/// The helper's next chunk to parse (after taking the judged ones it
/// parsed, to free): never the one the judging thread is at, and at most
/// `lookahead` ahead of it, waiting unless it has reading to do.
fn claim_for_helper<'a>(shared: &Shared<'a>, trash: &mut Trash<'a>, reading: bool) -> Claim {
    let Ok(mut b) = shared.board.lock() else {
        return Claim::Over;
    };
    loop {
        for spent in b.spent.drain(..) {
            trash.add(spent);
        }
        if b.closed {
            return Claim::Over;
        }
        let from = b.helper_from.max(b.judged + 1);
        if from >= shared.chunks {
            return Claim::Over;
        }
        if let Some(c) = b.unclaimed(from, b.judged + shared.lookahead) {
            b.owner[c] = Owner::Helper;
            b.helper_from = c + 1;
            return Claim::Chunk(c);
        }
        if b.unclaimed(from, shared.chunks).is_none() {
            return Claim::Over;
        }
        if reading {
            return Claim::Ahead;
        }
        b = match shared.changed.wait_timeout(b, POLL) {
            Ok((g, _)) => g,
            Err(_) => return Claim::Over,
        };
    }
}

/// Chunk `j`, parsed ahead (with who parsed it), or `None` when this thread
/// claimed it just now (or must parse it anyway: the helper ended without
/// delivering it, a panic). While the helper is still parsing `j`, this
/// thread parses a later unclaimed chunk rather than wait.
fn take_chunk<'a>(
    now: &'a Epoch,
    j: usize,
    shared: &Shared<'a>,
    helper: &std::thread::ScopedJoinHandle<'_, Result<bool, CaptureError>>,
    trash: &mut Trash<'a>,
    opts: [ParseOptions; 2],
    chunk: usize,
) -> Option<(Chunk<'a>, Owner)> {
    let mut b = shared.board.lock().ok()?;
    let mut waited = false;
    loop {
        if let Some(p) = b.slots[j].take() {
            return Some(p);
        }
        if b.owner[j] == Owner::Nobody {
            b.owner[j] = Owner::Judge;
            return None;
        }
        if helper.is_finished() {
            return None;
        }
        if let Some(c) = b.unclaimed(j + 1, j + shared.lookahead) {
            b.owner[c] = Owner::Judge;
            drop(b);
            let parsed = parse_chunk(now, c, chunk, opts, trash);
            b = shared.board.lock().ok()?;
            b.slots[c] = Some((parsed, Owner::Judge));
            continue;
        }
        if waited {
            // The helper is slow with it (descheduled on a busy machine):
            // parsed here too; the helper's copy is freed when it comes.
            b.owner[j] = Owner::Judge;
            return None;
        }
        b = shared.changed.wait_timeout(b, STEAL_AFTER).ok()?.0;
        waited = true;
    }
}

/// The reading of the next epoch, done by the helper in steps.
struct Feed<'e, R: Read> {
    /// `None` once the capture is over.
    capture: Option<&'e mut CaptureReader<R>>,
    epoch: &'e mut Epoch,
    /// Payload bytes of a full epoch.
    limit: usize,
}

impl<R: Read> Feed<'_, R> {
    /// Whether reading remains to be done for this epoch.
    fn pending(&self) -> bool {
        self.capture.is_some() && !self.epoch.full(self.limit)
    }

    /// Reads until the epoch holds `bytes` (at most a full epoch) or the
    /// capture is over.
    fn to(&mut self, bytes: usize) -> Result<(), CaptureError> {
        let bytes = bytes.min(self.limit);
        if let Some(c) = self.capture.as_deref_mut()
            && !self.epoch.full(bytes)
            && !fill(c, self.epoch, bytes)?
        {
            self.capture = None;
        }
        Ok(())
    }
}

fn judge_chunk(now: &Epoch, j: usize, chunk: usize, parsed: &Chunk<'_>, checker: &mut Checker) {
    for (e, p) in chunk_entries(now, j, chunk).iter().zip(parsed) {
        judge(now, e, p, checker);
    }
}

fn judge(
    now: &Epoch,
    e: &Entry,
    parsed: &Option<Result<Parsed<'_>, ParseError>>,
    checker: &mut Checker,
) {
    match (e, parsed) {
        (Entry::Sip(i), Some(p)) => checker.parsed(&i.at, now.payload(i), p),
        (
            Entry::Finding {
                frame,
                kind,
                message,
            },
            _,
        ) => checker.event(&Event::Finding {
            frame: *frame,
            kind: *kind,
            message: message.clone(),
        }),
        (Entry::Sip(_), None) => {}
    }
}
