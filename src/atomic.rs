//! Atomic file writes: write to a temporary file beside the target, flush, then
//! rename, so a reader never sees a half-written file and a failed write leaves
//! nothing behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Creates a folder and its parents (as `mkdir -p`).
///
/// # Errors
///
/// [`Error::Io`] naming the folder: "cannot create folder: <the system's reason>".
pub fn create_folder(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        path: dir.to_path_buf(),
        source: std::io::Error::new(e.kind(), format!("cannot create folder: {e}")),
    })
}

/// The largest text file a report folder's page, manifest or summary is read from.
pub const MAX_TEXT_BYTES: u64 = 64 << 20;

/// Reads a file of at most `limit` bytes: a larger file, or one without end (a device, a
/// pipe), is refused after reading no more than `limit + 1` bytes.
///
/// # Errors
///
/// [`Error::Io`] naming the path: unreadable, or over the limit.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let io = |e: std::io::Error| Error::io(path, e);
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {limit} bytes, more than such a file holds"),
        )));
    }
    Ok(bytes)
}

/// [`read_bounded`] for UTF-8 text.
///
/// # Errors
///
/// Those of [`read_bounded`], and text that is not UTF-8.
pub fn read_text(path: &Path, limit: u64) -> Result<String> {
    String::from_utf8(read_bounded(path, limit)?).map_err(|e| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}

/// Writes `bytes` to `path` atomically. Refuses to replace an existing file unless
/// `overwrite`.
///
/// # Errors
///
/// [`Error::Io`] naming the path if the folder is missing or unwritable, or the file
/// exists and `overwrite` is false.
pub fn write_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    let io = |source: std::io::Error| Error::io(path, source);
    if !overwrite && path.exists() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "already exists (set `overwrite` to replace it)",
        )));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// The name of the lock file in an output folder held by [`FolderLock`].
pub const LOCK_FILE: &str = ".mi-est.lock";

/// An output folder held by one writer: an exclusive advisory lock (`flock`) on
/// [`LOCK_FILE`] inside it, which names the holder (process id and command) for a second
/// writer's error. Taking it also removes the temporaries that [`write_atomic`] leaves
/// when its process is killed (`.<name>.tmp-<pid>` of another process: only a dead writer
/// leaves them, since the lock keeps out a live one). Released, and the file removed,
/// when dropped; a killed holder's lock is released by the system.
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl FolderLock {
    /// Creates `dir` if needed and takes its lock for `what` (the command, for the
    /// error a second writer sees). A `part` (a shard's `shard-0-of-4`) takes a lock of
    /// its own, `.mi-est-<part>.lock`, so that the shards of one grid write their own
    /// files into one folder side by side.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the folder: it cannot be created, or another process holds
    /// it ("in use by another mi-est: pid …, `…`", kind `WouldBlock`).
    pub fn acquire(dir: &Path, part: Option<&str>, what: &str) -> Result<Self> {
        create_folder(dir)?;
        let path = match part {
            Some(p) => dir.join(format!(".mi-est-{p}.lock")),
            None => dir.join(LOCK_FILE),
        };
        let io = |e: std::io::Error| Error::io(&path, e);
        // A holder removes the file before it unlocks: a lock taken on a file that is no
        // longer at `path` is no lock, so retry on the file that is there now.
        for _ in 0..100 {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    use std::io::Read;
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    return Err(Error::Io {
                        path: dir.to_path_buf(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::WouldBlock,
                            format!(
                                "in use by another mi-est ({}); wait for it to finish or write elsewhere",
                                if holder.is_empty() {
                                    "starting"
                                } else {
                                    holder
                                }
                            ),
                        ),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
            if !same_file(&file, &path) {
                continue;
            }
            file.set_len(0).map_err(io)?;
            writeln!(file, "pid {}, `{what}`", std::process::id()).map_err(io)?;
            remove_stale_temporaries(dir);
            return Ok(FolderLock {
                path,
                file: Some(file),
            });
        }
        Err(io(std::io::Error::other(
            "the lock file keeps being replaced by other processes",
        )))
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Remove, then unlock (closing the file): a process that opened the old file
        // meanwhile sees that it is no longer at the path and retries.
        let _ = std::fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

/// Whether the open `file` is the file at `path` now.
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// Removes `dir`'s temporaries of [`write_atomic`] that a dead process left
/// (`.<name>.tmp-<pid>`, no process `pid` in `/proc` where there is one; elsewhere any
/// pid but this process's). Called with the folder's lock held.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let ours = std::process::id().to_string();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".tmp-"))
            .map(|(_, pid)| pid)
        else {
            continue;
        };
        let proc = Path::new("/proc");
        let alive = pid == ours || (proc.join("self").exists() && proc.join(pid).exists());
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && !alive {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lock keeps out a second holder (another open file description, as another
    /// process has), names the first, removes dead writers' temporaries but not this
    /// process's, and leaves no lock file once released.
    #[test]
    fn a_folder_has_one_writer_and_no_dead_writers_temporaries() {
        let dir = std::env::temp_dir().join(format!("mi-est-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        create_folder(&dir).unwrap();
        let dead = dir.join(".raw.parquet.tmp-4294967295");
        let ours = dir.join(format!(".raw.parquet.tmp-{}", std::process::id()));
        let other = dir.join(".notes.tmp-x");
        for p in [&dead, &ours, &other] {
            std::fs::write(p, b"partial").unwrap();
        }
        let lock = FolderLock::acquire(&dir, None, "mi-est run --out x").unwrap();
        assert!(!dead.exists() && ours.exists() && other.exists());
        let e = FolderLock::acquire(&dir, None, "second").unwrap_err();
        let e = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(
            e.contains("in use by another mi-est")
                && e.contains(&format!("pid {}", std::process::id()))
                && e.contains("`mi-est run --out x`"),
            "{e}"
        );
        // A shard's lock is its own.
        let shard = FolderLock::acquire(&dir, Some("shard-0-of-2"), "shard").unwrap();
        drop(shard);
        drop(lock);
        assert!(!dir.join(LOCK_FILE).exists());
        let again = FolderLock::acquire(&dir, None, "third").unwrap();
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
