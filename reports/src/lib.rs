//! Conformance result model and its JSON, JUnit, Markdown and HTML renderers.
