use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = scarecrow::cli::Cli::parse();
    let exit = scarecrow::app::main(cli).await;
    std::process::ExitCode::from(exit as u8)
}
