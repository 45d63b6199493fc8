//! The `threatlog` command: tunes the allocator, sets up logging and runs the command line
//! (`cli`).

use clap::Parser;
use std::io::IsTerminal;

mod cli;

/// The heap allocator of Rust allocations: mimalloc keeps freed blocks per thread and size
/// class, where glibc's malloc spent a sixth of ingest time in its free lists.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Heap arenas of the allocator: one per core. The default (eight per core) lets every
/// thread that ever ingested a segment keep megabytes of freed memory of its own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: libc::c_int = 2;

/// Allocations at least this large are mapped on their own and returned to the system when
/// freed. Fixed, because glibc otherwise raises the threshold after the first large free and
/// keeps every later write batch and segment buffer in the heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_MMAP_THRESHOLD_BYTES: libc::c_int = 1 << 20;

/// Bounds the memory the allocator keeps: large, short-lived buffers (write batches, views
/// overlays, segments) would otherwise stay resident after a bulk pull.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES);
    }
}

fn main() {
    tune_allocator();
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Err(error) = cli::run(cli) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
