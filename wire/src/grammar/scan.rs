/*!
One pass over the head of a message (start line and header section)
before it is parsed: where it ends, where its lines end, how many header
values it can hold at most, and whether it is all ASCII.

The pass looks at 32 bytes at a time where the processor has AVX2, 16
otherwise (SSE2 on x86_64, a plain loop elsewhere), and keeps only the
offsets of the LFs: the end of the head is where an LF follows another
one or a CR after one, which the LF masks show. The parse itself never
searches for a line end, and the header list is allocated once with room
for every value.
*/

/// How many line ends the pass remembers; the lines after those are found
/// by searching (a head rarely has more).
const KEPT: usize = 64;

/// The bytes looked at together.
const BLOCK: usize = 64;

/// What the pass found.
pub(crate) struct Head {
    /// Where the head ends: after the LF that the empty line follows, or
    /// the end of the input when there is no empty line.
    pub(crate) end: usize,
    /// An upper bound on the number of header values: one per line and
    /// one per comma (lists), plus one.
    pub(crate) values: usize,
    /// Whether every byte of the input up to `end` is ASCII.
    pub(crate) ascii: bool,
    /// The offsets of the first LFs of the head, in order.
    lf: [u32; KEPT],
    kept: usize,
    /// Whether `lf` holds every LF of the head.
    complete: bool,
    /// The next of `lf` to look at.
    next: usize,
}

impl Head {
    /// Before the scan.
    #[inline(always)]
    pub(crate) fn new() -> Head {
        Head {
            end: 0,
            values: 1,
            ascii: true,
            lf: [0; KEPT],
            kept: 0,
            complete: true,
            next: 0,
        }
    }

    /// Scans `input` from `start` (the start line), 32 bytes at a time
    /// where the processor can (AVX2), else 16.
    #[inline(always)]
    pub(crate) fn scan(&mut self, input: &[u8], start: usize) {
        #[cfg(target_arch = "x86_64")]
        if let Some(wide) = Avx2::detect() {
            // SAFETY: `wide` exists only where AVX2 was detected, which is
            // all that `scan_avx2` requires.
            return unsafe { self.scan_avx2(input, start, wide) };
        }
        self.scan_with(input, start, Narrow)
    }

    /// [`scan`](Head::scan), compiled for AVX2.
    ///
    /// # Safety
    ///
    /// The processor must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn scan_avx2(&mut self, input: &[u8], start: usize, wide: Avx2) {
        self.scan_with(input, start, wide)
    }

    #[inline(always)]
    fn scan_with(&mut self, input: &[u8], start: usize, c: impl Classify) {
        let classify = |block: &[u8]| c.classify(block);
        // Kept in locals (registers) while the loop runs.
        let mut end = input.len();
        let mut values = self.values;
        let mut ascii = input[..start.min(input.len())].is_ascii();
        let mut kept = 0;
        // The LFs of the block before, for an empty line that starts in
        // it (its two last bytes count).
        let mut before = 0u64;
        let mut at = start;
        while at < input.len() {
            let n = (input.len() - at).min(BLOCK);
            let masks = match input.get(at..at + BLOCK) {
                Some(block) => classify(block),
                // The last bytes: the last block of the input, less what
                // was seen already, or the bytes left padded with zeros.
                None => match input.len().checked_sub(BLOCK) {
                    Some(from) => classify(&input[from..]).skip(BLOCK - n),
                    None => {
                        let mut block = [0u8; BLOCK];
                        block[..n].copy_from_slice(&input[at..]);
                        classify(&block)
                    }
                },
            };
            let mut lfs = masks.lf & (u64::MAX >> (BLOCK - n));
            // An empty line ends at an LF one byte after another LF, or
            // two bytes after one with a CR between them.
            let one_after = (lfs << 1) | (before >> 63);
            let two_after = (lfs << 2) | (before >> 62);
            let mut ends = lfs & (one_after | two_after);
            before = lfs;
            // Only the bytes up to the end of the head count.
            let mut len = n;
            while ends != 0 {
                let i = ends.trailing_zeros() as usize;
                ends &= ends - 1;
                let start_of_empty = if one_after >> i & 1 == 1 {
                    at + i
                } else if input[at + i - 1] == b'\r' {
                    at + i - 1
                } else {
                    continue;
                };
                end = start_of_empty;
                // The LFs before the empty line are the head's.
                len = end - at.min(end);
                lfs &= if len >= 64 { u64::MAX } else { (1 << len) - 1 };
                break;
            }
            while lfs != 0 {
                let p = at + lfs.trailing_zeros() as usize;
                lfs &= lfs - 1;
                // (Counted one by one: x86_64 has no popcount to rely on.)
                values += 1;
                match (self.lf.get_mut(kept), u32::try_from(p)) {
                    (Some(slot), Ok(p)) => {
                        *slot = p;
                        kept += 1;
                    }
                    _ => self.complete = false,
                }
            }
            if masks.rare {
                // Commas and bytes beyond ASCII, counted one by one.
                for b in &input[at..at + len] {
                    values += usize::from(*b == b',');
                    ascii &= b.is_ascii();
                }
            }
            if end != input.len() {
                break;
            }
            at += n;
        }
        self.end = end;
        self.values = values;
        self.ascii = ascii;
        self.kept = kept;
    }

    /// The LFs kept, in order, when they are every LF of the head: the
    /// lines are what lies between them, less a CR, when no line is
    /// folded (which the caller checks).
    #[inline(always)]
    pub(crate) fn lines(&self) -> Option<&[u32]> {
        self.complete.then_some(&self.lf[..self.kept])
    }

    /// The offset of the first LF of `input` at or after `from`, for
    /// offsets in order.
    #[inline]
    pub(crate) fn lf_from(&mut self, input: &[u8], from: usize) -> Option<usize> {
        while let Some(&p) = self.lf[..self.kept].get(self.next) {
            if p as usize >= from {
                return Some(p as usize);
            }
            self.next += 1;
        }
        if self.complete && from <= self.end {
            // No LF is left before the end of the head; after it, search.
            return memchr::memchr(b'\n', input.get(self.end.max(from)..)?)
                .map(|i| self.end.max(from) + i);
        }
        memchr::memchr(b'\n', input.get(from..)?).map(|i| from + i)
    }
}

/// A way to look at a block.
trait Classify: Copy {
    fn classify(self, block: &[u8]) -> Masks;
}

/// 16 bytes at a time (SSE2 on x86_64), or one at a time elsewhere.
#[derive(Clone, Copy)]
struct Narrow;

impl Classify for Narrow {
    #[inline(always)]
    fn classify(self, block: &[u8]) -> Masks {
        classify(block)
    }
}

/// 32 bytes at a time; a value exists only where AVX2 was detected.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx2(());

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    #[inline(always)]
    fn detect() -> Option<Avx2> {
        std::is_x86_feature_detected!("avx2").then_some(Avx2(()))
    }
}

#[cfg(target_arch = "x86_64")]
impl Classify for Avx2 {
    #[inline(always)]
    fn classify(self, block: &[u8]) -> Masks {
        // SAFETY: a value of `Avx2` exists only where AVX2 was detected.
        unsafe { classify_avx2(block) }
    }
}

/// [`classify`] 32 bytes at a time.
///
/// # Safety
///
/// The processor must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn classify_avx2(block: &[u8]) -> Masks {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8,
    };
    let block = &block[..BLOCK];
    // SAFETY: AVX2 is enabled (the caller's contract); the two loads read
    // bytes 0..32 and 32..64 of `block`, which has 64, and `loadu` has no
    // alignment requirement.
    unsafe {
        let a = _mm256_loadu_si256(block.as_ptr().cast::<__m256i>());
        let b = _mm256_loadu_si256(block.as_ptr().add(32).cast::<__m256i>());
        let nl = _mm256_set1_epi8(b'\n' as i8);
        let comma = _mm256_set1_epi8(b',' as i8);
        let lf_a = _mm256_movemask_epi8(_mm256_cmpeq_epi8(a, nl)) as u32;
        let lf_b = _mm256_movemask_epi8(_mm256_cmpeq_epi8(b, nl)) as u32;
        let commas = _mm256_or_si256(_mm256_cmpeq_epi8(a, comma), _mm256_cmpeq_epi8(b, comma));
        // The high bit of a comma match, or of a byte beyond ASCII.
        let rare = _mm256_movemask_epi8(_mm256_or_si256(commas, _mm256_or_si256(a, b)));
        Masks {
            lf: u64::from(lf_a) | u64::from(lf_b) << 32,
            rare: rare != 0,
        }
    }
}

/// What a block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Masks {
    /// Bit `i`: byte `i` is LF.
    lf: u64,
    /// Some byte is a comma or not ASCII.
    rare: bool,
}

impl Masks {
    /// The masks of a block that starts `n` bytes later (the bytes after
    /// the end count as nothing).
    fn skip(self, n: usize) -> Masks {
        Masks {
            lf: self.lf >> n,
            rare: self.rare,
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn classify(block: &[u8]) -> Masks {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_setzero_si128,
    };
    let mut lf = 0u64;
    let mut rare = 0;
    // SAFETY: this function is compiled only where SSE2 is enabled (the
    // cfg above; it is part of every x86_64 target), which is all the
    // intrinsics require. Each load reads 16 bytes of `block` (`part` has
    // 16), and `loadu` has no alignment requirement.
    unsafe {
        let mut commas = _mm_setzero_si128();
        let mut all = _mm_setzero_si128();
        for (k, part) in block[..BLOCK].chunks_exact(16).enumerate() {
            let v = _mm_loadu_si128(part.as_ptr().cast::<__m128i>());
            let is_lf = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8));
            lf |= u64::from(_mm_movemask_epi8(is_lf) as u16) << (16 * k);
            commas = _mm_or_si128(commas, _mm_cmpeq_epi8(v, _mm_set1_epi8(b',' as i8)));
            all = _mm_or_si128(all, v);
        }
        // The high bit of a comma match, or of a byte beyond ASCII.
        rare |= _mm_movemask_epi8(_mm_or_si128(commas, all));
    }
    Masks {
        lf,
        rare: rare != 0,
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn classify(block: &[u8]) -> Masks {
    classify_bytes(block)
}

/// [`classify`] a byte at a time.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
fn classify_bytes(block: &[u8]) -> Masks {
    let mut m = Masks { lf: 0, rare: false };
    for (i, b) in block[..BLOCK].iter().enumerate() {
        m.lf |= u64::from(*b == b'\n') << i;
        m.rare |= *b == b',' || !b.is_ascii();
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_agree_with_bytes() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut block = [0u8; BLOCK];
            for b in &mut block {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = match x % 5 {
                    0 => b'\n',
                    1 => b',',
                    2 => (x >> 8) as u8,
                    _ => b'a',
                };
            }
            assert_eq!(classify(&block), classify_bytes(&block), "{block:?}");
            #[cfg(target_arch = "x86_64")]
            if let Some(wide) = Avx2::detect() {
                assert_eq!(wide.classify(&block), classify_bytes(&block), "{block:?}");
            }
        }
    }

    fn lines(input: &[u8], start: usize) -> (Head, Vec<usize>) {
        let mut head = Head::new();
        head.scan(input, start);
        lines_of(head, input, start)
    }

    fn lines_of(mut head: Head, input: &[u8], start: usize) -> (Head, Vec<usize>) {
        let mut out = vec![];
        let mut from = start;
        while let Some(p) = head.lf_from(input, from) {
            out.push(p);
            from = p + 1;
        }
        (head, out)
    }

    #[test]
    fn finds_the_end_the_lines_and_the_values() {
        let m = b"\r\nOPTIONS sip:a SIP/2.0\r\nVia: x, y\r\n z\r\nTo: t\r\n\r\nbody,\n";
        let (head, lfs) = lines(m, 2);
        let expect: Vec<usize> = m
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .filter(|i| *i >= 2)
            .collect();
        assert_eq!(lfs, expect);
        assert_eq!(head.end, m.len() - b"\r\nbody,\n".len());
        // Four lines (the start line's too) and one comma, plus one.
        assert_eq!(head.values, 6);
        assert!(head.ascii);
        let (head, _) = lines(b"A\nB: \xc3\xa9\n\nrest", 0);
        assert_eq!(head.end, 8);
        assert!(!head.ascii);
        let (head, _) = lines(b"A\nB: c", 0);
        assert_eq!(head.end, 6);
    }

    #[test]
    fn many_lines_are_found_by_searching() {
        let mut m = b"OPTIONS sip:a SIP/2.0\r\n".to_vec();
        for _ in 0..200 {
            m.extend_from_slice(b"X-A: b\r\n");
        }
        m.extend_from_slice(b"\r\n");
        let (head, lfs) = lines(&m, 0);
        assert!(!head.complete);
        assert_eq!(lfs.len(), 202);
        assert_eq!(head.values, 202);
    }

    /// What the scan must find, the slow way.
    fn reference(input: &[u8], start: usize) -> (usize, usize, bool, Vec<usize>) {
        let lfs: Vec<usize> = (start..input.len())
            .filter(|&i| input[i] == b'\n')
            .collect();
        let mut end = input.len();
        let mut head_lfs = vec![];
        for &p in &lfs {
            head_lfs.push(p);
            let empty = input.get(p + 1) == Some(&b'\n')
                || (input.get(p + 1) == Some(&b'\r') && input.get(p + 2) == Some(&b'\n'));
            if empty {
                end = p + 1;
                break;
            }
        }
        let commas = input[start..end].iter().filter(|b| **b == b',').count();
        let values = 1 + head_lfs.len() + commas;
        let ascii = input[..end].is_ascii();
        (end, values, ascii, head_lfs)
    }

    #[test]
    fn agrees_with_the_slow_way() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"\r\n\r\n \t,aaaaaaaa\xc3";
        for round in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 1 + (x % 300) as usize;
            let mut input = vec![b'A'];
            for _ in 1..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly text, with runs of line ends now and then.
                let b = if round % 3 == 0 || !x.is_multiple_of(4) {
                    alphabet[(x >> 8) as usize % alphabet.len()]
                } else {
                    b'a'
                };
                input.push(b);
            }
            // Both widths, whichever the processor would use.
            let mut narrow = Head::new();
            narrow.scan_with(&input, 0, Narrow);
            let mut heads = vec![lines_of(narrow, &input, 0)];
            #[cfg(target_arch = "x86_64")]
            if let Some(wide) = Avx2::detect() {
                let mut head = Head::new();
                head.scan_with(&input, 0, wide);
                heads.push(lines_of(head, &input, 0));
            }
            let (end, values, ascii, head_lfs) = reference(&input, 0);
            for (head, lfs) in heads {
                assert_eq!(head.end, end, "{input:?}");
                assert_eq!(head.values, values, "{input:?}");
                assert_eq!(head.ascii, ascii, "{input:?}");
                if head.complete {
                    let kept: Vec<u32> = head_lfs.iter().map(|p| *p as u32).collect();
                    assert_eq!(head.lines(), Some(&kept[..]), "{input:?}");
                }
                // Every LF is found, head or not.
                let all: Vec<usize> = (0..input.len()).filter(|&i| input[i] == b'\n').collect();
                assert_eq!(lfs, all, "{input:?}");
            }
        }
    }
}
