//! One module per subcommand.

pub mod id;
pub mod parse;
pub mod vectors;
