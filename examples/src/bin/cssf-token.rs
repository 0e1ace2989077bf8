//! `cssf-token`: see `cssf_examples::cli::token_main` and examples/README.md.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cssf_examples::cli::TokenArgs::parse();
    cssf_examples::util::exit_with(cssf_examples::cli::token_main(args))
}
