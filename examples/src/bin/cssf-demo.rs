//! `cssf-demo`: the end-to-end ACE DTLS flow in one process; see
//! `cssf_examples::demo` and examples/README.md.

fn main() -> std::process::ExitCode {
    let args = cssf_examples::util::Args::from_env();
    cssf_examples::util::exit_with(cssf_examples::demo::demo_main(args))
}
