/*!
Selecting what runs: suites (`-s`), requirements (`-r`: cases citing
one of them), the libtest name filters (substring or `--exact`,
`--skip`), then a shard (`--partition K/N`, by position in
the filtered, id-ordered list, so N jobs together run everything once).
*/

use std::sync::Arc;

use libtest_mimic::{Arguments, Trial};

use super::load::{Case, Catalogue};

/// `--partition K/N`: shard K (1-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub k: usize,
    pub n: usize,
}

impl std::str::FromStr for Partition {
    type Err = String;
    fn from_str(s: &str) -> Result<Partition, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("partition {s:?} is not K/N"))?;
        let k: usize = k
            .trim()
            .parse()
            .map_err(|_| format!("partition {s:?}: K is not a number"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("partition {s:?}: N is not a number"))?;
        if n == 0 || k == 0 || k > n {
            return Err(format!("partition {s:?}: need 1 <= K <= N"));
        }
        Ok(Partition { k, n })
    }
}

/// The cases to run, in id order.
pub fn select(
    cat: &Catalogue,
    suites: &[String],
    requirements: &[String],
    args: &Arguments,
    partition: Option<Partition>,
) -> Result<Vec<Arc<Case>>, String> {
    for r in requirements {
        if !cat.requirements.iter().any(|d| &d.id == r) {
            return Err(format!("unknown requirement {r:?} (not in the profile)"));
        }
    }
    for s in suites {
        if !cat.suites.iter().any(|x| &x.name == s) {
            let known: Vec<&str> = cat.suites.iter().map(|x| x.name.as_str()).collect();
            return Err(format!("unknown suite {s:?}; suites: {}", known.join(", ")));
        }
    }
    let mut cases: Vec<Arc<Case>> = cat
        .cases
        .iter()
        .filter(|c| suites.is_empty() || suites.contains(&c.suite))
        .filter(|c| {
            requirements.is_empty() || c.def.requirements.iter().any(|r| requirements.contains(r))
        })
        .filter(|c| !args.is_filtered_out(&Trial::test(c.id().to_string(), || Ok(()))))
        .cloned()
        .collect();
    cases.sort_by(|a, b| a.id().cmp(b.id()));
    if let Some(p) = partition {
        cases = cases
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % p.n == p.k - 1)
            .map(|(_, c)| c)
            .collect();
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_parse() {
        assert_eq!("2/3".parse::<Partition>(), Ok(Partition { k: 2, n: 3 }));
        assert!("0/3".parse::<Partition>().is_err());
        assert!("4/3".parse::<Partition>().is_err());
        assert!("x".parse::<Partition>().is_err());
    }
}
