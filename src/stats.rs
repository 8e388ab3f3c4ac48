//! The counters an engine's backends share, read by `Engine::stats`.

use std::sync::atomic::AtomicU64;

/// Counters shared by an engine's backends.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) cpu_runs: AtomicU64,
    pub(crate) gpu_runs: AtomicU64,
    pub(crate) gpu_dispatches: AtomicU64,
    pub(crate) uploads: AtomicU64,
    pub(crate) bytes_uploaded: AtomicU64,
    pub(crate) downloads: AtomicU64,
    pub(crate) bytes_downloaded: AtomicU64,
    pub(crate) pipelines_compiled: AtomicU64,
    pub(crate) fallbacks: AtomicU64,
}
