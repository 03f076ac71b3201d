//! Runs one fuzz target's property check on a stable toolchain with the seeded driver
//! (`src/driver.rs`), stopping at the first failure, which it prints and saves under
//! `artifacts/`.
//!
//! Usage: `stable TARGET SECONDS [SEED]`, TARGET one of decode, segment, markdown, chunk, docx,
//! odt, html, srt.
//!
//! Not for: libFuzzer runs (`cargo +nightly fuzz run TARGET`).

#[path = "../driver.rs"]
mod driver;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(target), Some(secs)) = (args.get(1), args.get(2).and_then(|s| s.parse().ok())) else {
        eprintln!("usage: stable TARGET SECONDS [SEED]");
        std::process::exit(2);
    };
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let Some(check) = transbrief_fuzz::target(target) else {
        eprintln!("unknown target {target}");
        std::process::exit(2);
    };
    match driver::drive(check, secs, seed) {
        Ok(runs) => println!("{target}: {runs} inputs in {secs} s (seed {seed}), no failure"),
        Err((runs, data)) => {
            let path = format!("artifacts/stable-{target}-{seed}-{runs}");
            let _ = std::fs::create_dir_all("artifacts");
            let _ = std::fs::write(&path, &data);
            println!("{target}: FAILED after {runs} inputs on {data:?} (saved to {path})");
            check(&data); // Again, with the panic message shown.
            std::process::exit(1);
        }
    }
}
