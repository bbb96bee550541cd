/*!
Language-neutral test vectors for implementers of the P2P-SIP profile, and
the JSON description of a parse that `p2psip parse --json` prints.

The vectors are generated from `p2psip-wire` ([`generate`]) into plain
files: JSON for IDs and ring math, raw `.sip` files for messages with the
expected parse (strict and lenient) next to them. `p2psip vectors regen`
writes them, `p2psip vectors check` compares what is on disk with what the
code generates now, and snapshot tests pin every byte, so any change in
output is a reviewed change.
*/

pub mod corpus;
pub mod describe;
pub mod ids;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use p2psip_wire::{ParseOptions, Profile};
use serde::Serialize;

pub use describe::{Description, describe};

/// Every vector file: relative path -> contents.
pub type Files = BTreeMap<PathBuf, Vec<u8>>;

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data structs cannot fail.
    let mut out = serde_json::to_vec_pretty(value).expect("vector data serializes");
    out.push(b'\n');
    out
}

/// The expected parse of one corpus message, in both modes.
#[derive(Serialize)]
struct Expected<'a> {
    file: String,
    group: &'static str,
    about: &'static str,
    profile: &'static str,
    strict: Description,
    lenient: Description,
    #[serde(skip)]
    _name: &'a str,
}

/// Generates every vector file.
pub fn generate() -> Files {
    let mut files = Files::new();
    files.insert("peer-ids.json".into(), json(&ids::peer_ids()));
    files.insert("resource-ids.json".into(), json(&ids::resource_ids()));
    files.insert("ring.json".into(), json(&ids::ring()));
    let mut index = Vec::new();
    for s in corpus::samples() {
        let profile = match s.group {
            corpus::Group::Legacy => Profile::Sipping02,
            _ => Profile::DsipChord,
        };
        let file = format!("messages/{}/{}.sip", s.group.dir(), s.name);
        let expected = Expected {
            file: file.clone(),
            group: s.group.dir(),
            about: s.about,
            profile: profile.name(),
            strict: describe(&s.bytes, ParseOptions::strict().with_profile(profile)),
            lenient: describe(&s.bytes, ParseOptions::lenient().with_profile(profile)),
            _name: s.name,
        };
        files.insert(
            format!("messages/{}/{}.json", s.group.dir(), s.name).into(),
            json(&expected),
        );
        index.push(serde_json::json!({
            "file": file,
            "group": s.group.dir(),
            "about": s.about,
            "profile": profile.name(),
        }));
        files.insert(file.into(), s.bytes);
    }
    files.insert("messages/index.json".into(), json(&index));
    files
}

#[derive(Debug, thiserror::Error)]
pub enum VectorsError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes every vector file under `dir`, creating directories; files the
/// generator no longer makes are left alone (and reported by [`check`]).
pub fn regen(dir: &Path) -> Result<usize, VectorsError> {
    let files = generate();
    for (rel, bytes) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| VectorsError::Write {
                path: parent.to_owned(),
                source,
            })?;
        }
        std::fs::write(&path, bytes).map_err(|source| VectorsError::Write { path, source })?;
    }
    Ok(files.len())
}

/// How a vector directory differs from what the code generates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Missing(PathBuf),
    Differs(PathBuf),
    /// A `.sip`/`.json` file under `messages/` the generator does not make.
    Extra(PathBuf),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Missing(p) => write!(f, "missing: {}", p.display()),
            Mismatch::Differs(p) => write!(f, "differs: {}", p.display()),
            Mismatch::Extra(p) => write!(f, "not generated: {}", p.display()),
        }
    }
}

/// Compares `dir` with the generated vectors.
pub fn check(dir: &Path) -> Result<Vec<Mismatch>, VectorsError> {
    let files = generate();
    let mut out = Vec::new();
    for (rel, bytes) in &files {
        let path = dir.join(rel);
        match std::fs::read(&path) {
            Ok(on_disk) if &on_disk == bytes => {}
            Ok(_) => out.push(Mismatch::Differs(rel.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.push(Mismatch::Missing(rel.clone()))
            }
            Err(source) => return Err(VectorsError::Read { path, source }),
        }
    }
    let messages = dir.join("messages");
    if let Ok(groups) = std::fs::read_dir(&messages) {
        for group in groups.flatten() {
            let Ok(entries) = std::fs::read_dir(group.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let rel = PathBuf::from("messages")
                    .join(group.file_name())
                    .join(e.file_name());
                let ext = rel.extension().and_then(|x| x.to_str());
                if matches!(ext, Some("sip" | "json")) && !files.contains_key(&rel) {
                    out.push(Mismatch::Extra(rel));
                }
            }
        }
    }
    Ok(out)
}
