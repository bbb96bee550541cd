/*!
Command templates: argv elements with `{placeholder}`s (IUT.md), checked
when the IUT file is loaded and expanded per instance.
*/

use std::collections::HashMap;

/// The placeholders of IUT.md, valid in `command` and `env`.
pub const PLACEHOLDERS: &[&str] = &[
    "ip",
    "port",
    "bootstrap",
    "overlay",
    "replicas",
    "successors",
    "stabilize_ms",
    "fix_fingers_ms",
    "keepalive_ms",
    "expires_s",
    "t1_ms",
    "data_dir",
    "advertise",
    "ca_cert",
    "cert",
    "key",
];

/// A template: literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Piece>,
}

/// A piece of a `{placeholder}` text: literal text (with `{{`/`}}`
/// already unescaped) or a placeholder's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    Var(String),
}

/// A brace that does not pair up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BraceError {
    /// A `{` with no `}` after it.
    Unclosed,
    /// A lone `}`.
    Stray,
}

/// Splits `text` into literal text and placeholder names; `{{` and `}}`
/// stand for literal braces. Names are not checked here: each caller
/// knows its own.
pub fn pieces(text: &str) -> Result<Vec<Piece>, BraceError> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '}' => return Err(BraceError::Stray),
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                if !closed {
                    return Err(BraceError::Unclosed);
                }
                if !lit.is_empty() {
                    out.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                out.push(Piece::Var(name));
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Ok(out)
}

/// Why a template is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{name}}} in {text:?}; known placeholders: {known}")]
    Unknown {
        name: String,
        text: String,
        known: String,
    },
    #[error("unclosed `{{` in {text:?} (write `{{{{` for a literal brace)")]
    Unclosed { text: String },
    #[error("stray `}}` in {text:?} (write `}}}}` for a literal brace)")]
    Stray { text: String },
}

impl Template {
    /// Parses `text`; `extra` names placeholders valid here besides
    /// [`PLACEHOLDERS`] (`aor`, `contact` in `register_command`).
    pub fn parse(text: &str, extra: &[&str]) -> Result<Template, TemplateError> {
        let parts = pieces(text).map_err(|e| match e {
            BraceError::Unclosed => TemplateError::Unclosed {
                text: text.to_string(),
            },
            BraceError::Stray => TemplateError::Stray {
                text: text.to_string(),
            },
        })?;
        let unknown = parts.iter().find_map(|p| match p {
            Piece::Var(name)
                if !PLACEHOLDERS.contains(&name.as_str()) && !extra.contains(&name.as_str()) =>
            {
                Some(name)
            }
            _ => None,
        });
        if let Some(name) = unknown {
            let mut known: Vec<&str> = PLACEHOLDERS.to_vec();
            known.extend_from_slice(extra);
            return Err(TemplateError::Unknown {
                name: name.clone(),
                text: text.to_string(),
                known: known
                    .iter()
                    .map(|k| format!("{{{k}}}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
        Ok(Template {
            source: text.to_string(),
            parts,
        })
    }

    /// A template with no placeholders.
    pub fn literal(text: &str) -> Template {
        Template {
            source: text.replace('{', "{{").replace('}', "}}"),
            parts: vec![Piece::Lit(text.to_string())],
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Expands with `values`; a placeholder without a value becomes empty
    /// (e.g. `{ca_cert}` outside enrollment runs).
    pub fn expand(&self, values: &HashMap<&str, String>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Var(v) => {
                    if let Some(x) = values.get(v.as_str()) {
                        out.push_str(x);
                    }
                }
            }
        }
        out
    }

    /// The placeholders it uses.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(v.as_str()),
            Piece::Lit(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_and_escapes() {
        let t = Template::parse("{ip}:{port}{{x}}", &[]).unwrap();
        let mut v = HashMap::new();
        v.insert("ip", "127.1.2.3".to_string());
        v.insert("port", "4000".to_string());
        assert_eq!(t.expand(&v), "127.1.2.3:4000{x}");
        assert_eq!(t.vars().collect::<Vec<_>>(), ["ip", "port"]);
        assert_eq!(Template::literal("{a}").expand(&v), "{a}");
    }

    #[test]
    fn refuses_bad_templates() {
        assert!(matches!(
            Template::parse("{nope}", &[]),
            Err(TemplateError::Unknown { .. })
        ));
        assert!(matches!(
            Template::parse("{ip", &[]),
            Err(TemplateError::Unclosed { .. })
        ));
        assert!(matches!(
            Template::parse("a}b", &[]),
            Err(TemplateError::Stray { .. })
        ));
        assert!(Template::parse("{aor}", &["aor"]).is_ok());
    }
}
