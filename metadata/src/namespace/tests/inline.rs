//! Tiny files' bytes kept inline: writes, reads, truncation, and the move
//! into chunks when a chunk write covers them.

use super::*;
use crate::command::CommandResult;
use cairn_proto::meta_rpc::{MAX_CREATE_SKEW_NS, MAX_INLINE, MAX_INODE_RESERVATION};

impl Ns {
    fn write_inline(&mut self, ino: InodeId, parts: &[(u64, &[u8])]) -> CommandResult {
        let now_ns = self.now;
        self.run(Command::Ns {
            write: NsWrite::WriteInline {
                ino,
                parts: parts.iter().map(|(o, d)| (*o, d.to_vec())).collect(),
            },
            now_ns,
        })
    }

    fn inline(&self, ino: InodeId) -> Option<Vec<u8>> {
        content(&self.kv, ino, 0, 100).unwrap().0
    }

    fn new_file(&mut self, name: &str) -> InodeId {
        self.create(InodeId::ROOT, name).unwrap().unwrap().ino
    }
}

#[test]
fn parts_land_in_the_inline_bytes_with_zeros_between() {
    let mut ns = Ns::new();
    let ino = ns.new_file("f");
    let a = ns.write_inline(ino, &[(0, b"hello")]).unwrap().unwrap();
    assert_eq!((a.size, ns.inline(ino).unwrap()), (5, b"hello".to_vec()));
    let b = ns
        .write_inline(ino, &[(1, b"E"), (8, b"!")])
        .unwrap()
        .unwrap();
    assert_eq!(b.size, 9);
    assert!(b.version > a.version);
    assert_eq!(ns.inline(ino).unwrap(), b"hEllo\0\0\0!".to_vec());
    // Extents are not there to read: an old reader is told, not fed zeros.
    let err = extents(&ns.kv, ino, 0, 10).expect_err("inline file");
    assert!(matches!(err, NsError::Refused(e) if e.code == ErrorCode::InlineData));
}

#[test]
fn too_big_or_chunked_files_are_refused_and_unchanged() {
    let mut ns = Ns::new();
    let ino = ns.new_file("f");
    ns.write_inline(ino, &[(0, b"abc")]).unwrap();
    let big = vec![1u8; MAX_INLINE as usize];
    assert_eq!(
        Ns::code(ns.write_inline(ino, &[(1, &big)])),
        ErrorCode::NotInline
    );
    assert_eq!(
        Ns::code(ns.write_inline(ino, &[(u64::MAX, b"x")])),
        ErrorCode::NotInline
    );
    assert_eq!(ns.inline(ino).unwrap(), b"abc".to_vec());

    let chunked = ns.new_file("g");
    ns.write_extent(chunked, 0, 10, 7).unwrap();
    assert_eq!(
        Ns::code(ns.write_inline(chunked, &[(0, b"x")])),
        ErrorCode::NotInline
    );
    let dir = ns.mkdir(InodeId::ROOT, "d").unwrap().unwrap().ino;
    assert_eq!(
        Ns::code(ns.write_inline(dir, &[(0, b"x")])),
        ErrorCode::IsADirectory
    );
}

#[test]
fn a_chunk_write_must_cover_the_inline_bytes_and_then_replaces_them() {
    let mut ns = Ns::new();
    let ino = ns.new_file("f");
    ns.write_inline(ino, &[(0, b"0123456789")]).unwrap();
    // Leaves bytes 0..4 inline-only: refused, nothing changes.
    assert_eq!(
        Ns::code(ns.write_extent(ino, 4, 100, 1)),
        ErrorCode::InlineData
    );
    assert_eq!(ns.inline(ino).unwrap().len(), 10);
    assert!(!chunks_exist(&ns.kv, &[ChunkId::of(&[1])]).unwrap()[0]);
    // Covers them: the chunk holds the file now.
    let a = ns.write_extent(ino, 0, 100, 2).unwrap().unwrap();
    assert_eq!(a.size, 100);
    let (inline, ext, _, _) = content(&ns.kv, ino, 0, 10).unwrap();
    assert_eq!((inline, ext.len()), (None, 1));
}

#[test]
fn truncation_cuts_inline_bytes_and_growth_reads_as_zeros() {
    let mut ns = Ns::new();
    let ino = ns.new_file("f");
    ns.write_inline(ino, &[(0, b"abcdef")]).unwrap();
    let set_size = |ns: &mut Ns, size| {
        let now_ns = ns.now;
        ns.run(Command::Ns {
            write: NsWrite::SetAttr {
                ino,
                change: AttrChange {
                    size: Some(size),
                    ..Default::default()
                },
            },
            now_ns,
        })
        .unwrap()
        .unwrap()
    };
    set_size(&mut ns, 2);
    assert_eq!(ns.inline(ino).unwrap(), b"ab".to_vec());
    // Growing keeps the bytes; the rest is a hole (zeros).
    assert_eq!(set_size(&mut ns, 1 << 20).size, 1 << 20);
    assert_eq!(ns.inline(ino).unwrap(), b"ab".to_vec());
    // Past MAX_INLINE now: more inline bytes are refused.
    assert_eq!(
        Ns::code(ns.write_inline(ino, &[(0, b"x")])),
        ErrorCode::NotInline
    );
    set_size(&mut ns, 0);
    assert_eq!(ns.inline(ino), None);
    // An empty file takes inline bytes again.
    ns.write_inline(ino, &[(0, b"z")]).unwrap();
    assert_eq!(ns.inline(ino).unwrap(), b"z".to_vec());
}

#[test]
fn removing_or_replacing_a_file_drops_its_inline_bytes() {
    let mut ns = Ns::new();
    let ino = ns.new_file("f");
    ns.write_inline(ino, &[(0, b"abc")]).unwrap();
    let now_ns = ns.now;
    ns.run(Command::Ns {
        write: NsWrite::Unlink {
            parent: InodeId::ROOT,
            name: "f".into(),
        },
        now_ns,
    })
    .unwrap();
    assert_eq!(ns.kv.get(Cf::Inline, &inode_key(ino)).unwrap(), None);

    let g = ns.new_file("g");
    ns.write_inline(g, &[(0, b"abc")]).unwrap();
    ns.commit(InodeId::ROOT, "g", &[(b"chunked", 7)]).unwrap();
    let (inline, ext, _, _) = content(&ns.kv, g, 0, 10).unwrap();
    assert_eq!((inline, ext.len()), (None, 1));
}

impl Ns {
    /// Sets `count` inode numbers aside, as the state machine does.
    fn reserve(&mut self, count: u32) -> Result<InodeId, NsError> {
        let mut t = Txn::new(&self.kv);
        let r = reserve_inodes(&mut t, count);
        let w = t.into_writes();
        self.kv.commit(w);
        r
    }

    fn create_with(&mut self, name: &str, ino: InodeId, bytes: &[u8]) -> CommandResult {
        let now_ns = self.now;
        self.create_with_at(name, ino, bytes, now_ns - 500)
    }

    fn create_with_at(
        &mut self,
        name: &str,
        ino: InodeId,
        bytes: &[u8],
        created_ns: i64,
    ) -> CommandResult {
        let now_ns = self.now;
        self.run(Command::Ns {
            write: NsWrite::CreateWith {
                parent: InodeId::ROOT,
                name: name.into(),
                owner: OWNER,
                ino,
                inline: bytes.to_vec(),
                created_ns,
            },
            now_ns,
        })
    }
}

#[test]
fn a_file_is_created_with_its_bytes_under_a_reserved_number() {
    let mut ns = Ns::new();
    let first = ns.reserve(3).unwrap();
    // Numbers handed out afterwards do not collide with the reservation.
    let other = ns.new_file("other");
    assert!(other.0 >= first.0 + 3, "{other} inside {first}+3");
    let a = ns
        .create_with("tiny", InodeId(first.0 + 1), b"hello")
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.ino, a.size, a.kind),
        (InodeId(first.0 + 1), 5, FileKind::File)
    );
    assert_eq!(ns.inline(a.ino).unwrap(), b"hello".to_vec());
    assert_eq!(lookup(&ns.kv, InodeId::ROOT, "tiny").unwrap().ino, a.ino);
    // Empty files keep no inline record.
    let e = ns.create_with("empty", first, b"").unwrap().unwrap();
    assert_eq!((e.size, ns.inline(e.ino)), (0, None));
    // The file's times are those the client gave (what its kernel was
    // told); the directory's are metadata's own.
    let now = ns.now;
    let c = ns
        .create_with_at("client-time", InodeId(first.0 + 2), b"", now - 7)
        .unwrap()
        .unwrap();
    assert_eq!(
        (c.mtime_ns, c.ctime_ns, c.atime_ns),
        (now - 7, now - 7, now - 7)
    );
    assert_eq!(get_attr(&ns.kv, InodeId::ROOT).unwrap().mtime_ns, now);
}

#[test]
fn a_creation_time_far_from_metadata_clock_is_not_recorded() {
    let mut ns = Ns::new();
    let first = ns.reserve(1).unwrap();
    let now = ns.now;
    let far = now - MAX_CREATE_SKEW_NS - 1;
    let a = ns.create_with_at("f", first, b"", far).unwrap().unwrap();
    assert_eq!((a.mtime_ns, a.ctime_ns), (now, now));
}

#[test]
fn numbers_not_reserved_or_in_use_and_taken_names_are_refused() {
    let mut ns = Ns::new();
    let first = ns.reserve(2).unwrap();
    let taken = ns.new_file("taken");
    assert_eq!(
        Ns::code(ns.create_with("x", InodeId(taken.0 + 100), b"")),
        ErrorCode::InvalidRequest,
        "never reserved"
    );
    assert_eq!(
        Ns::code(ns.create_with("x", taken, b"")),
        ErrorCode::InvalidRequest,
        "in use"
    );
    assert_eq!(
        Ns::code(ns.create_with("x", InodeId::ROOT, b"")),
        ErrorCode::InvalidRequest,
        "the root"
    );
    assert_eq!(
        Ns::code(ns.create_with("taken", first, b"")),
        ErrorCode::AlreadyExists
    );
    let big = vec![0u8; MAX_INLINE as usize + 1];
    assert_eq!(
        Ns::code(ns.create_with("big", first, &big)),
        ErrorCode::NotInline
    );
    // Nothing was left behind by the refusals.
    assert!(lookup(&ns.kv, InodeId::ROOT, "x").is_err());
    assert!(get_attr(&ns.kv, first).is_err());
    assert!(ns.reserve(0).is_err());
    assert!(ns.reserve(MAX_INODE_RESERVATION + 1).is_err());
}
