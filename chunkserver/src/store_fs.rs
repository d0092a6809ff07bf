//! The filesystem calls the chunk store makes, behind one small trait, so
//! that the simulation (`cairn-sim`) runs the real [`crate::store`] over a
//! simulated disk that loses unsynced writes, tears them, fills up and
//! fails reads. [`RealFs`] is the one the servers use: each call is the
//! `std::fs` call of the same name.
//!
//! Range reads ([`crate::store::open_for_random_reads`]) open chunk files
//! directly and are not routed through here: they change nothing on disk.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A file's size and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub len: u64,
    pub modified: SystemTime,
}

/// A file being written: created empty, then written and synced.
pub trait NewFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes the bytes written so far durable (fdatasync).
    fn sync_data(&mut self) -> io::Result<()>;
}

/// The filesystem under a chunk store. Names and error kinds are those of
/// `std::fs` (`NotFound`, `AlreadyExists`, raw `ENOSPC` and `EIO`).
pub trait StoreFs: Send + Sync {
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
    fn exists(&self, path: &Path) -> bool;
    /// The paths of a directory's entries.
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    fn stat(&self, path: &Path) -> io::Result<Stat>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Creates (or truncates) a file for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn NewFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes a directory's entries durable (fsync of the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Sets an existing file's modification time to now, durably.
    fn touch(&self, path: &Path) -> io::Result<()>;
}

/// The real filesystem.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

struct RealFile(fs::File);

impl NewFile for RealFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl StoreFs for RealFs {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir(dir)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir_all(dir)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect()
    }

    fn stat(&self, path: &Path) -> io::Result<Stat> {
        let m = fs::metadata(path)?;
        Ok(Stat {
            len: m.len(),
            modified: m.modified()?,
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn NewFile>> {
        Ok(Box::new(RealFile(fs::File::create(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        fs::File::open(dir)?.sync_all()
    }

    fn touch(&self, path: &Path) -> io::Result<()> {
        let f = fs::OpenOptions::new().write(true).open(path)?;
        f.set_modified(SystemTime::now())?;
        f.sync_all()
    }
}
