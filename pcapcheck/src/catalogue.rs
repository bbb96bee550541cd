/*!
What the offline analysis can judge: the requirements (PROFILE.md IDs) and
the check families that judge them. Each family becomes one case of the
report (`pcap.wire`, `pcap.query-progress`, ...); each has one level, so a
SHOULD-only rule gets a family of its own.
*/

use p2psip_reports::Level;

macro_rules! requirements {
    ($( $(#[$doc:meta])* $name:ident = $id:literal, $level:ident, $title:literal; )*) => {
        /// A requirement the analysis judges.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Req { $( $(#[$doc])* $name, )* }

        impl Req {
            pub const ALL: &'static [Req] = &[ $( Req::$name, )* ];

            /// The PROFILE.md / CHECKS.md identifier, e.g. `QUERY-2`.
            pub fn id(self) -> &'static str {
                match self { $( Req::$name => $id, )* }
            }

            /// The level of the requirement as the profile states it.
            pub fn level(self) -> Level {
                match self { $( Req::$name => Level::$level, )* }
            }

            pub fn title(self) -> &'static str {
                match self { $( Req::$name => $title, )* }
            }

            pub fn from_id(id: &str) -> Option<Req> {
                match id { $( $id => Some(Req::$name), )* _ => None }
            }
        }
    };
}

requirements! {
    Id1 = "ID-1", Must, "IDs are 40 lower-case hex digits";
    Id2 = "ID-2", Must, "Peer-ID = SHA-1(IP) with the port in the low 16 bits";
    Id7 = "ID-7", Must, "a receiver verifies a request's Peer-ID against its observed source (493)";
    Wire1 = "WIRE-1", Must, "mandatory headers, branch cookie, From tag, Content-Length";
    Wire1Udp = "WIRE-1/CL-UDP", Should, "Content-Length on UDP";
    Wire2 = "WIRE-2", Must, "Require/Supported: dht";
    Wire3 = "WIRE-3", Must, "Peer URIs in their long form with a port";
    Wire4 = "WIRE-4", Must, "exactly one complete DHT-PeerID";
    Wire5 = "WIRE-5", Must, "DHT-Link entries with expires > 0";
    Wire6 = "WIRE-6", Must, "senders never emit the lenient variants";
    Wire10 = "WIRE-10", Must, "known dht and algorithm values";
    Nat1 = "NAT-1", Must, "rport in every request's top Via";
    Nat2 = "NAT-2", Must, "responses fill rport= and received= and come from the receiving socket";
    Nat2Values = "NAT-2/values", Should, "received/rport equal the source seen at the capture point";
    Nat3 = "NAT-3", Must, "a peer uses its observed address for its Peer-ID and Peer URI";
    Txn1 = "TXN-1", Must, "UDP requests retransmitted at T1, 2T1, 4T1... capped at T2, until Timer F";
    Txn2 = "TXN-2", Must, "retransmissions get the same final response";
    Txn3 = "TXN-3", Must, "responses go to the request's source address and port";
    Query2 = "QUERY-2", Must, "a 302 names one peer in (responder, key], or S1 when the key is in (responder, S1)";
    Query2Closest = "QUERY-2/closest", Should, "a 302 names the closest known peer to the key";
    Query3 = "QUERY-3", Must, "the responsible peer answers 200 for its own ID, 404 otherwise";
    Query4 = "QUERY-4", Must, "answers to queries and joins carry P1 (unless NULL) and S1";
    Query5 = "QUERY-5", Must, "every reported link is true when it is sent: no peer known to have left or failed (C-L3)";
    Query7 = "QUERY-7", Must, "a peer reports and redirects only to peers it exchanged a successful transaction with";
    Join5 = "JOIN-5", Must, "the admitting peer's 200 reports its old predecessor, not the joiner";
    Leave2 = "LEAVE-2", Must, "a leave's receivers stop reporting the leaver as P1/S1";
    Cq3Loop = "C-Q3/loop", Should, "a lookup path never revisits a peer";
    Cl1 = "C-L1", Must, "S1..Sk strictly increase clockwise from the responder, no duplicates";
    Cl2 = "C-L2", Must, "P1 is not the responder and not inside (responder, S1)";
    Cl4 = "C-L4", Must, "a link's expires is no later than the peer's advertised lifetime";
    Stab1 = "STAB-1", Must, "a peer queries its successor for the successor's own ID every stabilisation interval";
    Stab6 = "STAB-6", Must, "an expired entry is not reported";
    Res1 = "RES-1", Must, "a registration is stored at the peer responsible for its Resource-ID";
    Repl1 = "REPL-1", Must, "the registering peer also registers the R replicas";
    Repl3 = "REPL-3", Must, "replicas are stored at the hashed positions, not on successors";
}

macro_rules! checks {
    ($( $(#[$doc:meta])* $name:ident = $id:literal, $level:ident, $title:literal, [$($req:ident),*]; )*) => {
        /// A family of checks: one case in the report.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Check { $( $(#[$doc])* $name, )* }

        impl Check {
            pub const ALL: &'static [Check] = &[ $( Check::$name, )* ];

            /// The case id, e.g. `pcap.query-progress`.
            pub fn id(self) -> &'static str {
                match self { $( Check::$name => $id, )* }
            }

            pub fn level(self) -> Level {
                match self { $( Check::$name => Level::$level, )* }
            }

            pub fn title(self) -> &'static str {
                match self { $( Check::$name => $title, )* }
            }

            /// The requirements this family can judge.
            pub fn requirements(self) -> &'static [Req] {
                match self { $( Check::$name => &[$(Req::$req),*], )* }
            }

            pub fn from_id(id: &str) -> Option<Check> {
                match id { $( $id => Some(Check::$name), )* _ => None }
            }
        }
    };
}

checks! {
    /// Syntax of every message, as its sender wrote it.
    Wire = "pcap.wire", Must, "Every SIP message follows the sender's syntax rules",
        [Wire1, Wire2, Wire3, Wire4, Wire6, Wire10, Id1];
    WireShould = "pcap.wire-should", Should, "Content-Length on UDP",
        [Wire1Udp];
    IdSource = "pcap.id-source", Must, "Peer-IDs against addresses, observed sources and their receivers",
        [Id2, Id7, Nat3];
    NatRport = "pcap.nat-rport", Must, "rport/received and response routing",
        [Nat1, Nat2, Txn3];
    NatObserved = "pcap.nat-observed", Should, "received/rport values against the capture's source",
        [Nat2Values];
    TxnRetransmit = "pcap.txn-retransmit", Must, "Retransmission schedule and absorption",
        [Txn1, Txn2];
    QueryProgress = "pcap.query-progress", Must, "Every 302/200/404 against what the responder reported",
        [Query2, Query3, Join5];
    QueryClosest = "pcap.query-closest", Should, "Redirects to the closest peer, no loops",
        [Query2Closest, Cq3Loop];
    LinksTrue = "pcap.links-true", Must, "Reported links are ordered, present and not known to be false",
        [Query4, Query5, Cl1, Cl2, Leave2];
    LinksVerified = "pcap.links-verified", Must, "Only peers with a successful transaction are reported",
        [Query7];
    ReplicaPlacement = "pcap.replica-placement", Must, "Registrations and replicas at the responsible peers",
        [Res1, Repl1, Repl3];
    LinkExpiry = "pcap.link-expiry", Must, "Link lifetimes",
        [Wire5, Cl4, Stab6];
    Stabilize = "pcap.stabilize", Must, "Peers with a successor stabilise every interval",
        [Stab1];
}

impl Check {
    /// The family a requirement is judged in.
    pub fn of(req: Req) -> Check {
        for c in Check::ALL {
            if c.requirements().contains(&req) {
                return *c;
            }
        }
        // Every Req is listed by one check (tested below).
        Check::Wire
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_requirement_belongs_to_exactly_one_check_of_its_level() {
        for r in Req::ALL {
            let owners: Vec<_> = Check::ALL
                .iter()
                .filter(|c| c.requirements().contains(r))
                .collect();
            assert_eq!(owners.len(), 1, "{r:?}");
            assert_eq!(owners[0].level(), r.level(), "{r:?}");
            assert_eq!(Req::from_id(r.id()), Some(*r));
        }
        for c in Check::ALL {
            assert_eq!(Check::from_id(c.id()), Some(*c));
        }
    }
}
