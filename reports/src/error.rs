//! Error types of this crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// A renderer could not produce its output.
#[derive(Debug, Error)]
pub enum RenderError {
    #[error("could not write the output")]
    Io(#[from] io::Error),
    #[error("could not serialise the report as JSON")]
    Json(#[from] serde_json::Error),
    #[error("could not serialise the JUnit XML")]
    Junit(#[from] quick_junit::SerializeError),
    #[error("could not render the HTML template")]
    Template(#[from] minijinja::Error),
}

/// `report.json` could not be read back.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("could not read {}", path.as_ref().map_or_else(|| "the report".into(), |p| p.display().to_string()))]
    Io {
        path: Option<PathBuf>,
        #[source]
        source: io::Error,
    },
    #[error("the report is not valid JSON of the p2psip-report format")]
    Json(#[from] serde_json::Error),
    #[error("not a p2psip report (schema {found:?})")]
    NotAReport { found: Option<String> },
    #[error(
        "unsupported report schema `{found}`: this reader understands p2psip-report/{supported}"
    )]
    UnsupportedSchema { found: String, supported: u32 },
}

/// One expectations entry that matches no case the harness knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleEntry {
    pub line: usize,
    pub pattern: String,
}

impl fmt::Display for StaleEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: `{}`", self.line, self.pattern)
    }
}

fn list(entries: &[StaleEntry]) -> String {
    entries
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn position(line: &Option<usize>, column: &Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{l}:{c}"),
        (Some(l), None) => format!("{l}"),
        _ => "?".into(),
    }
}

/// The expectations file is unreadable, malformed or stale.
#[derive(Debug, Error)]
pub enum ExpectError {
    #[error("could not read expectations file {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// TOML syntax error, unknown key or wrong value type.
    #[error("{origin}:{}: {message}", position(line, column))]
    Syntax {
        origin: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("{origin}:{line}: entry has an empty `{field}`")]
    Empty {
        origin: String,
        line: usize,
        field: &'static str,
    },
    #[error("{origin}:{line}: `{pattern}` is listed twice (first on line {first_line})")]
    Duplicate {
        origin: String,
        line: usize,
        first_line: usize,
        pattern: String,
    },
    /// Entries that match no known case: the file has rotted.
    #[error("{origin}: entries match no known case: {}", list(entries))]
    Stale {
        origin: String,
        entries: Vec<StaleEntry>,
    },
}

/// [`crate::write_all`] or [`crate::expect::write_file`] failed.
#[derive(Debug, Error)]
pub enum WriteError {
    #[error("could not create directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("could not render {file}")]
    Render {
        file: &'static str,
        #[source]
        source: RenderError,
    },
    #[error("could not write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
