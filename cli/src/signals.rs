//! Waiting for Ctrl-C or SIGTERM.
//!
//! The handlers are installed by [`Termination::install`], before a command
//! starts anything, so a signal that arrives early is held for
//! [`Termination::wait`] instead of killing the process (and orphaning the
//! servers it started) with the default action.

use anyhow::Context;
use tokio::signal::unix::{signal, Signal, SignalKind};

pub struct Termination {
    term: Signal,
    int: Signal,
}

impl Termination {
    pub fn install() -> anyhow::Result<Self> {
        Ok(Termination {
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
        })
    }

    /// Resolves on the first SIGINT or SIGTERM (since `install`).
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
