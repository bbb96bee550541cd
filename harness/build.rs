//! Embeds the suites (`../suites/*.toml`) and the profile (`../docs/spec.md`)
//! into the binary, so a user needs no files: every `.toml` file of the
//! suites directory is picked up, in name order.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let suites = manifest.join("../suites");
    let spec = manifest.join("../docs/spec.md");
    println!("cargo:rerun-if-changed={}", suites.display());
    println!("cargo:rerun-if-changed={}", spec.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&suites)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = String::from(
        "/// `(file name, text)` of every embedded suite.\npub static EMBEDDED_SUITES: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let abs = f.canonicalize().unwrap_or_else(|_| f.clone());
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            abs.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let spec_abs = spec.canonicalize().unwrap_or(spec);
    writeln!(
        out,
        "/// The project's statement of the profile (docs/spec.md).\npub static PROFILE_TEXT: &str = include_str!({:?});",
        spec_abs.display().to_string()
    )
    .unwrap();
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("embedded.rs");
    std::fs::write(dest, out).expect("write embedded.rs");
}
