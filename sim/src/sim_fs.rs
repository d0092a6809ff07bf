//! A simulated filesystem under the real chunk store
//! (`cairn_chunkserver::store`, through its `StoreFs` trait) that keeps
//! what a real disk keeps and loses what a real one may lose.
//!
//! Two views are kept. The *live* view is what the running process sees.
//! The *durable* one is what a power cut is sure to leave: a file's bytes
//! become durable when the file is synced, a directory's entries (creates,
//! renames, removes in it) when the directory is synced. On [`SimFs::crash`]
//! every change not yet durable independently survives or not; a file
//! written and not synced comes back whole, empty of the new bytes, or torn
//! (a prefix of them, then zeros); an entry whose directory did not survive
//! goes with it. The disk also fills ([`SimFs::set_full`]: file creates
//! and writes fail with `ENOSPC`; directories take no room here), rots and fails reads (`EIO`), and can be set
//! to kill its process after a number of calls ([`SimFs::die_after`]) so a
//! crash lands inside a put rather than between two.
//!
//! About 600 lines because both views and every `StoreFs` call that moves
//! bytes between them must stay in one place to stay consistent; its tests
//! (the crash cases) are most of the rest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_chunkserver::store_fs::{NewFile, Stat, StoreFs};
use rand::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Dir,
    File(u64),
}

/// A directory tree: each directory's entries by name.
#[derive(Clone, Debug)]
struct Tree(HashMap<PathBuf, BTreeMap<OsString, Node>>);

impl Tree {
    fn new() -> Self {
        Tree(HashMap::from([(PathBuf::from("/"), BTreeMap::new())]))
    }

    fn get(&self, p: &Path) -> Option<Node> {
        match (p.parent(), p.file_name()) {
            (Some(dir), Some(name)) => self.0.get(dir)?.get(name).copied(),
            _ => Some(Node::Dir),
        }
    }

    fn is_dir(&self, p: &Path) -> bool {
        self.0.contains_key(p)
    }

    /// Sets `p`'s entry in its directory (which must exist).
    fn set(&mut self, p: &Path, node: Option<Node>) {
        let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
            return;
        };
        if self.get(p) == Some(Node::Dir) && node != Some(Node::Dir) {
            self.0.retain(|d, _| !d.starts_with(p));
        }
        let Some(entries) = self.0.get_mut(dir) else {
            return;
        };
        match node {
            Some(n) => {
                entries.insert(name.to_os_string(), n);
                if n == Node::Dir {
                    self.0.entry(p.to_path_buf()).or_default();
                }
            }
            None => {
                entries.remove(name);
            }
        }
    }

    fn children(&self, dir: &Path) -> Vec<PathBuf> {
        self.0
            .get(dir)
            .map(|e| e.keys().map(|n| dir.join(n)).collect())
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug)]
struct Inode {
    data: Vec<u8>,
    mtime: SystemTime,
    /// What a crash is sure to leave of `data` and `mtime`.
    synced: Vec<u8>,
    synced_mtime: SystemTime,
    unreadable: bool,
}

#[derive(Debug)]
struct State {
    now: SystemTime,
    live: Tree,
    /// Per directory, its entries as of its last sync (a directory never
    /// synced has none here).
    durable: HashMap<PathBuf, BTreeMap<OsString, Node>>,
    inodes: BTreeMap<u64, Inode>,
    next_ino: u64,
    full: bool,
    /// Calls left before the process dies; `dead` once it has.
    calls_left: Option<u32>,
    dead: bool,
}

/// One simulated disk; clones share it.
#[derive(Clone, Debug)]
pub struct SimFs(Arc<Mutex<State>>);

fn no_space() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, p.display().to_string())
}

impl Default for SimFs {
    fn default() -> Self {
        SimFs(Arc::new(Mutex::new(State {
            now: UNIX_EPOCH,
            live: Tree::new(),
            durable: HashMap::new(),
            inodes: BTreeMap::new(),
            next_ino: 1,
            full: false,
            calls_left: None,
            dead: false,
        })))
    }
}

impl State {
    /// Counts one call; fails every call once the process has died.
    fn call(&mut self) -> io::Result<()> {
        if let Some(left) = self.calls_left.as_mut() {
            if *left == 0 {
                self.dead = true;
            } else {
                *left -= 1;
            }
        }
        if self.dead {
            return Err(io::Error::other("the process has died"));
        }
        Ok(())
    }

    fn is_dir(&self, p: &Path) -> bool {
        self.live.is_dir(p)
    }

    fn parent_is_dir(&self, p: &Path) -> io::Result<()> {
        match p.parent() {
            Some(parent) if self.is_dir(parent) => Ok(()),
            _ => Err(not_found(p)),
        }
    }

    fn dir(&self, p: &Path) -> io::Result<()> {
        if self.is_dir(p) {
            Ok(())
        } else {
            Err(not_found(p))
        }
    }

    fn file(&self, p: &Path) -> io::Result<u64> {
        match self.live.get(p) {
            Some(Node::File(ino)) => Ok(ino),
            _ => Err(not_found(p)),
        }
    }

    fn children(&self, dir: &Path) -> Vec<PathBuf> {
        self.live.children(dir)
    }
}

impl SimFs {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock is still whole.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state, for one call of the process (failing once it has died).
    fn call(&self) -> io::Result<MutexGuard<'_, State>> {
        let mut s = self.state();
        s.call()?;
        Ok(s)
    }

    /// Sets the clock new modification times are stamped with (ns since
    /// the epoch, by the holder's possibly skewed clock).
    pub fn set_now(&self, now_ns: i64) {
        self.state().now = UNIX_EPOCH + Duration::from_nanos(now_ns.max(0) as u64);
    }

    pub fn set_full(&self, full: bool) {
        self.state().full = full;
    }

    /// The process dies on its `calls`-th next call: that call and every
    /// one after fail until [`Self::crash`].
    pub fn die_after(&self, calls: u32) {
        self.state().calls_left = Some(calls);
    }

    pub fn has_died(&self) -> bool {
        self.state().dead
    }

    /// The process is killed but the machine stays up: the page cache
    /// keeps every write, and the next process may use the disk.
    pub fn restart(&self) {
        let mut s = self.state();
        s.calls_left = None;
        s.dead = false;
    }

    /// A file's bytes as they are now, without failing for `EIO` (for the
    /// checker: what a reader would get if the sector read).
    pub fn peek(&self, p: &Path) -> Option<Vec<u8>> {
        let s = self.state();
        let ino = s.file(p).ok()?;
        Some(s.inodes[&ino].data.clone())
    }

    /// Every file under `dir`, at any depth (for the checker: not a call
    /// of the process).
    pub fn files_under(&self, dir: &Path) -> Vec<PathBuf> {
        let s = self.state();
        let mut out = Vec::new();
        let mut dirs = vec![dir.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for p in s.live.children(&d) {
                match s.live.get(&p) {
                    Some(Node::Dir) => dirs.push(p),
                    Some(Node::File(_)) => out.push(p),
                    None => {}
                }
            }
        }
        out.sort();
        out
    }

    pub fn is_unreadable(&self, p: &Path) -> bool {
        let s = self.state();
        s.file(p).is_ok_and(|ino| s.inodes[&ino].unreadable)
    }

    /// Flips a byte of a stored file, on the platter too.
    pub fn rot(&self, p: &Path) {
        let mut s = self.state();
        if let Ok(ino) = s.file(p) {
            let i = s.inodes.get_mut(&ino).expect("live files have inodes");
            for bytes in [&mut i.data, &mut i.synced] {
                if let Some(b) = bytes.first_mut() {
                    *b ^= 0x40;
                }
            }
        }
    }

    /// Makes a file's reads fail with `EIO` from now on.
    pub fn break_sector(&self, p: &Path) {
        let mut s = self.state();
        if let Ok(ino) = s.file(p) {
            s.inodes
                .get_mut(&ino)
                .expect("live files have inodes")
                .unreadable = true;
        }
    }

    /// The power goes: every change not yet durable survives or not, at
    /// random; afterwards the disk holds exactly what survived, and the
    /// next process may use it.
    pub fn crash(&self, rng: &mut impl Rng) {
        let mut s = self.state();
        let mut dirs: Vec<PathBuf> = s.live.0.keys().cloned().collect();
        dirs.extend(s.durable.keys().cloned());
        dirs.sort();
        dirs.dedup();
        let mut left = Tree::new();
        // Parents sort before their children, so a directory's own entry
        // is settled before its entries are: those of a directory that did
        // not survive go with it.
        for dir in dirs {
            if !left.is_dir(&dir) {
                continue;
            }
            let live = s.live.0.get(&dir).cloned().unwrap_or_default();
            let durable = s.durable.get(&dir).cloned().unwrap_or_default();
            let mut names: Vec<&OsString> = live.keys().chain(durable.keys()).collect();
            names.sort();
            names.dedup();
            for name in names {
                let (l, d) = (live.get(name).copied(), durable.get(name).copied());
                let kept = if l == d || rng.random_bool(0.5) { l } else { d };
                left.set(&dir.join(name), kept);
            }
        }
        let referenced: BTreeSet<u64> = left
            .0
            .values()
            .flat_map(|entries| entries.values())
            .filter_map(|n| match n {
                Node::File(ino) => Some(*ino),
                Node::Dir => None,
            })
            .collect();
        s.inodes.retain(|ino, _| referenced.contains(ino));
        for i in s.inodes.values_mut() {
            if i.data != i.synced {
                i.data = match rng.random_range(0..3) {
                    0 => i.synced.clone(),
                    1 => i.data.clone(),
                    _ => {
                        // Torn: some of the new bytes reached the platter,
                        // the file's length may say more did.
                        let written = rng.random_range(0..=i.data.len());
                        let len = rng.random_range(written..=i.data.len());
                        let mut torn = i.data[..written].to_vec();
                        torn.resize(len, 0);
                        torn
                    }
                };
                i.synced = i.data.clone();
            }
            if i.mtime != i.synced_mtime && rng.random_bool(0.5) {
                i.mtime = i.synced_mtime;
            }
            i.synced_mtime = i.mtime;
        }
        s.durable = left.0.clone();
        s.live = left;
        s.calls_left = None;
        s.dead = false;
    }
}

struct SimFile {
    fs: SimFs,
    ino: u64,
}

impl NewFile for SimFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let mut s = self.fs.call()?;
        if s.full {
            return Err(no_space());
        }
        let now = s.now;
        let i = s
            .inodes
            .get_mut(&self.ino)
            .ok_or_else(|| io::Error::other("file gone"))?;
        i.data.extend_from_slice(data);
        i.mtime = now;
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut s = self.fs.call()?;
        let i = s
            .inodes
            .get_mut(&self.ino)
            .ok_or_else(|| io::Error::other("file gone"))?;
        i.synced = i.data.clone();
        i.synced_mtime = i.mtime;
        Ok(())
    }
}

impl StoreFs for SimFs {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.call()?;
        s.parent_is_dir(dir)?;
        if s.live.get(dir).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                dir.display().to_string(),
            ));
        }
        s.live.set(dir, Some(Node::Dir));
        Ok(())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.call()?;
        let mut missing: Vec<&Path> = dir.ancestors().take_while(|d| !s.is_dir(d)).collect();
        missing.reverse();
        for d in missing {
            if s.live.get(d).is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} is a file", d.display()),
                ));
            }
            s.live.set(d, Some(Node::Dir));
        }
        Ok(())
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.call()?;
        s.dir(dir)?;
        s.live.set(dir, None);
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let s = self.state();
        s.live.get(path).is_some()
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let s = self.call()?;
        s.dir(dir)?;
        Ok(s.children(dir))
    }

    fn stat(&self, path: &Path) -> io::Result<Stat> {
        let s = self.call()?;
        match s.live.get(path) {
            Some(Node::File(ino)) => {
                let i = &s.inodes[&ino];
                Ok(Stat {
                    len: i.data.len() as u64,
                    modified: i.mtime,
                })
            }
            Some(Node::Dir) => Ok(Stat {
                len: 0,
                modified: s.now,
            }),
            None => Err(not_found(path)),
        }
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.call()?;
        let i = &s.inodes[&s.file(path)?];
        if i.unreadable {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(i.data.clone())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn NewFile>> {
        let mut s = self.call()?;
        s.parent_is_dir(path)?;
        if s.full {
            return Err(no_space());
        }
        let ino = s.next_ino;
        s.next_ino += 1;
        let now = s.now;
        s.inodes.insert(
            ino,
            Inode {
                data: Vec::new(),
                mtime: now,
                synced: Vec::new(),
                synced_mtime: now,
                unreadable: false,
            },
        );
        s.live.set(path, Some(Node::File(ino)));
        Ok(Box::new(SimFile {
            fs: self.clone(),
            ino,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.call()?;
        let ino = s.file(from)?;
        s.parent_is_dir(to)?;
        s.live.set(from, None);
        s.live.set(to, Some(Node::File(ino)));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.call()?;
        s.file(path)?;
        s.live.set(path, None);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.call()?;
        s.dir(dir)?;
        let entries = s.live.0.get(dir).cloned().unwrap_or_default();
        s.durable.insert(dir.to_path_buf(), entries);
        Ok(())
    }

    fn touch(&self, path: &Path) -> io::Result<()> {
        let mut s = self.call()?;
        let ino = s.file(path)?;
        let now = s.now;
        let i = s.inodes.get_mut(&ino).expect("live files have inodes");
        i.mtime = now;
        i.synced = i.data.clone();
        i.synced_mtime = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn write(fs: &SimFs, p: &str, data: &[u8], sync: bool) {
        let mut f = fs.create(Path::new(p)).unwrap();
        f.write_all(data).unwrap();
        if sync {
            f.sync_data().unwrap();
        }
    }

    #[test]
    fn what_was_synced_survives_every_crash() {
        for seed in 0..50 {
            let fs = SimFs::default();
            fs.create_dir_all(Path::new("/d/a")).unwrap();
            fs.sync_dir(Path::new("/")).unwrap();
            fs.sync_dir(Path::new("/d")).unwrap();
            write(&fs, "/d/a/x", b"hello", true);
            fs.sync_dir(Path::new("/d/a")).unwrap();
            fs.crash(&mut StdRng::seed_from_u64(seed));
            assert_eq!(fs.read(Path::new("/d/a/x")).unwrap(), b"hello");
        }
    }

    #[test]
    fn what_was_not_synced_is_lost_or_torn_on_some_crash() {
        let (mut name_lost, mut torn, mut dir_lost) = (false, false, false);
        for seed in 0..200 {
            let fs = SimFs::default();
            fs.create_dir_all(Path::new("/d")).unwrap();
            fs.sync_dir(Path::new("/")).unwrap();
            // The name synced, the bytes not.
            write(&fs, "/d/bytes", b"0123456789", false);
            fs.sync_dir(Path::new("/d")).unwrap();
            // The bytes synced, the name not.
            write(&fs, "/d/named", b"whole", true);
            // A directory never synced into its parent.
            fs.create_dir(Path::new("/d/new")).unwrap();
            write(&fs, "/d/new/f", b"x", true);
            fs.sync_dir(Path::new("/d/new")).unwrap();
            fs.crash(&mut StdRng::seed_from_u64(seed));
            name_lost |= !fs.exists(Path::new("/d/named"));
            let bytes = fs.read(Path::new("/d/bytes")).unwrap();
            torn |= !bytes.is_empty() && bytes != b"0123456789";
            dir_lost |= !fs.exists(Path::new("/d/new/f"));
            assert!(fs.exists(Path::new("/d/bytes")), "a synced name survives");
        }
        assert!(
            name_lost && torn && dir_lost,
            "{name_lost} {torn} {dir_lost}"
        );
    }

    #[test]
    fn a_dying_process_fails_every_call_until_the_crash() {
        let fs = SimFs::default();
        fs.die_after(1);
        fs.create_dir_all(Path::new("/d")).unwrap();
        assert!(fs.create(Path::new("/d/f")).is_err());
        assert!(fs.has_died());
        assert!(fs.read_dir(Path::new("/d")).is_err());
        fs.crash(&mut StdRng::seed_from_u64(1));
        assert!(!fs.has_died());
        assert!(fs.read_dir(Path::new("/")).is_ok());
    }

    #[test]
    fn a_full_disk_refuses_new_files_and_eio_fails_reads() {
        let fs = SimFs::default();
        write(&fs, "/f", b"abc", true);
        fs.set_full(true);
        assert_eq!(
            fs.create(Path::new("/g"))
                .err()
                .and_then(|e| e.raw_os_error()),
            Some(libc::ENOSPC)
        );
        fs.break_sector(Path::new("/f"));
        assert_eq!(
            fs.read(Path::new("/f"))
                .err()
                .and_then(|e| e.raw_os_error()),
            Some(libc::EIO)
        );
        assert_eq!(fs.peek(Path::new("/f")).unwrap(), b"abc");
    }
}
