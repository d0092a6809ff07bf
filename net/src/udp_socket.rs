//! The UDP socket under every endpoint: quinn's own, with each send kept
//! within the 64 KiB the kernel takes in one `sendmsg`.
//!
//! quinn batches up to ten datagrams of the path's current MTU into one
//! segmentation-offload (GSO) send and never checks the batch's total.
//! Once path-MTU discovery raises the MTU past about 6.5 KB — which it
//! does on loopback and jumbo-frame paths — a full batch is larger than
//! the kernel accepts, `sendmsg` fails with `EMSGSIZE`, and quinn-udp
//! counts that as sent (it expects `EMSGSIZE` only from MTU probes). The
//! lost batch then reads as a black hole and the MTU falls back to 1,200
//! bytes, so large datagrams never last. [`BoundedSends`] sends such a
//! batch as several sends of as many whole datagrams as fit; the split
//! itself is the pure [`send_parts`].

use std::fmt;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

/// The most UDP payload one `sendmsg` may carry, segmented or not: the
/// IPv4 length field's 65,535 bytes less the IP and UDP headers (IPv6
/// allows a little more; this bound serves both).
pub const MAX_SEND_BYTES: usize = 65_507;

/// One send of a batch: the bytes of `contents` it carries and its GSO
/// segment size (`None` when it holds one datagram).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendPart {
    pub bytes: Range<usize>,
    pub segment_size: Option<usize>,
}

/// How a batch of `len` bytes in datagrams of `segment_size` (the last
/// may be shorter) goes out in sends of at most `max_bytes`: each part
/// holds whole datagrams, as many as fit, and together they cover the
/// batch in order. A batch that fits is one part, unchanged.
pub fn send_parts(len: usize, segment_size: Option<usize>, max_bytes: usize) -> Vec<SendPart> {
    let Some(seg) = segment_size.filter(|&s| s > 0 && len > max_bytes) else {
        return vec![SendPart {
            bytes: 0..len,
            segment_size,
        }];
    };
    let per_part = (max_bytes / seg).max(1);
    let mut parts = Vec::with_capacity(len.div_ceil(seg * per_part));
    let mut start = 0;
    while start < len {
        let end = (start + seg * per_part).min(len);
        let datagrams = (end - start).div_ceil(seg);
        parts.push(SendPart {
            bytes: start..end,
            segment_size: (datagrams > 1).then_some(seg),
        });
        start = end;
    }
    parts
}

/// quinn's socket for the runtime, with batches over [`MAX_SEND_BYTES`]
/// split by [`send_parts`]; everything else is passed through.
pub struct BoundedSends {
    inner: Arc<dyn AsyncUdpSocket>,
}

impl BoundedSends {
    pub fn new(inner: Arc<dyn AsyncUdpSocket>) -> Arc<Self> {
        Arc::new(Self { inner })
    }
}

impl fmt::Debug for BoundedSends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BoundedSends").field(&self.inner).finish()
    }
}

impl AsyncUdpSocket for BoundedSends {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, t: &Transmit) -> io::Result<()> {
        if t.contents.len() <= MAX_SEND_BYTES {
            return self.inner.try_send(t);
        }
        let mut sent_any = false;
        for part in send_parts(t.contents.len(), t.segment_size, MAX_SEND_BYTES) {
            let sub = Transmit {
                destination: t.destination,
                ecn: t.ecn,
                contents: &t.contents[part.bytes],
                segment_size: part.segment_size,
                src_ip: t.src_ip,
            };
            match self.inner.try_send(&sub) {
                Ok(()) => sent_any = true,
                // quinn retries a transmit that would block from its start;
                // once part of it is out, the rest counts as lost instead
                // (QUIC retransmits it) rather than sending the first part
                // twice.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && sent_any => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.inner.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch that fits is one send as it was; one that does not is
    /// parts within the bound, each of whole datagrams (only the batch's
    /// last may be short), naming its segment size exactly when it holds
    /// more than one, together covering the batch in order.
    fn check(len: usize, seg: usize, max: usize) {
        let parts = send_parts(len, Some(seg), max);
        if len <= max {
            let whole = SendPart {
                bytes: 0..len,
                segment_size: Some(seg),
            };
            assert_eq!(
                parts,
                vec![whole],
                "{len}/{seg}: a batch that fits is left alone"
            );
            return;
        }
        let mut next = 0;
        for p in &parts {
            assert_eq!(p.bytes.start, next, "{len}/{seg}: parts in order, no gap");
            let n = p.bytes.len();
            assert!(n <= max.max(seg), "{len}/{seg}: part of {n} over {max}");
            let datagrams = n.div_ceil(seg);
            if p.bytes.end < len {
                assert_eq!(
                    n % seg,
                    0,
                    "{len}/{seg}: a part before the last is whole datagrams"
                );
            }
            assert_eq!(p.segment_size, (datagrams > 1).then_some(seg));
            next = p.bytes.end;
        }
        assert_eq!(next, len, "{len}/{seg}: the parts cover the batch");
    }

    #[test]
    fn a_batch_that_fits_is_sent_as_it_is() {
        assert_eq!(
            send_parts(12_000, Some(1_200), MAX_SEND_BYTES),
            vec![SendPart {
                bytes: 0..12_000,
                segment_size: Some(1_200)
            }]
        );
        assert_eq!(
            send_parts(65_000, None, MAX_SEND_BYTES),
            vec![SendPart {
                bytes: 0..65_000,
                segment_size: None
            }]
        );
    }

    #[test]
    fn ten_large_datagrams_go_out_in_sends_the_kernel_takes() {
        // The failure seen in the field: ten 6,670-byte datagrams in one
        // 66,700-byte send.
        let parts = send_parts(66_700, Some(6_670), MAX_SEND_BYTES);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].bytes, 0..60_030);
        assert_eq!(parts[1].bytes, 60_030..66_700);
        check(66_700, 6_670, MAX_SEND_BYTES);
    }

    #[test]
    fn datagrams_near_the_limit_go_one_per_send() {
        let parts = send_parts(3 * 40_000 - 5, Some(40_000), MAX_SEND_BYTES);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.segment_size.is_none()));
        check(3 * 40_000 - 5, 40_000, MAX_SEND_BYTES);
    }

    #[test]
    fn every_split_is_whole_in_order_and_bounded() {
        for seg in [1_200, 1_452, 6_553, 6_554, 9_000, 32_000, 65_507] {
            for count in 1..=10 {
                for short in [0, 1, seg / 2] {
                    let len = seg * count - short.min(seg - 1);
                    check(len, seg, MAX_SEND_BYTES);
                }
            }
        }
    }
}
