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
            "already exists (pass --overwrite to replace it)",
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
