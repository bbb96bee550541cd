/*!
The suite engine: cases are data (`suites/<name>.toml`, [`model`]), loaded and
checked in full before anything runs ([`load`]); each case attempt runs
in its own [`ctx::Ctx`] ([`case`]) through the step interpreter
([`steps`]), whose `send` builds messages with [`msg`]; [`plan`] selects
what runs. The `run` command (`crate::cmd::run`) turns each selected case
into a libtest-mimic trial and hands the results to `p2psip-reports`.
*/

pub mod case;
pub mod ctx;
pub mod load;
pub mod model;
pub mod msg;
pub mod plan;
pub mod resource;
pub mod steps;
