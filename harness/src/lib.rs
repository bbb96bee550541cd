/*!
The p2psip conformance harness: it starts an implementation under test,
surrounds it with scripted peers and reference nodes, runs the suites of
cases against it, and reports a verdict per requirement with evidence.

The `p2psip` binary is a thin shell over [`cli::main`].
*/

pub mod checks;
pub mod cli;
pub mod cmd;
pub mod engine;
pub mod evidence;
pub mod iut;
pub mod natlab;
pub mod net;
pub mod oracle;
pub mod probe;
pub mod puppet;
mod text;
pub mod trace;
