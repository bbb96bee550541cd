//! One module per subcommand.

pub mod id;
pub mod node;
pub mod parse;
pub mod pcap;
pub mod run;
pub mod stub;
pub mod vectors;
