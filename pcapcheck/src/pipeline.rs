/*!
[`check_pipelined`]: the same analysis with the capture read on a second
thread. The reader thread decodes frames (link, IP, defragmentation, TCP
reassembly) and copies each SIP payload into a batch; the calling thread
parses and judges. Batches are recycled through a pool of a fixed size, so
memory stays bounded (a few MiB) whatever the capture's size.
*/

use std::borrow::Cow;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::mpsc;

use p2psip_capture::{
    CaptureError, CaptureReader, Event, FindingKind, PayloadKind, Stats, Timestamp, Transport,
};

use crate::engine::Checker;
use crate::model::Analysis;
use crate::options::Options;

/// Bytes of payload per batch, and batches in flight.
const BATCH_BYTES: usize = 1 << 20;
const BATCHES: usize = 4;

struct Item {
    frame: u64,
    first_frame: u64,
    ts: Timestamp,
    src: SocketAddr,
    dst: SocketAddr,
    transport: Transport,
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
struct Batch {
    data: Vec<u8>,
    entries: Vec<Entry>,
}

/// [`check`](crate::check) with reading and decoding on another thread.
pub fn check_pipelined<R: Read + Send>(
    reader: R,
    options: &Options,
) -> Result<Analysis, CaptureError> {
    let mut capture = CaptureReader::with_limits(reader, options.limits)?;
    let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(BATCHES);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Batch>(BATCHES + 1);
    for _ in 0..BATCHES {
        let _ = empty_tx.send(Batch {
            data: Vec::with_capacity(BATCH_BYTES + 65_536),
            entries: Vec::with_capacity(2048),
        });
    }
    let mut checker = Checker::new(options.clone());
    let result: Result<Stats, CaptureError> = std::thread::scope(|s| {
        let producer = s.spawn(move || -> Result<Stats, CaptureError> {
            let mut batch = empty_rx.recv().unwrap_or_default();
            let mut send_err = false;
            let r = capture.for_each(|event| {
                if send_err {
                    return;
                }
                match event {
                    Event::Datagram {
                        frame,
                        first_frame,
                        ts,
                        src,
                        dst,
                        transport,
                        payload,
                        kind: PayloadKind::Sip,
                    } => {
                        let start = batch.data.len();
                        batch.data.extend_from_slice(&payload);
                        batch.entries.push(Entry::Sip(Item {
                            frame,
                            first_frame,
                            ts,
                            src,
                            dst,
                            transport,
                            start,
                            end: batch.data.len(),
                        }));
                    }
                    Event::Datagram { .. } => return,
                    Event::Finding {
                        frame,
                        kind,
                        message,
                    } => batch.entries.push(Entry::Finding {
                        frame,
                        kind,
                        message,
                    }),
                }
                if batch.data.len() >= BATCH_BYTES {
                    let next = empty_rx.recv().unwrap_or_default();
                    if full_tx.send(std::mem::replace(&mut batch, next)).is_err() {
                        send_err = true;
                    }
                }
            });
            let _ = full_tx.send(batch);
            drop(full_tx);
            r.map(|()| capture.stats())
        });
        for mut batch in full_rx.iter() {
            for e in batch.entries.drain(..) {
                match e {
                    Entry::Sip(i) => checker.event(&Event::Datagram {
                        frame: i.frame,
                        first_frame: i.first_frame,
                        ts: i.ts,
                        src: i.src,
                        dst: i.dst,
                        transport: i.transport,
                        payload: Cow::Borrowed(&batch.data[i.start..i.end]),
                        kind: PayloadKind::Sip,
                    }),
                    Entry::Finding {
                        frame,
                        kind,
                        message,
                    } => checker.event(&Event::Finding {
                        frame,
                        kind,
                        message,
                    }),
                }
            }
            batch.data.clear();
            let _ = empty_tx.send(batch);
        }
        producer.join().unwrap_or_else(|_| {
            Err(CaptureError::Io(std::io::Error::other(
                "reader thread panicked",
            )))
        })
    });
    let stats = result?;
    Ok(checker.finish(stats))
}
