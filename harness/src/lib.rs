//! The p2psip conformance harness: IUT supervisor, scripted peers, suites, checks and reports.
