//! One module per subcommand.

pub mod id;
pub mod node;
pub mod parse;
pub mod pcap;
pub mod run;
pub mod sim;
pub mod stub;
pub mod vectors;
