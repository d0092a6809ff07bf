//! The real S3 clients the gateway's tests drive (boto3 and the aws cli,
//! from PyPI, in a virtualenv `scripts/test` makes), pointed at a
//! [`DevCluster`]'s gateway.

use std::path::PathBuf;
use std::process::{Command, Output};

use anyhow::{bail, Context};

use crate::DevCluster;

/// The virtualenv holding boto3 and awscli: `$CAIRN_S3_CLIENTS`, else
/// `~/.cache/cairn/s3-clients`.
pub fn venv() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("CAIRN_S3_CLIENTS") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("HOME")?).join(".cache/cairn/s3-clients")
        }
    };
    if !dir.join("bin/aws").exists() || !dir.join("bin/python").exists() {
        bail!(
            "no S3 clients in {} (scripts/test installs boto3 and awscli there)",
            dir.display()
        );
    }
    Ok(dir)
}

/// The gateway's endpoint and credentials, as the AWS tools read them.
pub fn env(cluster: &DevCluster) -> anyhow::Result<Vec<(String, String)>> {
    let cfg = cairn_s3::GatewayConfig::load(&cluster.dir().join("s3.toml"))?;
    let key = cfg.access_keys.first().context("the gateway has no key")?;
    Ok(vec![
        ("AWS_ENDPOINT_URL".into(), format!("http://{}", cfg.listen)),
        ("AWS_ACCESS_KEY_ID".into(), key.id.clone()),
        ("AWS_SECRET_ACCESS_KEY".into(), key.secret.clone()),
        ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        // Nothing from the machine's own AWS setup.
        ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()),
    ])
}

/// Runs `program` (a name in the virtualenv's `bin/`) with the gateway's
/// environment plus `extra`.
pub fn run(
    cluster: &DevCluster,
    program: &str,
    args: &[&str],
    extra: &[(&str, &str)],
) -> anyhow::Result<Output> {
    let bin = venv()?.join("bin").join(program);
    Command::new(&bin)
        .args(args)
        .envs(env(cluster)?)
        .envs(extra.iter().copied())
        .output()
        .with_context(|| format!("running {}", bin.display()))
}
