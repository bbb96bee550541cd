//! `report.json`: the model as pretty JSON, and reading it back.
//!
//! The format is documented on [`crate::model`].

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use serde::Deserialize;

use crate::error::{LoadError, RenderError};
use crate::model::{Report, SCHEMA_MAJOR, SCHEMA_PREFIX};

/// Writes the report as pretty JSON with a final newline.
pub fn write(report: &Report, mut w: impl Write) -> Result<(), RenderError> {
    serde_json::to_writer_pretty(&mut w, report)?;
    w.write_all(b"\n")?;
    Ok(())
}

/// The report as pretty JSON.
pub fn to_string(report: &Report) -> Result<String, RenderError> {
    let mut s = serde_json::to_string_pretty(report)?;
    s.push('\n');
    Ok(s)
}

/// Checks a schema id: `p2psip-report/1` or a later minor (`/1.2`) loads;
/// another major or another format does not.
pub fn check_schema(schema: &str) -> Result<(), LoadError> {
    let Some(version) = schema.strip_prefix(SCHEMA_PREFIX) else {
        return Err(LoadError::NotAReport {
            found: Some(schema.to_string()),
        });
    };
    let major = version.split('.').next().unwrap_or("");
    match major.parse::<u32>() {
        Ok(SCHEMA_MAJOR) => Ok(()),
        _ => Err(LoadError::UnsupportedSchema {
            found: schema.to_string(),
            supported: SCHEMA_MAJOR,
        }),
    }
}

/// Parses a report from JSON text, checking the schema first so that a
/// report of another major version gets a clear error, not a field error.
pub fn from_str(text: &str) -> Result<Report, LoadError> {
    #[derive(Deserialize)]
    struct Header {
        schema: Option<String>,
    }
    let header: Header = serde_json::from_str(text)?;
    match header.schema {
        Some(s) => check_schema(&s)?,
        None => return Err(LoadError::NotAReport { found: None }),
    }
    Ok(serde_json::from_str(text)?)
}

/// Reads a report from a reader.
pub fn load(mut r: impl Read) -> Result<Report, LoadError> {
    let mut text = String::new();
    r.read_to_string(&mut text)
        .map_err(|source| LoadError::Io { path: None, source })?;
    from_str(&text)
}

/// Reads a report from a file.
pub fn load_path(path: impl AsRef<Path>) -> Result<Report, LoadError> {
    let path = path.as_ref();
    let text = fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: Some(path.to_path_buf()),
        source,
    })?;
    from_str(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_versions() {
        assert!(check_schema("p2psip-report/1").is_ok());
        assert!(check_schema("p2psip-report/1.3").is_ok());
        assert!(matches!(
            check_schema("p2psip-report/2"),
            Err(LoadError::UnsupportedSchema { .. })
        ));
        assert!(matches!(
            check_schema("p2psip-report/"),
            Err(LoadError::UnsupportedSchema { .. })
        ));
        assert!(matches!(
            check_schema("junit/1"),
            Err(LoadError::NotAReport { .. })
        ));
    }

    #[test]
    fn rejects_other_majors_and_non_reports() {
        let err = from_str(r#"{"schema":"p2psip-report/2","whatever":1}"#).unwrap_err();
        assert!(err.to_string().contains("p2psip-report/2"), "{err}");
        assert!(matches!(
            from_str(r#"{"cases":[]}"#),
            Err(LoadError::NotAReport { found: None })
        ));
        assert!(matches!(from_str("[1,2]"), Err(LoadError::Json(_))));
        assert!(matches!(from_str("not json"), Err(LoadError::Json(_))));
    }
}
