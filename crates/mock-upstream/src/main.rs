//! `mock-upstream`: the mock vendor as a process, for the Python SDK tests and the
//! benchmarks. Prints `listening on ADDR` once bound.

use std::time::Duration;

use clap::Parser;
use mock_upstream::{Behavior, MockUpstream};

#[derive(Parser)]
struct Args {
    /// Address to bind; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Text streams carry this many content chunks.
    #[arg(long)]
    chunks: Option<usize>,
    /// Milliseconds between stream chunks.
    #[arg(long, default_value_t = 0)]
    chunk_interval_ms: u64,
    /// Milliseconds before each response.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Keep no record of requests (for load tests).
    #[arg(long)]
    no_record: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mock = MockUpstream::start_on(args.listen).await?;
        mock.set_behavior(Behavior {
            chunks: args.chunks,
            chunk_interval: Duration::from_millis(args.chunk_interval_ms),
            latency: Duration::from_millis(args.latency_ms),
            no_record: args.no_record,
            ..Behavior::default()
        });
        announce(mock.addr());
        tokio::signal::ctrl_c().await?;
        Ok(())
    })
}

#[allow(clippy::print_stdout)]
fn announce(addr: std::net::SocketAddr) {
    use std::io::Write;
    println!("listening on {addr}");
    let _ = std::io::stdout().flush();
}
