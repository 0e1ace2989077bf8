//! `cssf-server`: see `cssf_examples::cli::server_main` and examples/README.md.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cssf_examples::cli::ServerArgs::parse();
    cssf_examples::util::exit_with(cssf_examples::cli::server_main(args))
}
