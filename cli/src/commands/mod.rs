//! One module per family of commands; [`run`] dispatches.

mod certs;
mod chunkserver_admin;
mod dev;
mod files;
mod meta_admin;
mod mount;
mod s3;
mod servers;
mod status;

use std::time::Duration;

use crate::cli::{CertAction, ChunkserverAction, Cli, Command, MetaAction};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Meta {
            action:
                Some(MetaAction::AddNode {
                    id,
                    addr,
                    timeout,
                    cluster,
                }),
            ..
        } => meta_admin::add_node(&cluster, id, &addr, Duration::from_secs(timeout)).await,
        Command::Meta {
            action: Some(MetaAction::RemoveNode { id, cluster }),
            ..
        } => meta_admin::remove_node(&cluster, id).await,
        Command::Meta {
            action: None,
            config: Some(config),
            listen,
            data_dir,
        } => servers::meta(&config, listen, data_dir).await,
        Command::Meta { .. } => anyhow::bail!(
            "cairn meta needs --config FILE to run a node, or a subcommand (see --help)"
        ),
        Command::S3 { config, listen } => s3::serve(&config, listen).await,
        Command::Chunkserver {
            action: Some(ChunkserverAction::Remove { id, cluster }),
            ..
        } => chunkserver_admin::remove(&cluster, id).await,
        Command::Chunkserver {
            action:
                Some(ChunkserverAction::Drain {
                    id,
                    wait,
                    timeout,
                    cancel,
                    cluster,
                }),
            ..
        } => {
            let wait = wait.then(|| timeout.map(Duration::from_secs));
            chunkserver_admin::drain(&cluster, id, !cancel, wait).await
        }
        Command::Chunkserver {
            action: None,
            config: Some(config),
            listen,
            data_dir,
        } => servers::chunkserver(&config, listen, data_dir).await,
        Command::Chunkserver { .. } => anyhow::bail!(
            "cairn chunkserver needs --config FILE to run a server, or a subcommand (see --help)"
        ),
        Command::Dev {
            data_dir,
            chunkservers,
            meta,
            mount,
        } => dev::run(data_dir, meta, chunkservers, mount, cli.threads).await,
        Command::Mount {
            cluster,
            mountpoint,
            daemon,
            log_file,
            attr_ttl,
            entry_ttl,
            cache_mib,
            write_buffer_mib,
            readahead_mib,
            sync_creates,
            sync_unlinks,
        } => {
            let opts = cairn_fuse::MountOptions {
                attr_ttl: Duration::from_secs_f64(attr_ttl),
                entry_ttl: Duration::from_secs_f64(entry_ttl),
                cache_bytes: (cache_mib << 20) as usize,
                flush_file_bytes: (write_buffer_mib << 20) as usize,
                flush_total_bytes: (write_buffer_mib << 22) as usize,
                readahead_bytes: readahead_mib << 20,
                defer_creates: !sync_creates,
                defer_unlinks: !sync_unlinks,
                ..Default::default()
            };
            if daemon {
                mount::daemonize(&mountpoint, log_file).await
            } else {
                mount::mount(&cluster, &mountpoint, opts).await
            }
        }
        Command::Gc {
            dry_run,
            json,
            cluster,
        } => status::gc(&cluster, dry_run, json).await,
        Command::Init { dir, days, json } => certs::init(&dir, days, json),
        Command::Cert {
            action:
                CertAction::Issue {
                    role,
                    name,
                    ca_dir,
                    out,
                    days,
                    json,
                },
        } => certs::issue(&ca_dir, out.as_deref(), role, &name, days, json),
        Command::Cert {
            action: CertAction::Show { file, ca_dir, json },
        } => certs::show(&file, ca_dir.as_deref(), json),
        Command::Umount { mountpoint, lazy } => mount::umount(&mountpoint, lazy).await,
        Command::Put {
            local,
            remote,
            cluster,
        } => files::put(&cluster, &local, &remote).await,
        Command::Get {
            remote,
            local,
            cluster,
        } => files::get(&cluster, &remote, &local).await,
        Command::Ls {
            path,
            long,
            json,
            cluster,
        } => files::ls(&cluster, &path, long, json).await,
        Command::Mkdir {
            paths,
            parents,
            cluster,
        } => files::mkdir(&cluster, &paths, parents).await,
        Command::Rm {
            paths,
            recursive,
            cluster,
        } => files::rm(&cluster, &paths, recursive).await,
        Command::Mv { src, dst, cluster } => files::mv(&cluster, &src, &dst).await,
        Command::Stat {
            path,
            json,
            cluster,
        } => files::stat(&cluster, &path, json).await,
        Command::Status { json, cluster } => status::run(&cluster, json).await,
        Command::Replication {
            copies,
            sync_copies,
            cluster,
        } => status::replication(&cluster, copies.zip(sync_copies)).await,
    }
}
