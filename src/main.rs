//! The `transbrief` binary: all of it lives in the library (`transbrief::cli`).

/// mimalloc instead of the system allocator: decoding allocates and frees the same large
/// buffers (logits, KV caches) every step, which glibc returns to the kernel and faults back in
/// each time; mimalloc keeps them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    keep_freed_memory_between_steps();
    transbrief::cli::main()
}

/// mimalloc (v3) hands freed memory back to the kernel a second after it is freed (its purge
/// delay). Pooled beam search frees and allocates buffers of tens of MB at every step (logits,
/// the reordered KV caches), and some waited longer than that between uses: a 5-second run of
/// the seq2seq folder bench took 19,600 page faults, each a page the kernel zeroed again. At ten
/// seconds it takes 1,100, with the same peak RSS, and an idle server still returns its memory.
/// `MIMALLOC_PURGE_DELAY`, where set, decides as it always has.
fn keep_freed_memory_between_steps() {
    /// `mi_option_purge_delay` (formerly `mi_option_reset_delay`) in `mi_option_t`, the same in
    /// mimalloc v2 and v3.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one option of the allocator; any value is valid for this one.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 10_000) };
    }
}
