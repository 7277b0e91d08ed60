//! The `capstan` binary: parses the command line and hands over to the library.

use clap::Parser;

use capstan_server::config::{Cli, Command};

/// mimalloc, not glibc's malloc. Stream records are JSON trees: each is allocated on a
/// source's thread and freed on a stage's or a sink's. glibc's malloc takes the owning
/// arena's lock for such a free, and that showed as futex waits in `make bench`.
/// mimalloc frees to the owning thread without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => capstan_server::serve(args).await,
        Command::ResetPassword(args) => capstan_server::reset_password(args).await,
        Command::Agent(args) => capstan_server::agent::agent(args).await,
        Command::Pipeline(cmd) => capstan_server::pipeline::run(cmd).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("capstan: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
