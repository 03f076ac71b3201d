//! Choosing where tensors live (`--device auto|cpu|cuda[:N]|metal`), checking that this CPU
//! can run the binary's kernels, and sizing candle's CPU kernel threads.
//!
//! Not for: the pipeline's own worker pool (`--jobs`, sized in `pipeline::run`) or model loading.

use candle_core::Device;

/// A device as asked for on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA if built in and present, else Metal if built in and present, else CPU.
    Auto,
    Cpu,
    Cuda(usize),
    Metal,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            "metal" => Ok(Self::Metal),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(Self::Cuda)
                    .map_err(|_| format!("'{s}': the CUDA ordinal must be a number, as in cuda:1")),
                None => Err(format!(
                    "'{s}' is not a device: use auto, cpu, cuda, cuda:N or metal"
                )),
            },
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Metal => f.write_str("metal"),
        }
    }
}

impl DeviceChoice {
    /// Opens the device. Asking for CUDA or Metal in a build without it is an error that says
    /// which cargo feature to build with.
    pub fn open(self) -> crate::Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(n) => {
                if !candle_core::utils::cuda_is_available() {
                    return Err(crate::Error::msg(
                        "--device cuda: this transbrief was built without CUDA; rebuild with \
                         `cargo build --release --features cuda`",
                    ));
                }
                Device::new_cuda(n).map_err(|e| {
                    // The driver's error alone, without the backtrace candle may attach to it.
                    let e = e.to_string();
                    let first = e.lines().next().unwrap_or_default();
                    crate::Error::msg(format!(
                        "--device cuda:{n}: no usable CUDA device ({first}); check nvidia-smi, or \
                         run with --device cpu"
                    ))
                })
            }
            Self::Metal => {
                if !candle_core::utils::metal_is_available() {
                    return Err(crate::Error::msg(
                        "--device metal: this transbrief was built without Metal; rebuild with \
                         `cargo build --release --features metal`",
                    ));
                }
                Ok(Device::new_metal(0)?)
            }
            Self::Auto => {
                if candle_core::utils::cuda_is_available() {
                    if let Ok(d) = Device::new_cuda(0) {
                        return Ok(d);
                    }
                }
                if candle_core::utils::metal_is_available() {
                    if let Ok(d) = Device::new_metal(0) {
                        return Ok(d);
                    }
                }
                Ok(Device::Cpu)
            }
        }
    }
}

/// A short name for reports: `cpu`, `cuda:0`, `metal`.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

/// Checks that the CPU has the instructions this binary was compiled to use (x86-64-v3 by
/// default, see `.cargo/config.toml`). Returns the problem and the fix when it does not, so
/// `main` can say so instead of dying on an illegal instruction.
pub fn check_cpu() -> Result<(), String> {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    {
        let missing: Vec<&str> = [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("f16c", std::arch::is_x86_feature_detected!("f16c")),
        ]
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| name)
        .collect();
        if !missing.is_empty() {
            return Err(format!(
                "this CPU lacks {} which this build of transbrief was compiled to use; rebuild it \
                 for a baseline CPU with RUSTFLAGS=\"-C target-cpu=x86-64\" cargo install --path .",
                missing.join(", ")
            ));
        }
    }
    Ok(())
}

/// The variable candle reads, once, for how long an idle kernel thread spins before it sleeps.
const SPIN_VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

/// Spins an idle kernel thread makes before it sleeps, unless the environment says otherwise:
/// with candle's default (25 000 pauses) the second core spun while the first ran a prompt's
/// serial work (candle's attention matrix products, on rayon's threads), and a prompt of
/// Qwen2.5-Coder-0.5B ran about 7% slower on 2 cores (`farm-bench`, paired runs of `bench
/// gguf`, Zen 5); decoding speed did not move.
const SPIN_LIMIT: u32 = 2_000;

/// Sets candle's kernel threads' spin limit to [`SPIN_LIMIT`] when the environment has not
/// chosen one. Must run before the first tensor operation of the process, with one thread.
pub fn set_kernel_spin_limit() {
    if std::env::var_os(SPIN_VAR).is_none() {
        std::env::set_var(SPIN_VAR, SPIN_LIMIT.to_string());
    }
}

/// The environment variables candle reads, once, to size its CPU kernel threads.
const THREAD_VARS: [&str; 2] = ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"];

/// Makes candle's CPU kernels use `n` threads (`--threads N`). Must run before the first tensor
/// operation of the process, since candle sizes its pools then.
pub fn set_kernel_threads(n: usize) {
    for var in THREAD_VARS {
        std::env::set_var(var, n.max(1).to_string());
    }
}

/// When several documents run at once and neither `--threads` nor the environment chose, gives
/// candle's kernels the cores left per concurrent document: with as many documents in flight as cores, each kernel runs on its
/// document's own thread. Several documents' kernels sharing candle's pool instead made
/// the pool's spin-waiting threads fight over the cores (decoding ran ~6x slower on 2 cores).
/// Returns the count in effect (`None` when the environment decides).
pub fn default_kernel_threads(concurrent_documents: usize) -> Option<usize> {
    // One document at a time: candle's own default (its physical cores) is right.
    if concurrent_documents <= 1 || THREAD_VARS.iter().any(|v| std::env::var_os(v).is_some()) {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = (cores / concurrent_documents.max(1)).max(1);
    set_kernel_threads(n);
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_spelling() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("CPU".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert_eq!("metal".parse(), Ok(DeviceChoice::Metal));
        assert!("cuda:x"
            .parse::<DeviceChoice>()
            .unwrap_err()
            .contains("ordinal"));
        assert!("tpu"
            .parse::<DeviceChoice>()
            .unwrap_err()
            .contains("auto, cpu"));
    }

    #[test]
    fn cpu_always_opens_and_this_cpu_passes_the_check() {
        assert!(DeviceChoice::Cpu.open().unwrap().is_cpu());
        assert!(check_cpu().is_ok());
    }
}
