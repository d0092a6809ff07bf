//! The byte format of a state-machine snapshot, written and read as a
//! stream so that no snapshot is ever whole in memory.
//!
//! ```text
//! "CAIRNSNP" u32:version
//! { u8:column family (1-based index into Cf::ALL) u32:key len key u32:value len value }*
//! u8:0  (end of records)
//! [32]: BLAKE3 of every byte before it
//! ```
//!
//! Integers are little-endian. A reader checks every length against a
//! bound before allocating, and [`verify`] checks the whole stream (shape
//! and hash) before anything is installed from it: a damaged or truncated
//! snapshot is refused and changes nothing.

use std::io::{self, BufRead, Write};

use crate::kv::Cf;

const MAGIC: &[u8; 8] = b"CAIRNSNP";
const VERSION: u32 = 1;
/// Longest key a record may carry.
pub const MAX_KEY_LEN: usize = 64 * 1024;
/// Longest value a record may carry (a very large file's extent record).
pub const MAX_VALUE_LEN: usize = 64 * 1024 * 1024;

/// Why a snapshot stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("snapshot I/O: {0}")]
    Io(#[from] io::Error),
    #[error("not a Cairn snapshot (bad magic)")]
    Magic,
    #[error("snapshot format version {0} is not supported (this build reads {VERSION})")]
    Version(u32),
    #[error("snapshot names unknown column family #{0}")]
    UnknownCf(u8),
    #[error("snapshot record {what} length {len} exceeds {max}")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("snapshot checksum mismatch: the file is damaged")]
    Checksum,
    #[error("snapshot has bytes after its checksum")]
    Trailing,
}

/// Writes a snapshot stream: [`SnapshotWriter::record`] for each
/// state-machine record, then [`SnapshotWriter::finish`].
pub struct SnapshotWriter<W: Write> {
    out: W,
    hasher: blake3::Hasher,
}

impl<W: Write> SnapshotWriter<W> {
    pub fn new(out: W) -> io::Result<Self> {
        let mut w = SnapshotWriter {
            out,
            hasher: blake3::Hasher::new(),
        };
        w.put(MAGIC)?;
        w.put(&VERSION.to_le_bytes())?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.hasher.update(b);
        self.out.write_all(b)
    }

    pub fn record(&mut self, cf: Cf, key: &[u8], value: &[u8]) -> io::Result<()> {
        if key.len() > MAX_KEY_LEN || value.len() > MAX_VALUE_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "record in {} too large for a snapshot ({} byte key, {} byte value)",
                    cf.name(),
                    key.len(),
                    value.len()
                ),
            ));
        }
        self.put(&[cf_tag(cf)])?;
        self.put(&(key.len() as u32).to_le_bytes())?;
        self.put(key)?;
        self.put(&(value.len() as u32).to_le_bytes())?;
        self.put(value)
    }

    /// Ends the stream and returns the writer (flushed, not synced).
    pub fn finish(mut self) -> io::Result<W> {
        self.put(&[0])?;
        let hash = self.hasher.finalize();
        self.out.write_all(hash.as_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn cf_tag(cf: Cf) -> u8 {
    let i = Cf::ALL.iter().position(|c| *c == cf).unwrap_or(0);
    // Cf::ALL has 12 entries; position fits a u8 and 0 stays the end mark.
    (i + 1) as u8
}

/// One state-machine record: column family, key, value.
pub type Record = (Cf, Vec<u8>, Vec<u8>);

/// Reads a snapshot stream record by record, hashing as it goes.
pub struct SnapshotReader<R: BufRead> {
    input: R,
    hasher: blake3::Hasher,
    done: bool,
}

impl<R: BufRead> SnapshotReader<R> {
    pub fn new(input: R) -> Result<Self, FormatError> {
        let mut r = SnapshotReader {
            input,
            hasher: blake3::Hasher::new(),
            done: false,
        };
        let mut magic = [0u8; 8];
        r.take(&mut magic)?;
        if &magic != MAGIC {
            return Err(FormatError::Magic);
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(FormatError::Version(version));
        }
        Ok(r)
    }

    fn take(&mut self, buf: &mut [u8]) -> Result<(), FormatError> {
        self.input.read_exact(buf)?;
        self.hasher.update(buf);
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        let mut b = [0u8; 4];
        self.take(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn bytes(&mut self, what: &'static str, max: usize) -> Result<Vec<u8>, FormatError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(FormatError::TooLong { what, len, max });
        }
        let mut v = vec![0u8; len];
        self.take(&mut v)?;
        Ok(v)
    }

    /// The next record, or `None` after the last one once the checksum
    /// matched and nothing follows it.
    pub fn next_record(&mut self) -> Result<Option<Record>, FormatError> {
        if self.done {
            return Ok(None);
        }
        let mut tag = [0u8; 1];
        self.take(&mut tag)?;
        if tag[0] == 0 {
            self.done = true;
            let mut hash = [0u8; 32];
            self.input.read_exact(&mut hash)?;
            if self.hasher.finalize() != blake3::Hash::from(hash) {
                return Err(FormatError::Checksum);
            }
            if !self.input.fill_buf()?.is_empty() {
                return Err(FormatError::Trailing);
            }
            return Ok(None);
        }
        let cf = *Cf::ALL
            .get(usize::from(tag[0]) - 1)
            .ok_or(FormatError::UnknownCf(tag[0]))?;
        let key = self.bytes("key", MAX_KEY_LEN)?;
        let value = self.bytes("value", MAX_VALUE_LEN)?;
        Ok(Some((cf, key, value)))
    }
}

/// Reads a whole stream without keeping it: Ok only if it is well formed
/// and its checksum matches. Returns the number of records.
pub fn verify<R: BufRead>(input: R) -> Result<u64, FormatError> {
    let mut r = SnapshotReader::new(input)?;
    let mut n = 0;
    while r.next_record()?.is_some() {
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = SnapshotWriter::new(Vec::new()).unwrap();
        w.record(Cf::Inodes, b"k1", b"v1").unwrap();
        w.record(Cf::Sessions, b"", b"").unwrap();
        w.record(Cf::SmMeta, b"last_applied", &[7u8; 1000]).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn records_come_back_in_order() {
        let bytes = sample();
        let mut r = SnapshotReader::new(&bytes[..]).unwrap();
        let mut got = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            got.push(rec);
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (Cf::Inodes, b"k1".to_vec(), b"v1".to_vec()));
        assert_eq!(got[1], (Cf::Sessions, vec![], vec![]));
        assert_eq!(got[2].0, Cf::SmMeta);
        assert_eq!(got[2].2, vec![7u8; 1000]);
        assert_eq!(verify(&bytes[..]).unwrap(), 3);
    }

    #[test]
    fn any_flipped_byte_is_refused() {
        let bytes = sample();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(verify(&bad[..]).is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn truncation_and_trailing_bytes_are_refused() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(verify(&bytes[..cut]).is_err(), "cut at {cut} accepted");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(verify(&longer[..]), Err(FormatError::Trailing)));
    }

    #[test]
    fn a_huge_length_is_refused_before_allocating() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.push(1);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            verify(&bytes[..]),
            Err(FormatError::TooLong { what: "key", .. })
        ));
    }
}
