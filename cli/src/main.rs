//! The `cairn` binary: parse arguments, set up logging, run one command.
//! Everything else lives in the library crates and in `commands/`.

mod cli;
mod cluster_files;
mod commands;
mod locate;
mod owners;
mod signals;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if !args.command.is_server() {
        restore_default_sigpipe();
    }
    let default_level = if args.command.is_server() {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        builder.worker_threads(usize::from(n));
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cairn: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairn: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// A command whose output is cut off (`cairn status | head -2`) ends the
/// way `ls` or `cat` do, killed quietly by SIGPIPE, instead of panicking in
/// `println!` ("failed printing to stdout: Broken pipe"). The Rust runtime
/// ignores SIGPIPE before `main`; servers keep it ignored, so a peer that
/// hangs up turns into an error on that one socket, never into an exit.
fn restore_default_sigpipe() {
    // SAFETY: setting a signal's disposition to the default touches no
    // memory; nothing in this process has installed a SIGPIPE handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The error and its causes on one line, leaving out a cause whose text
/// its parent already shows (thiserror wrappers often print their source).
fn one_line(e: &anyhow::Error) -> String {
    let mut out: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.last().is_some_and(|prev| prev.contains(&text)) {
            continue;
        }
        out.push(text);
    }
    out.join(": ")
}
