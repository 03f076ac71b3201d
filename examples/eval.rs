//! `transbrief eval` as a stand-alone program, for scripts/check-eval-parity.py and for trying the
//! command before it is wired into the main binary. Not for: anything the main CLI already does.

use std::process::ExitCode;

use clap::Parser;
use transbrief::eval::cli::{run, EvalArgs};

/// Scores outputs against references (BLEU, chrF, TER as sacrebleu; ROUGE as rouge-score).
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: EvalArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli.args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
