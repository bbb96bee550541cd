//! Integration tests of `p2psip run`, each against stand-in IUTs (the
//! hidden `stub-peer`, shell commands) or the built-in reference node.
//! Every test uses its own scratch directory and the harness's own
//! 127.x.y.z addresses with kernel-picked ports, so they run in parallel.

mod util;

/// Bad IUTs: never ready, crashing, hung, garbage; Ctrl-C of the harness.
mod bad_iut;
/// Configuration errors: IUT file lines, zero selected cases, suites.
mod config;
/// The built-in default run: exit 0, the four reports, junit, pcap.
mod default_run;
/// The engine end to end on a tiny suite: verdicts, exit codes, reports.
mod engine;
/// The expectations file: strictness and --write-expect.
mod expectations;
/// --iut-addr: a user-managed IUT, cases that need instances skipped.
mod external;
/// Fault switches of the reference node are caught by the suites.
mod faults;
/// The nat suite: clean reference node, and its NAT faults caught.
mod nat;
