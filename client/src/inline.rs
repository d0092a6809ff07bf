//! Moving a tiny file's inline bytes (kept by metadata) into chunks when
//! a write makes it too big for them: the inline bytes become one more
//! part, under the parts being written. Pure, so it is tested alone.

use bytes::Bytes;

/// `parts` with `inline` (the file's first bytes) beneath them: one part
/// covering `0..inline.len()` (the inline bytes with the parts' bytes over
/// them), then whatever of the parts lies past it.
pub fn under_parts(inline: &Bytes, parts: &[(u64, Bytes)]) -> Vec<(u64, Bytes)> {
    let n = inline.len() as u64;
    let mut head = inline.to_vec();
    let mut rest = Vec::new();
    for (offset, data) in parts {
        let end = offset + data.len() as u64;
        if *offset < n {
            let k = (end.min(n) - offset) as usize;
            let at = *offset as usize;
            head[at..at + k].copy_from_slice(&data[..k]);
            if end > n {
                rest.push((n, data.slice(k..)));
            }
        } else {
            rest.push((*offset, data.clone()));
        }
    }
    let mut out = Vec::with_capacity(rest.len() + 1);
    if n > 0 {
        out.push((0, Bytes::from(head)));
    }
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The file `parts` leave when laid over `base`, in order.
    fn apply(base: &[u8], parts: &[(u64, Bytes)]) -> Vec<u8> {
        let mut out = base.to_vec();
        for (o, d) in parts {
            let end = *o as usize + d.len();
            if out.len() < end {
                out.resize(end, 0);
            }
            out[*o as usize..end].copy_from_slice(d);
        }
        out
    }

    /// Sorted parts that neither overlap nor touch, as a write buffer
    /// hands them out.
    fn parts_strategy() -> impl Strategy<Value = Vec<(u64, Bytes)>> {
        prop::collection::vec((0u64..40, 1usize..30, any::<u8>()), 0..6).prop_map(|gaps| {
            let mut at = 0;
            gaps.into_iter()
                .map(|(gap, len, b)| {
                    let o = at + gap + 1;
                    at = o + len as u64;
                    (o, Bytes::from(vec![b; len]))
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn keeps_the_bytes_and_covers_the_inline_start(
            inline in prop::collection::vec(any::<u8>(), 0..100),
            parts in parts_strategy(),
        ) {
            let inline = Bytes::from(inline);
            let merged = under_parts(&inline, &parts);
            prop_assert_eq!(apply(&[], &merged), apply(&inline, &parts));
            if !inline.is_empty() {
                prop_assert_eq!(merged[0].0, 0);
                prop_assert!(merged[0].1.len() == inline.len());
            }
            // Still sorted and not overlapping (a chunk write's rule).
            for w in merged.windows(2) {
                prop_assert!(w[0].0 + w[0].1.len() as u64 <= w[1].0);
            }
        }
    }

    #[test]
    fn a_part_across_the_end_of_the_inline_bytes_is_split() {
        let inline = Bytes::from_static(b"abcdef");
        let merged = under_parts(&inline, &[(4, Bytes::from_static(b"XYZW"))]);
        assert_eq!(merged.len(), 2);
        assert_eq!(&merged[0].1[..], b"abcdXY");
        assert_eq!((merged[1].0, &merged[1].1[..]), (6, &b"ZW"[..]));
    }
}
