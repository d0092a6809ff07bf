//! Bytes written to an open file and not yet stored in the cluster: a set
//! of non-overlapping dirty ranges. Adjacent and overlapping writes merge,
//! so a sequential writer builds one growing range (appended in place) and
//! a random writer one range per touched stretch. Pure: no IO.

use std::collections::BTreeMap;

#[derive(Default, Debug)]
pub struct WriteBuffer {
    /// start offset → bytes; ranges neither overlap nor touch.
    ranges: BTreeMap<u64, Vec<u8>>,
    bytes: usize,
}

impl WriteBuffer {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// One past the last dirty byte (0 when empty).
    #[cfg(test)]
    pub fn end(&self) -> u64 {
        self.ranges
            .last_key_value()
            .map_or(0, |(s, d)| s + d.len() as u64)
    }

    pub fn write(&mut self, offset: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = offset + data.len() as u64;
        // Fast path: appending to the range that ends exactly here, with
        // nothing after it to merge.
        let nothing_after = self.ranges.range(offset..=end).next().is_none();
        if let Some((&s, d)) = self.ranges.range_mut(..offset).next_back() {
            if nothing_after && s + d.len() as u64 == offset {
                d.extend_from_slice(data);
                self.bytes += data.len();
                return;
            }
        }
        // General case: every range overlapping or touching [offset, end]
        // merges with the new bytes into one.
        let first = match self.ranges.range(..offset).next_back() {
            Some((&s, d)) if s + d.len() as u64 >= offset => s,
            _ => offset,
        };
        let touching: Vec<u64> = self.ranges.range(first..=end).map(|(s, _)| *s).collect();
        let mut start = offset;
        let mut stop = end;
        let mut old = Vec::with_capacity(touching.len());
        for s in touching {
            if let Some(d) = self.ranges.remove(&s) {
                self.bytes -= d.len();
                start = start.min(s);
                stop = stop.max(s + d.len() as u64);
                old.push((s, d));
            }
        }
        let mut merged = vec![0u8; (stop - start) as usize];
        for (s, d) in old {
            let at = (s - start) as usize;
            merged[at..at + d.len()].copy_from_slice(&d);
        }
        let at = (offset - start) as usize;
        merged[at..at + data.len()].copy_from_slice(data);
        self.bytes += merged.len();
        self.ranges.insert(start, merged);
    }

    /// Forgets dirty bytes at or past `size` (the file was cut there).
    pub fn truncate(&mut self, size: u64) {
        let past: Vec<u64> = self.ranges.range(size..).map(|(s, _)| *s).collect();
        for s in past {
            if let Some(d) = self.ranges.remove(&s) {
                self.bytes -= d.len();
            }
        }
        if let Some((&s, d)) = self.ranges.range_mut(..size).next_back() {
            let keep = (size - s) as usize;
            if d.len() > keep {
                self.bytes -= d.len() - keep;
                d.truncate(keep);
            }
        }
    }

    /// Copies the dirty bytes that fall in `offset..offset + out.len()` over
    /// `out`.
    pub fn overlay(&self, offset: u64, out: &mut [u8]) {
        let end = offset + out.len() as u64;
        let first = match self.ranges.range(..offset).next_back() {
            Some((&s, _)) => s,
            None => offset,
        };
        for (&s, d) in self.ranges.range(first..end) {
            let e = s + d.len() as u64;
            let (lo, hi) = (s.max(offset), e.min(end));
            if lo < hi {
                out[(lo - offset) as usize..(hi - offset) as usize]
                    .copy_from_slice(&d[(lo - s) as usize..(hi - s) as usize]);
            }
        }
    }

    /// True if every byte of `offset..offset + len` is dirty (a read of it
    /// needs nothing from the cluster).
    pub fn covers(&self, offset: u64, len: u64) -> bool {
        match self.ranges.range(..=offset).next_back() {
            Some((&s, d)) => s + d.len() as u64 >= offset + len,
            None => len == 0,
        }
    }

    /// Takes every dirty range, in offset order, leaving the buffer empty.
    pub fn take(&mut self) -> Vec<(u64, Vec<u8>)> {
        self.bytes = 0;
        std::mem::take(&mut self.ranges).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sequential_writes_make_one_range() {
        let mut b = WriteBuffer::default();
        for i in 0..100u64 {
            b.write(i * 10, &[i as u8; 10]);
        }
        assert_eq!(b.bytes(), 1000);
        let ranges = b.take();
        assert_eq!(ranges.len(), 1);
        assert_eq!(ranges[0].0, 0);
        assert_eq!(ranges[0].1[995], 99);
        assert!(b.is_empty());
        assert_eq!(b.bytes(), 0);
    }

    #[test]
    fn a_write_bridging_two_ranges_merges_them() {
        let mut b = WriteBuffer::default();
        b.write(0, b"aaaa");
        b.write(10, b"bbbb");
        b.write(3, b"ccccccc");
        let r = b.take();
        assert_eq!(r, vec![(0, b"aaacccccccbbbb".to_vec())]);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Write(u64, Vec<u8>),
        Truncate(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..200, proptest::collection::vec(any::<u8>(), 1..40))
                .prop_map(|(o, d)| Op::Write(o, d)),
            1 => (0u64..200).prop_map(Op::Truncate),
        ]
    }

    proptest! {
        /// Against a model: a byte array plus a dirty mask.
        #[test]
        fn matches_a_byte_model(ops in proptest::collection::vec(op(), 1..50)) {
            let mut b = WriteBuffer::default();
            let mut bytes = vec![0u8; 260];
            let mut dirty = vec![false; 260];
            for op in ops {
                match op {
                    Op::Write(o, d) => {
                        b.write(o, &d);
                        for (i, x) in d.iter().enumerate() {
                            bytes[o as usize + i] = *x;
                            dirty[o as usize + i] = true;
                        }
                    }
                    Op::Truncate(s) => {
                        b.truncate(s);
                        for x in &mut dirty[s as usize..] {
                            *x = false;
                        }
                    }
                }
                let mut out = vec![0xEEu8; 260];
                b.overlay(0, &mut out);
                for i in 0..260 {
                    let want = if dirty[i] { bytes[i] } else { 0xEE };
                    prop_assert_eq!(out[i], want, "byte {}", i);
                }
                prop_assert_eq!(b.bytes(), dirty.iter().filter(|d| **d).count());
                let end = dirty.iter().rposition(|d| *d).map_or(0, |i| i as u64 + 1);
                prop_assert_eq!(b.end(), end);
                for (o, l) in [(0u64, 10u64), (5, 1), (100, 30)] {
                    let all = dirty[o as usize..(o + l) as usize].iter().all(|d| *d);
                    prop_assert_eq!(b.covers(o, l), all);
                }
            }
            // Ranges come out ordered, apart and non-touching.
            let ranges = b.take();
            for w in ranges.windows(2) {
                prop_assert!(w[0].0 + (w[0].1.len() as u64) < w[1].0);
            }
        }
    }
}
