//! The thread that a batching backend computes on: a state shared with the callers under one
//! mutex, a condition variable that wakes whoever waits on it, and a thread that is told to close
//! and joined when its owner is dropped.
//!
//! What it is for: [`super::batch`] (a chat model's decoding steps) and [`super::pool`] (a
//! Marian model's sentences) both hand work from many workers to one engine thread and wait
//! for the results; this is the machinery they share.
//!
//! Not for: what is batched or how (each user keeps its own state and loop).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::{Error, Result};

/// The state and the wake-up call, shared by the engine and its callers.
pub struct Shared<S> {
    state: Mutex<S>,
    /// Woken when work is handed in, results are ready, or the engine closes.
    wake: Condvar,
    /// Set when the owner is dropped: the engine loop stops, and waiting callers give up.
    closing: AtomicBool,
}

impl<S> Shared<S> {
    /// Locks the state. Engines run their model outside the lock and catch its panics, so the
    /// state is consistent even when the mutex says poisoned.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a wake-up.
    pub fn wait<'a>(&self, guard: MutexGuard<'a, S>) -> MutexGuard<'a, S> {
        self.wake.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a wake-up, or until `deadline`.
    pub fn wait_until<'a>(&self, guard: MutexGuard<'a, S>, deadline: Instant) -> MutexGuard<'a, S> {
        let left = deadline.saturating_duration_since(Instant::now());
        (self.wake.wait_timeout(guard, left))
            .unwrap_or_else(|e| e.into_inner())
            .0
    }

    /// Wakes everyone waiting.
    pub fn notify(&self) {
        self.wake.notify_all();
    }

    /// Whether the engine is closing. Read it with the lock held before waiting: [`Engine`]'s
    /// drop sets it, then takes the lock before it wakes everyone, so no waiter misses it.
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }
}

/// An engine thread and its shared state; closing and joining the thread when dropped.
pub struct Engine<S> {
    shared: Arc<Shared<S>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<S: Send + 'static> Engine<S> {
    /// Starts `run` on a thread named `name`, over `state`.
    pub fn spawn(
        name: &str,
        state: S,
        run: impl FnOnce(&Shared<S>) + Send + 'static,
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            wake: Condvar::new(),
            closing: AtomicBool::new(false),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || run(&shared))
                .map_err(|e| Error::msg(format!("cannot start the {name} thread: {e}")))?
        };
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }
}

impl<S> Engine<S> {
    pub fn shared(&self) -> &Shared<S> {
        &self.shared
    }
}

impl<S> Drop for Engine<S> {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        drop(self.shared.lock());
        self.shared.notify();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
