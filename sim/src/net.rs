/*!
The simulated network: links with latency and loss, and one global queue
of datagrams in flight.

A sans-I/O component in the shape of the node core (str0m's netem):
[`Network::handle_send`] puts a datagram in, [`Network::poll_timeout`]
says when the next one is due and [`Network::poll_delivery`] takes it out.
Nothing here reads a clock or binds a socket.

- Every unordered pair of endpoints has a fixed one-way base latency,
  uniform in [`LinkModel::latency_min`, `LinkModel::latency_max`]. It is a
  hash of the run seed and the pair, so it costs no memory per link and
  does not depend on the order in which links are first used.
- Each datagram adds a jitter uniform in [0, [`LinkModel::jitter`]] (so
  datagrams on one link may overtake each other when it is not zero) and
  is lost with probability [`LinkModel::loss`]. Both draws come from one
  ChaCha generator seeded from the run seed, in send order.
- A datagram larger than [`LinkModel::max_datagram`] cannot exist (WIRE-8)
  and is dropped at the sender.
- Delivery order is (deliver-at, send sequence): two datagrams due at the
  same instant arrive in the order they were sent, whatever the heap does.
*/

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

use p2psip_node::Time;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Who sends or receives a datagram: a node index, or one of the reserved
/// endpoints of [`crate::addr`].
pub type Endpoint = u32;

/// The largest UDP payload over IPv4 (WIRE-8).
pub const MAX_UDP: usize = 65_507;

/// How links behave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkModel {
    /// Lowest one-way base latency of a link.
    #[serde(with = "millis")]
    pub latency_min: Duration,
    /// Highest one-way base latency of a link.
    #[serde(with = "millis")]
    pub latency_max: Duration,
    /// Extra delay per datagram, uniform in [0, jitter].
    #[serde(with = "millis")]
    pub jitter: Duration,
    /// Probability that a datagram is lost, in [0, 1].
    pub loss: f64,
    /// Larger datagrams are dropped.
    pub max_datagram: usize,
}

impl Default for LinkModel {
    fn default() -> LinkModel {
        LinkModel {
            latency_min: Duration::from_millis(10),
            latency_max: Duration::from_millis(40),
            jitter: Duration::ZERO,
            loss: 0.0,
            max_datagram: MAX_UDP,
        }
    }
}

/// Durations as (fractional) milliseconds in the report and scenario files.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1e3)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        if !(ms.is_finite() && ms >= 0.0) {
            return Err(serde::de::Error::custom("a duration must be >= 0 ms"));
        }
        Ok(Duration::from_secs_f64(ms / 1e3))
    }
}

/// What became of a datagram handed to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// In flight; delivered at this time.
    Queued(Time),
    /// Dropped by the loss draw.
    Lost,
    /// Larger than [`LinkModel::max_datagram`].
    Oversize,
}

/// A datagram taken out of the network at its delivery time.
#[derive(Debug)]
pub struct Delivery {
    pub at: Time,
    pub from: Endpoint,
    pub to: Endpoint,
    pub bytes: Vec<u8>,
}

/// Counters of the traffic so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NetStats {
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub oversize: u64,
    pub bytes: u64,
}

/// A datagram in flight. Ordered so that [`BinaryHeap`] (a max-heap) pops
/// the earliest (deliver-at, sequence) first.
#[derive(Debug)]
struct Packet {
    at: u64,
    seq: u64,
    from: Endpoint,
    to: Endpoint,
    bytes: Vec<u8>,
}

impl PartialEq for Packet {
    fn eq(&self, other: &Packet) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Packet {}

impl PartialOrd for Packet {
    fn partial_cmp(&self, other: &Packet) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Packet {
    fn cmp(&self, other: &Packet) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The links and the datagrams in flight.
#[derive(Debug)]
pub struct Network {
    model: LinkModel,
    seed: u64,
    rng: ChaCha8Rng,
    queue: BinaryHeap<Packet>,
    seq: u64,
    in_flight_bytes: usize,
    stats: NetStats,
}

/// Virtual time as nanoseconds since the epoch (heap keys are `u64`).
pub(crate) fn nanos(t: Time) -> u64 {
    u64::try_from(t.as_duration().as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn time_of(ns: u64) -> Time {
    Time::from_duration(Duration::from_nanos(ns))
}

/// SplitMix64: a fast, well-mixed hash of one word.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Network {
    pub fn new(model: LinkModel, seed: u64) -> Network {
        Network {
            model,
            seed,
            rng: ChaCha8Rng::seed_from_u64(mix(seed ^ 0x6e65_7477_6f72_6b00)),
            queue: BinaryHeap::new(),
            seq: 0,
            in_flight_bytes: 0,
            stats: NetStats::default(),
        }
    }

    pub fn model(&self) -> &LinkModel {
        &self.model
    }

    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// The fixed one-way base latency of the link between `a` and `b`.
    pub fn link_latency(&self, a: Endpoint, b: Endpoint) -> Duration {
        let (lo, hi) = (a.min(b), a.max(b));
        let span = self
            .model
            .latency_max
            .saturating_sub(self.model.latency_min);
        let span_ns = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
        if span_ns == 0 {
            return self.model.latency_min;
        }
        let h = mix(self.seed ^ mix((u64::from(lo) << 32) | u64::from(hi)));
        // Multiply-shift maps the hash onto [0, span] without modulo bias
        // worth speaking of.
        let off = ((u128::from(h) * u128::from(span_ns + 1)) >> 64) as u64;
        self.model.latency_min + Duration::from_nanos(off)
    }

    /// Hands a datagram sent at `now` to the network.
    pub fn handle_send(&mut self, now: Time, from: Endpoint, to: Endpoint, bytes: Vec<u8>) -> Fate {
        self.stats.sent += 1;
        if bytes.len() > self.model.max_datagram {
            self.stats.oversize += 1;
            return Fate::Oversize;
        }
        // The draws are made only for what the model asks for, so a
        // lossless run without jitter consumes no random numbers.
        if self.model.loss > 0.0 && self.rng.random::<f64>() < self.model.loss {
            self.stats.lost += 1;
            return Fate::Lost;
        }
        let mut delay = self.link_latency(from, to);
        if !self.model.jitter.is_zero() {
            let j = u64::try_from(self.model.jitter.as_nanos()).unwrap_or(u64::MAX);
            delay += Duration::from_nanos(self.rng.random_range(0..=j));
        }
        let at = now + delay;
        self.seq += 1;
        self.stats.bytes += bytes.len() as u64;
        self.in_flight_bytes += bytes.capacity();
        self.queue.push(Packet {
            at: nanos(at),
            seq: self.seq,
            from,
            to,
            bytes,
        });
        Fate::Queued(at)
    }

    /// When the next datagram is due.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.queue.peek().map(|p| time_of(p.at))
    }

    /// The next datagram due at or before `now`.
    pub fn poll_delivery(&mut self, now: Time) -> Option<Delivery> {
        if self.queue.peek()?.at > nanos(now) {
            return None;
        }
        // The peek above saw an element.
        let p = self.queue.pop()?;
        self.stats.delivered += 1;
        self.in_flight_bytes -= p.bytes.capacity();
        Some(Delivery {
            at: time_of(p.at),
            from: p.from,
            to: p.to,
            bytes: p.bytes,
        })
    }

    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Bytes held by the queue: its slots and the datagrams' buffers.
    pub fn memory(&self) -> usize {
        self.queue.capacity() * std::mem::size_of::<Packet>() + self.in_flight_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Time {
        Time::from_millis(n)
    }

    #[test]
    fn delivery_order_is_time_then_send_order() {
        let model = LinkModel {
            latency_min: Duration::from_millis(5),
            latency_max: Duration::from_millis(5),
            ..LinkModel::default()
        };
        let mut net = Network::new(model, 1);
        for i in 0..10u8 {
            net.handle_send(ms(0), 1, 2, vec![i]);
        }
        net.handle_send(ms(1), 3, 2, vec![99]);
        assert_eq!(net.poll_timeout(), Some(ms(5)));
        assert!(net.poll_delivery(ms(4)).is_none());
        let got: Vec<u8> = std::iter::from_fn(|| net.poll_delivery(ms(5)))
            .map(|d| d.bytes[0])
            .collect();
        assert_eq!(got, (0..10).collect::<Vec<u8>>());
        assert_eq!(net.poll_delivery(ms(6)).unwrap().bytes, vec![99]);
        assert_eq!(net.in_flight(), 0);
    }

    #[test]
    fn link_latency_is_symmetric_in_range_and_seeded() {
        let model = LinkModel::default();
        let a = Network::new(model.clone(), 7);
        let b = Network::new(model.clone(), 8);
        let mut differ = 0;
        for x in 0..50 {
            for y in 0..50 {
                let l = a.link_latency(x, y);
                assert_eq!(l, a.link_latency(y, x));
                assert!(l >= model.latency_min && l <= model.latency_max);
                differ += usize::from(l != b.link_latency(x, y));
            }
        }
        assert!(differ > 2000, "the seed changes the links");
    }

    #[test]
    fn loss_and_oversize() {
        let model = LinkModel {
            loss: 0.25,
            max_datagram: 100,
            ..LinkModel::default()
        };
        let mut net = Network::new(model, 3);
        assert_eq!(net.handle_send(ms(0), 1, 2, vec![0; 101]), Fate::Oversize);
        let lost = (0..4000)
            .filter(|_| net.handle_send(ms(0), 1, 2, vec![0; 10]) == Fate::Lost)
            .count();
        assert!((800..1200).contains(&lost), "{lost}");
        let s = net.stats();
        assert_eq!((s.sent, s.oversize, s.lost), (4001, 1, lost as u64));
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let model = LinkModel {
            latency_min: Duration::from_millis(10),
            latency_max: Duration::from_millis(10),
            jitter: Duration::from_millis(4),
            ..LinkModel::default()
        };
        let mut net = Network::new(model, 5);
        for _ in 0..200 {
            match net.handle_send(ms(0), 1, 2, vec![]) {
                Fate::Queued(at) => assert!(at >= ms(10) && at <= ms(14)),
                f => panic!("{f:?}"),
            }
        }
    }
}
