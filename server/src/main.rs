//! The `capstan` binary: parses the command line and hands over to the library.

use clap::Parser;

use capstan_server::config::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => capstan_server::serve(args).await,
        Command::ResetPassword(args) => capstan_server::reset_password(args).await,
        Command::Agent(args) => capstan_server::agent::agent(args).await,
        Command::Pipeline(cmd) => capstan_server::pipeline::run(cmd),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("capstan: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
