//! The `transbrief` binary: all of it lives in the library (`transbrief::cli`).

fn main() -> std::process::ExitCode {
    transbrief::cli::main()
}
