/*!
The nodes' wake-up times: an indexed binary min-heap with one entry per
node that has a deadline.

Each entry is (deadline, node); ties go to the lower node index, so the
order of wake-ups never depends on the order of insertion. A node's entry
is moved, not duplicated, when its [`poll_timeout`] changes, so the heap
never holds more than one entry per node and no stale entries pile up
(20 bytes per node: the entry and its position).

[`poll_timeout`]: p2psip_node::Node::poll_timeout
*/

const NONE: u32 = u32::MAX;

/// Deadlines (nanoseconds of virtual time) keyed by node index.
#[derive(Debug, Default)]
pub struct TimerHeap {
    heap: Vec<(u64, u32)>,
    /// Position of each node's entry in `heap`, or `NONE`.
    pos: Vec<u32>,
}

impl TimerHeap {
    /// The deadline of `node`, if armed.
    pub fn get(&self, node: u32) -> Option<u64> {
        let p = *self.pos.get(node as usize)?;
        (p != NONE).then(|| self.heap[p as usize].0)
    }

    /// Arms, moves or (with `None`) disarms the deadline of `node`.
    pub fn set(&mut self, node: u32, at: Option<u64>) {
        let n = node as usize;
        if n >= self.pos.len() {
            if at.is_none() {
                return;
            }
            self.pos.resize(n + 1, NONE);
        }
        let p = self.pos[n];
        match (p, at) {
            (NONE, None) => {}
            (NONE, Some(at)) => {
                let i = self.heap.len();
                self.heap.push((at, node));
                self.pos[n] = i as u32;
                self.up(i);
            }
            (p, None) => self.remove_at(p as usize),
            (p, Some(at)) => {
                let i = p as usize;
                let old = self.heap[i].0;
                if old == at {
                    return;
                }
                self.heap[i].0 = at;
                if at < old { self.up(i) } else { self.down(i) }
            }
        }
    }

    /// The earliest (deadline, node).
    pub fn peek(&self) -> Option<(u64, u32)> {
        self.heap.first().copied()
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Bytes held: the entries and the position table.
    pub fn memory(&self) -> usize {
        self.heap.capacity() * std::mem::size_of::<(u64, u32)>() + self.pos.capacity() * 4
    }

    fn remove_at(&mut self, i: usize) {
        let node = self.heap[i].1;
        self.pos[node as usize] = NONE;
        let last = self.heap.len() - 1;
        if i != last {
            self.heap.swap(i, last);
            self.heap.pop();
            self.pos[self.heap[i].1 as usize] = i as u32;
            self.up(i);
            self.down(i);
        } else {
            self.heap.pop();
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a].1 as usize] = a as u32;
        self.pos[self.heap[b].1 as usize] = b as u32;
    }

    fn up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[i] < self.heap[parent] {
                self.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && self.heap[l] < self.heap[m] {
                m = l;
            }
            if r < n && self.heap[r] < self.heap[m] {
                m = r;
            }
            if m == i {
                break;
            }
            self.swap(i, m);
            i = m;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The heap agrees with a sorted map of the same deadlines after any
        /// sequence of arm, move and disarm operations.
        #[test]
        fn agrees_with_a_sorted_model(ops in prop::collection::vec((0u32..40, prop::option::of(0u64..50)), 0..300)) {
            let mut h = TimerHeap::default();
            let mut model: BTreeMap<u32, u64> = BTreeMap::new();
            for (node, at) in ops {
                h.set(node, at);
                match at {
                    Some(t) => { model.insert(node, t); }
                    None => { model.remove(&node); }
                }
                let want = model.iter().map(|(n, t)| (*t, *n)).min();
                prop_assert_eq!(h.peek(), want);
                prop_assert_eq!(h.len(), model.len());
                prop_assert_eq!(h.get(node), at);
            }
        }
    }

    #[test]
    fn ties_go_to_the_lower_index() {
        let mut h = TimerHeap::default();
        h.set(9, Some(5));
        h.set(3, Some(5));
        h.set(7, Some(5));
        assert_eq!(h.peek(), Some((5, 3)));
        h.set(3, None);
        assert_eq!(h.peek(), Some((5, 7)));
    }
}
