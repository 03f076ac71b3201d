//! The fuzz targets' properties (fuzz/src/lib.rs), driven on a stable toolchain by the seeded
//! driver (fuzz/src/driver.rs) for a few seconds each, so that `cargo test` exercises them
//! without building the fuzz crate. `TRANSBRIEF_FUZZ_SECS=N` runs each target N seconds;
//! `TRANSBRIEF_FUZZ_SEED` changes the inputs.
//!
//! Not for: libFuzzer runs (`cd fuzz && cargo +nightly fuzz run TARGET`).

#[allow(dead_code)] // `target` and the checks are called through the driver.
#[path = "../fuzz/src/lib.rs"]
mod checks;
#[path = "../fuzz/src/driver.rs"]
mod driver;

fn run(name: &str) {
    let secs = std::env::var("TRANSBRIEF_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let seed = std::env::var("TRANSBRIEF_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let check = checks::target(name).expect("a known target");
    match driver::drive(check, secs, seed) {
        Ok(runs) => eprintln!("{name}: {runs} inputs in {secs} s (seed {seed}), no failure"),
        Err((runs, data)) => {
            eprintln!("{name}: failed after {runs} inputs on {data:?}");
            check(&data); // Again, to show the panic message and fail the test.
            panic!("{name}: the failure did not repeat on {data:?}");
        }
    }
}

/// One test, the targets in turn: the driver silences the panic hook while it runs, which
/// must not race with another test doing the same.
#[test]
fn fuzz_targets_hold_their_properties() {
    for name in [
        "decode", "segment", "markdown", "chunk", "docx", "odt", "html", "srt",
    ] {
        run(name);
    }
}
