//! Full typed parse of a realistic corpus (joins, 200s with S1..S4 and ten
//! fingers, 302s, folded and compact variants, a MESSAGE with a body),
//! against rsip's untyped and typed parses of the same messages as the
//! in-run baseline.
//!
//! `cargo bench -p p2psip-wire --bench parse`; figures per message and per
//! byte. rsip refuses IPv6 hosts and folded lines, so the comparison runs
//! on the messages both accept ("common"); ours also runs on all of them.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use p2psip_wire::{ParseOptions, parse};
use rsip::headers::ToTypedHeader;

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/messages/valid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the vectors are checked in")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read(p).expect("readable"))
        .collect()
}

fn rsip_accepts(m: &[u8]) -> bool {
    rsip::SipMessage::try_from(m).is_ok()
}

/// rsip's typed view of the headers it types (Via, From, To, CSeq, Contact...).
fn rsip_typed(m: &[u8]) -> usize {
    let msg = rsip::SipMessage::try_from(m).expect("filtered");
    let mut n = 0;
    for h in rsip::message::HasHeaders::headers(&msg).iter() {
        let ok = match h {
            rsip::Header::Via(v) => v.typed().is_ok(),
            rsip::Header::From(v) => v.typed().is_ok(),
            rsip::Header::To(v) => v.typed().is_ok(),
            rsip::Header::CSeq(v) => v.typed().is_ok(),
            rsip::Header::Contact(v) => v.typed().is_ok(),
            other => !other.to_string().is_empty(),
        };
        n += ok as usize;
    }
    n
}

fn bench(c: &mut Criterion) {
    let all = corpus();
    let common: Vec<&Vec<u8>> = all.iter().filter(|m| rsip_accepts(m)).collect();
    let bytes = |set: &[&Vec<u8>]| set.iter().map(|m| m.len() as u64).sum::<u64>();
    let all_refs: Vec<&Vec<u8>> = all.iter().collect();
    eprintln!(
        "corpus: {} messages ({} bytes, mean {} B); rsip accepts {} ({} bytes)",
        all.len(),
        bytes(&all_refs),
        bytes(&all_refs) / all.len() as u64,
        common.len(),
        bytes(&common)
    );

    for (unit, per_message) in [("messages", true), ("bytes", false)] {
        let mut g = c.benchmark_group(format!("parse-{unit}"));
        let tp = |set: &[&Vec<u8>]| {
            if per_message {
                Throughput::Elements(set.len() as u64)
            } else {
                Throughput::Bytes(bytes(set))
            }
        };
        g.throughput(tp(&common));
        g.bench_function("ours-typed/common", |b| {
            b.iter(|| {
                for m in &common {
                    black_box(
                        parse(
                            black_box(m),
                            ParseOptions::lenient().without_peer_id_check(),
                        )
                        .is_ok(),
                    );
                }
            })
        });
        g.bench_function("ours-typed+id2/common", |b| {
            b.iter(|| {
                for m in &common {
                    black_box(parse(black_box(m), ParseOptions::strict()).is_ok());
                }
            })
        });
        g.bench_function("rsip-untyped/common", |b| {
            b.iter(|| {
                for m in &common {
                    black_box(rsip::SipMessage::try_from(black_box(m.as_slice())).is_ok());
                }
            })
        });
        g.bench_function("rsip-typed/common", |b| {
            b.iter(|| {
                for m in &common {
                    black_box(rsip_typed(black_box(m)));
                }
            })
        });
        g.throughput(tp(&all_refs));
        g.bench_function("ours-typed/all", |b| {
            b.iter(|| {
                for m in &all {
                    black_box(
                        parse(
                            black_box(m),
                            ParseOptions::lenient().without_peer_id_check(),
                        )
                        .is_ok(),
                    );
                }
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
