//! An exclusive lock on a data directory, so that a second process gets a clear message naming
//! the holder instead of RocksDB's raw lock error.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::StoreError;

/// Holds `DIR/run/lock` with `flock` for as long as it lives; the kernel releases it when the
/// process exits, even on SIGKILL, so a crash never leaves a stale lock.
#[derive(Debug)]
pub struct DirLock {
    /// The open lock file; closing it releases the lock.
    _file: File,
}

impl DirLock {
    /// Takes the lock, writing this process's pid and command line into the lock file.
    pub fn acquire(dir: &Path) -> Result<DirLock, StoreError> {
        let run = dir.join("run");
        std::fs::create_dir_all(&run).map_err(|error| StoreError::io(&run, error))?;
        let path = run.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| StoreError::io(&path, error))?;
        // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !locked {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(StoreError::Busy {
                dir: dir.to_path_buf(),
                holder: holder.trim().to_string(),
            });
        }
        let command: Vec<String> = std::env::args().collect();
        let text = format!("pid {} ({})\n", std::process::id(), command.join(" "));
        let written = file
            .set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()));
        written.map_err(|error| StoreError::io(&path, error))?;
        Ok(DirLock { _file: file })
    }
}

/// The lock file's path under `dir`.
pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join("run").join("lock")
}
