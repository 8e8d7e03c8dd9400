//! The `celeriac` binary: dashboard, CLI, embedded worker and beat.
//!
//! Temporary entry point: it only knows `serve`, enough to run the dashboard shell. The real
//! command line replaces this file and calls [`dashboard::serve`] the same way.

mod dashboard;

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::dashboard::DashboardOptions;

/// Command line of the `celeriac` binary.
#[derive(Debug, Parser)]
#[command(name = "celeriac", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web dashboard.
    Serve {
        /// Address to listen on [default: LEPTOS_SITE_ADDR, else 127.0.0.1:3000].
        #[arg(long)]
        addr: Option<SocketAddr>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    match Cli::parse().command {
        Command::Serve { addr } => {
            dashboard::serve(DashboardOptions::from_env(addr), shutdown_signal()).await
        }
    }
}

/// Completes on Ctrl-C or SIGTERM, whichever comes first.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(signal_error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %signal_error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate_signal) => {
                terminate_signal.recv().await;
            }
            Err(signal_error) => {
                tracing::error!(error = %signal_error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}
