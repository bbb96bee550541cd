//! Writing every report file into a directory.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{RenderError, WriteError};
use crate::model::Report;
use crate::{html, json, junit, markdown};

pub const JSON_FILE: &str = "report.json";
pub const JUNIT_FILE: &str = "junit.xml";
pub const MARKDOWN_FILE: &str = "summary.md";
pub const HTML_FILE: &str = "report.html";

/// Paths of the files [`write_all`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFiles {
    pub json: PathBuf,
    pub junit: PathBuf,
    pub markdown: PathBuf,
    pub html: PathBuf,
}

/// Renders the four reports into `dir` (created if missing):
/// `report.json`, `junit.xml`, `summary.md` and `report.html`.
///
/// Every file is rendered before any is written, so a rendering error
/// leaves the directory as it was; each file is replaced atomically.
pub fn write_all(report: &Report, dir: impl AsRef<Path>) -> Result<WrittenFiles, WriteError> {
    let dir = dir.as_ref();
    let render = |file: &'static str, r: Result<Vec<u8>, RenderError>| {
        r.map_err(|source| WriteError::Render { file, source })
    };
    let json_bytes = render(JSON_FILE, json::to_string(report).map(String::into_bytes))?;
    let junit_bytes = render(JUNIT_FILE, {
        let mut buf = Vec::new();
        junit::write(report, &mut buf).map(|()| buf)
    })?;
    let md_bytes = markdown::to_string(report).into_bytes();
    let html_bytes = render(HTML_FILE, html::to_string(report).map(String::into_bytes))?;

    fs::create_dir_all(dir).map_err(|source| WriteError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let files = WrittenFiles {
        json: dir.join(JSON_FILE),
        junit: dir.join(JUNIT_FILE),
        markdown: dir.join(MARKDOWN_FILE),
        html: dir.join(HTML_FILE),
    };
    write_atomically(&files.json, &json_bytes)?;
    write_atomically(&files.junit, &junit_bytes)?;
    write_atomically(&files.markdown, &md_bytes)?;
    write_atomically(&files.html, &html_bytes)?;
    Ok(files)
}

/// Writes to a temporary sibling, then renames it over `path`, so a reader
/// (or a CI uploading artefacts) never sees a half-written file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let err = |source| WriteError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    fs::write(&tmp, bytes).map_err(err)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        err(e)
    })
}
