//! `cssf-client`: see `cssf_examples::cli::client_main` and examples/README.md.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cssf_examples::cli::ClientArgs::parse();
    cssf_examples::util::exit_with(cssf_examples::cli::client_main(args))
}
