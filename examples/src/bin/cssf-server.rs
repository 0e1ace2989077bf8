//! `cssf-server`: see `cssf_examples::cli::server_main` and examples/README.md.

fn main() -> std::process::ExitCode {
    let args = cssf_examples::util::Args::from_env();
    cssf_examples::util::exit_with(cssf_examples::cli::server_main(args))
}
