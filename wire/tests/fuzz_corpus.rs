//! Replays the fuzz corpus (fuzz/corpus/*/, when present) and every vector
//! message through the fuzz properties on stable Rust, plus a short
//! random smoke run of the same properties.

use std::path::Path;

use p2psip_wire::fuzzing::{check_parse, check_stream};
use proptest::prelude::*;

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn replay_corpus_and_vectors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut n = 0;
    for dir in [
        "fuzz/corpus/parse_message",
        "fuzz/corpus/frame_stream",
        "vectors/messages",
    ] {
        for f in files_under(&root.join(dir)) {
            let data = std::fs::read(&f).unwrap();
            check_parse(&data);
            check_stream(&data);
            n += 1;
        }
    }
    assert!(n >= 60, "only {n} inputs replayed");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]
    #[test]
    fn smoke(data in prop::collection::vec(any::<u8>(), 0..400)) {
        check_parse(&data);
        check_stream(&data);
    }
}
