//! `aiprox`: loads the configuration, starts telemetry, runs the chosen component
//! until stopped. Everything else lives in the library crates.

use clap::Parser;

#[global_allocator]
// Built without transparent huge pages (the `no_thp` feature, Cargo.toml).
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = aiprox::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("aiprox: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(aiprox::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aiprox: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
