//! The `transbrief` binary: all of it lives in the library (`transbrief::cli`).

/// mimalloc instead of the system allocator: decoding allocates and frees the same large
/// buffers (logits, KV caches) every step, which glibc returns to the kernel and faults back in
/// each time; mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    transbrief::cli::main()
}
