//! `p2psip vectors regen|check [--dir DIR]`

use std::path::PathBuf;

use crate::cli::Outcome;

#[derive(Debug, clap::Subcommand)]
pub enum VectorsCommand {
    /// Write every vector file under DIR.
    Regen {
        #[arg(long, default_value = "vectors")]
        dir: PathBuf,
    },
    /// Compare DIR with what this version generates; exit 1 on any
    /// difference.
    Check {
        #[arg(long, default_value = "vectors")]
        dir: PathBuf,
    },
}

pub fn run(c: VectorsCommand) -> anyhow::Result<Outcome> {
    match c {
        VectorsCommand::Regen { dir } => {
            let n = p2psip_vectors::regen(&dir)?;
            println!("wrote {n} files under {}", dir.display());
            Ok(Outcome::Yes)
        }
        VectorsCommand::Check { dir } => {
            if !dir.is_dir() {
                anyhow::bail!("{} is not a directory", dir.display());
            }
            let mismatches = p2psip_vectors::check(&dir)?;
            for m in &mismatches {
                println!("{m}");
            }
            if mismatches.is_empty() {
                println!("vectors in {} are up to date", dir.display());
                Ok(Outcome::Yes)
            } else {
                Ok(Outcome::No)
            }
        }
    }
}
