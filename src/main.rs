use clap::Parser;

/// mimalloc instead of glibc's malloc: runs allocate on one worker thread and
/// free on another, where glibc took about a tenth of the daemon's CPU in
/// arena locks and consolidation (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = scarecrow::cli::Cli::parse();
    // One rustls provider for the process, chosen before any TLS client is
    // built: with two compiled in, rustls refuses to pick one and panics.
    // aws-lc-rs is the one reqwest and the PostgreSQL client are built with.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let exit = scarecrow::app::main(cli).await;
    std::process::ExitCode::from(exit as u8)
}
