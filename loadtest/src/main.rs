//! `cargo run --release -p loadtest -- --help`

/// mimalloc: measured faster than the system allocator for this
/// service's many small, cross-thread allocations (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = loadtest::Args::parse();
    let report = loadtest::run(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        print!("{}", report.table());
    }
    if report.verification.as_ref().is_some_and(|v| !v.passed) {
        anyhow::bail!("the invariant check failed");
    }
    Ok(())
}
