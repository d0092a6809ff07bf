//! `cairn init` (a cluster CA) and `cairn cert issue|show`.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use cairn::ca::{CertificateAuthority, Validity};
use cairn_net::tls::CertInfo;
use cairn_proto::identity::Role;
use serde::Serialize;

use crate::cluster_files::write_new_file;

/// The CA's files in the directory `cairn init` made.
fn ca_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("ca.pem"), dir.join("ca.key"))
}

#[derive(Serialize)]
struct Written {
    cert: PathBuf,
    key: PathBuf,
    not_after: i64,
}

fn print_written(what: &str, w: &Written, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(w)?);
    } else {
        println!("{what}");
        println!("  certificate  {}", w.cert.display());
        println!("  private key  {} (0600)", w.key.display());
        println!("  valid until  {}", utc(w.not_after));
    }
    Ok(())
}

/// `cairn init DIR`: a new cluster CA.
pub fn init(dir: &Path, days: u32, json: bool) -> anyhow::Result<()> {
    let (cert, key) = ca_paths(dir);
    if key.exists() || cert.exists() {
        bail!(
            "{} already holds a cluster CA; issue certificates with `cairn cert issue --ca-dir {}`",
            dir.display(),
            dir.display()
        );
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let ca =
        CertificateAuthority::generate(Validity::days(days)).context("creating the cluster CA")?;
    write_new_file(&key, &ca.key_pem, true)?;
    write_new_file(&cert, &ca.cert_pem, false)?;
    let info = CertInfo::read(&ca.cert_pem, None)?;
    print_written(
        &format!("created a cluster CA in {}", dir.display()),
        &Written {
            cert,
            key,
            not_after: info.not_after,
        },
        json,
    )
}

/// `cairn cert issue`: a certificate for one server or client.
pub fn issue(
    ca_dir: &Path,
    out: Option<&Path>,
    role: Role,
    name: &str,
    days: u32,
    json: bool,
) -> anyhow::Result<()> {
    cairn_proto::identity::validate_cert_name(name)?;
    let (ca_cert, ca_key) = ca_paths(ca_dir);
    let read = |p: &Path| {
        fs::read_to_string(p).with_context(|| {
            format!(
                "reading {} (run `cairn init DIR` first, and pass --ca-dir DIR)",
                p.display()
            )
        })
    };
    let ca = CertificateAuthority {
        cert_pem: read(&ca_cert)?,
        key_pem: read(&ca_key)?,
    };
    let out = out.unwrap_or(ca_dir);
    let cert = out.join(format!("{name}.pem"));
    let key = out.join(format!("{name}.key"));
    for p in [&cert, &key] {
        if p.exists() {
            bail!("{} exists; remove it first to issue a new one", p.display());
        }
    }
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let (cert_pem, key_pem) = ca
        .issue(role, name, Validity::days(days))
        .with_context(|| format!("issuing a {role} certificate for {name}"))?;
    write_new_file(&key, &key_pem, true)?;
    write_new_file(&cert, &cert_pem, false)?;
    let info = CertInfo::read(&cert_pem, None)?;
    print_written(
        &format!("issued a {role} certificate for {name:?}"),
        &Written {
            cert,
            key,
            not_after: info.not_after,
        },
        json,
    )
}

/// `cairn cert show FILE`.
pub fn show(file: &Path, ca_dir: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let pem = fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let ca_pem = match ca_dir {
        Some(dir) => {
            let p = ca_paths(dir).0;
            Some(fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => None,
    };
    let info = CertInfo::read(&pem, ca_pem.as_deref())
        .with_context(|| format!("reading {}", file.display()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let valid_now = info.not_before <= now && now <= info.not_after;
    if json {
        #[derive(Serialize)]
        struct Shown<'a> {
            #[serde(flatten)]
            info: &'a CertInfo,
            valid_now: bool,
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&Shown {
                info: &info,
                valid_now
            })?
        );
        return Ok(());
    }
    let role = match (info.is_ca, info.role) {
        (true, _) => "cluster CA".to_string(),
        (false, Some(r)) => r.to_string(),
        (false, None) => "none (servers refuse it)".to_string(),
    };
    println!("name         {}", info.name);
    println!("role         {role}");
    println!("issuer       {}", info.issuer);
    println!("valid from   {}", utc(info.not_before));
    println!(
        "valid until  {}{}",
        utc(info.not_after),
        if valid_now { "" } else { "  (NOT VALID NOW)" }
    );
    if let Some(signed) = info.signed_by_ca {
        println!(
            "signed by CA {}",
            if signed {
                "yes"
            } else {
                "NO (servers refuse it)"
            }
        );
    }
    Ok(())
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn dates_print_as_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_998_645), "2026-11-30 00:30:45 UTC");
    }
}
