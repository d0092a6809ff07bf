//! Client commands on files and directories: put, get, ls, mkdir, rm, mv, stat.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use cairn_client::Client;
use cairn_proto::meta_rpc::DirEntryPlus;
use cairn_proto::meta_rpc::{FileKind, InodeAttr};
use cairn_proto::ErrorCode;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::cli::ClusterArgs;
use crate::locate::client_config;
use crate::owners::OwnerNames;

pub async fn connect(args: &ClusterArgs) -> anyhow::Result<Client> {
    let mut cfg = client_config(args.config.as_deref())?;
    cfg.follower_reads |= args.follower_reads;
    Ok(Client::connect(cfg).await?)
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
fn progress(len: Option<u64>, verb: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("template is valid")
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{msg} {spinner} {bytes} {bytes_per_sec}")
                .expect("template is valid"),
        ),
    };
    pb.set_message(verb.to_string());
    pb
}

fn base_name(p: &str) -> Option<&str> {
    p.rsplit('/').find(|s| !s.is_empty())
}

fn join_remote(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

pub async fn put(args: &ClusterArgs, local: &Path, remote: &str) -> anyhow::Result<()> {
    let client = connect(args).await?;
    let stdin = local == Path::new("-");
    let mut target = remote.to_string();
    let into_dir = remote.ends_with('/')
        || matches!(client.stat(remote).await, Ok(a) if a.kind == FileKind::Dir);
    if into_dir {
        let name = if stdin {
            None
        } else {
            local.file_name().and_then(|n| n.to_str())
        };
        let Some(name) = name else {
            bail!("{remote} is a directory; give the full remote path for the data");
        };
        target = join_remote(remote, name);
    }
    let attr = if stdin {
        let pb = progress(None, "put");
        let r = client
            .put(&target, pb.wrap_async_read(tokio::io::stdin()))
            .await;
        pb.finish_and_clear();
        r?
    } else {
        let f = tokio::fs::File::open(local)
            .await
            .with_context(|| format!("opening {}", local.display()))?;
        let meta = f.metadata().await?;
        if meta.is_dir() {
            bail!("{} is a directory (put uploads one file)", local.display());
        }
        let pb = progress(Some(meta.len()), "put");
        let r = client.put(&target, pb.wrap_async_read(f)).await;
        pb.finish_and_clear();
        r?
    };
    tracing::info!(path = %target, size = attr.size, "stored");
    Ok(())
}

pub async fn get(args: &ClusterArgs, remote: &str, local: &Path) -> anyhow::Result<()> {
    let client = connect(args).await?;
    let attr = client.stat(remote).await?;
    if attr.kind == FileKind::Dir {
        bail!("{remote}: is a directory");
    }
    if local == Path::new("-") {
        let pb = progress(Some(attr.size), "get");
        let mut out = pb.wrap_async_write(tokio::io::stdout());
        let r = client.get(remote, &mut out).await;
        pb.finish_and_clear();
        r?;
        return Ok(());
    }
    let mut dest: PathBuf = local.to_path_buf();
    if dest.is_dir() {
        let name = base_name(remote).context("remote path has no file name")?;
        dest = dest.join(name);
    }
    // Download beside the destination, then rename: a failed get leaves no
    // partial file under the real name.
    let file_name = dest
        .file_name()
        .context("local path has no file name")?
        .to_string_lossy()
        .into_owned();
    let part = dest.with_file_name(format!(".{file_name}.cairn-part"));
    let f = tokio::fs::File::create(&part)
        .await
        .with_context(|| format!("creating {}", part.display()))?;
    let sync_handle = f.try_clone().await?;
    let pb = progress(Some(attr.size), "get");
    let mut out = pb.wrap_async_write(tokio::io::BufWriter::with_capacity(1 << 20, f));
    let r = client.get(remote, &mut out).await;
    pb.finish_and_clear();
    let finish = async {
        r?;
        out.flush().await?;
        sync_handle.sync_all().await?;
        tokio::fs::rename(&part, &dest)
            .await
            .with_context(|| format!("renaming into {}", dest.display()))
    };
    if let Err(e) = finish.await {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    Ok(())
}

pub async fn ls(args: &ClusterArgs, path: &str, long: bool, json: bool) -> anyhow::Result<()> {
    let client = connect(args).await?;
    if json {
        let entries: Vec<EntryInfo> = client
            .list_long(path)
            .await?
            .into_iter()
            .map(EntryInfo::from)
            .collect();
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    if long {
        let mut owners = OwnerNames::default();
        for e in client.list_long(path).await? {
            println!("{}", long_line(&EntryInfo::from(e), &mut owners));
        }
        return Ok(());
    }
    let attr = client.stat(path).await?;
    if attr.kind != FileKind::Dir {
        println!("{}", base_name(path).unwrap_or(path));
        return Ok(());
    }
    for e in client.list(path).await? {
        let slash = if e.kind == FileKind::Dir { "/" } else { "" };
        println!("{}{slash}", e.name);
    }
    Ok(())
}

fn mode_string(kind: FileKind, mode: u32) -> String {
    let t = match kind {
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::File => '-',
        FileKind::Fifo => 'p',
        FileKind::Socket => 's',
    };
    let mut s = String::from(t);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn time_string(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (UTC).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A directory entry with its attributes, as `cairn ls -l` prints it and
/// `cairn ls --json` writes it (a stable shape for scripts).
#[derive(Clone, Debug, Serialize)]
pub struct EntryInfo {
    pub name: String,
    pub kind: FileKind,
    pub ino: u64,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime_ns: i64,
}

impl From<DirEntryPlus> for EntryInfo {
    fn from(DirEntryPlus { name, attr: a }: DirEntryPlus) -> Self {
        EntryInfo {
            name,
            kind: a.kind,
            ino: a.ino.0,
            size: a.size,
            mode: a.mode,
            uid: a.uid,
            gid: a.gid,
            nlink: a.nlink,
            mtime_ns: a.mtime_ns,
        }
    }
}

fn long_line(e: &EntryInfo, owners: &mut OwnerNames) -> String {
    let user = owners.user(e.uid).to_string();
    format!(
        "{} {:>3} {:>8} {:>8} {:>12} {} {}",
        mode_string(e.kind, e.mode),
        e.nlink,
        user,
        owners.group(e.gid),
        e.size,
        time_string(e.mtime_ns),
        e.name
    )
}

pub async fn mkdir(args: &ClusterArgs, paths: &[String], parents: bool) -> anyhow::Result<()> {
    let client = connect(args).await?;
    for p in paths {
        client
            .mkdir(p, parents)
            .await
            .with_context(|| format!("mkdir {p}"))?;
    }
    Ok(())
}

pub async fn rm(args: &ClusterArgs, paths: &[String], recursive: bool) -> anyhow::Result<()> {
    let client = connect(args).await?;
    for p in paths {
        match client.remove(p, recursive).await {
            Ok(()) => {}
            Err(e) if e.code() == Some(ErrorCode::NotEmpty) => {
                bail!("rm {p}: directory not empty (use -r to remove it and its contents)")
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("rm {p}"))),
        }
    }
    Ok(())
}

pub async fn mv(args: &ClusterArgs, src: &str, dst: &str) -> anyhow::Result<()> {
    let client = connect(args).await?;
    let mut target = dst.to_string();
    if let Ok(a) = client.stat(dst).await {
        if a.kind == FileKind::Dir {
            let src_attr = client.stat(src).await?;
            if src_attr.ino != a.ino {
                let name = base_name(src).context("source has no name")?;
                target = join_remote(dst, name);
            }
        }
    }
    client
        .rename(src, &target)
        .await
        .with_context(|| format!("mv {src} {target}"))?;
    Ok(())
}

pub async fn stat(args: &ClusterArgs, path: &str, json: bool) -> anyhow::Result<()> {
    let client = connect(args).await?;
    let a: InodeAttr = client.stat(path).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&a)?);
        return Ok(());
    }
    println!("  Path: {path}");
    println!("  Type: {:?}", a.kind);
    println!("  Size: {}", a.size);
    println!(" Inode: {}", a.ino);
    println!(" Links: {}", a.nlink);
    println!("  Mode: {} ({:04o})", mode_string(a.kind, a.mode), a.mode);
    let mut owners = OwnerNames::default();
    let user = owners.user(a.uid).to_string();
    println!(
        " Owner: uid {} ({user}) gid {} ({})",
        a.uid,
        a.gid,
        owners.group(a.gid)
    );
    println!("Modify: {} UTC", time_string(a.mtime_ns));
    println!("Change: {} UTC", time_string(a.ctime_ns));
    println!("Version: {}", a.version);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(mode_string(FileKind::Dir, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(FileKind::File, 0o640), "-rw-r-----");
        assert_eq!(time_string(0), "1970-01-01 00:00");
        assert_eq!(time_string(1_700_000_000_000_000_000), "2023-11-14 22:13");
        assert_eq!(base_name("/a/b/"), Some("b"));
        assert_eq!(join_remote("/d/", "f"), "/d/f");
    }
}
