//! Journals of finished work items, so that an interrupted study (`kill -9`, a lost
//! node) resumes where it stopped and produces the same final tables (issue 8 item 3).
//!
//! A journal is an append-only text file: a first line naming the computation by the
//! SHA-256 of its settings (its *fingerprint*), then one JSON line per finished item,
//! `{"key": …, "value": …}`, each written whole, flushed and synced before the item counts
//! as done. On reopening, a line cut short by a kill (no newline, or not JSON) and
//! anything after it are ignored and recomputed. A journal with another fingerprint is
//! refused unless the caller discards it. Floats that must round-trip exactly are stored
//! as their bit patterns ([`f64_to_json`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

const HEADER: &str = "mi-est journal v1";

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    done: BTreeMap<String, serde_json::Value>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// SHA-256 (hex) of the settings that define a computation.
pub fn fingerprint(settings: &serde_json::Value) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(settings.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Journal {
    /// Opens the journal at `path` for the computation `fingerprint`, keeping the items
    /// already recorded, or creates it. With `discard`, a journal of another computation
    /// is replaced; without, it is an error.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be read or written; [`Error::BadFile`] if it
    /// belongs to another computation and `discard` is false.
    pub fn open(path: &Path, fingerprint: &str, discard: bool) -> Result<Self> {
        let header = format!("{HEADER} {fingerprint}\n");
        let mut done = BTreeMap::new();
        let mut valid_len = 0usize;
        let mut fresh = true;
        if let Ok(text) = std::fs::read(path) {
            let text = String::from_utf8_lossy(&text);
            if text.starts_with(&header) {
                fresh = false;
                valid_len = header.len();
                for line in text[header.len()..].split_inclusive('\n') {
                    let Some(body) = line.strip_suffix('\n') else {
                        break;
                    };
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
                        break;
                    };
                    let (Some(k), Some(val)) =
                        (v.get("key").and_then(|k| k.as_str()), v.get("value"))
                    else {
                        break;
                    };
                    done.insert(k.to_string(), val.clone());
                    valid_len += line.len();
                }
            } else if !discard && text.lines().count() > 1 {
                // (A journal of another computation that recorded nothing is replaced.)
                return Err(Error::BadFile {
                    path: path.to_path_buf(),
                    reason: "holds the partial results of a run with other settings (pass --overwrite to start afresh, or use another output folder)".into(),
                });
            }
        }
        if fresh {
            let mut f = std::fs::File::create(path).map_err(io(path))?;
            f.write_all(header.as_bytes()).map_err(io(path))?;
            f.sync_all().map_err(io(path))?;
            valid_len = header.len();
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io(path))?;
        // Drop a torn last line so new records start on a line of their own.
        file.set_len(valid_len as u64).map_err(io(path))?;
        let mut file = file;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0)).map_err(io(path))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            done,
        })
    }

    /// Number of items recorded before this process opened the journal.
    pub fn n_done(&self) -> usize {
        self.done.len()
    }

    /// The recorded value of `key`, if it finished before.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.done.get(key)
    }

    /// Records a finished item (whole line, flushed and synced).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the write fails.
    pub fn record(&self, key: &str, value: serde_json::Value) -> Result<()> {
        let mut line = serde_json::json!({ "key": key, "value": value }).to_string();
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.write_all(line.as_bytes()).map_err(io(&self.path))?;
        f.sync_data().map_err(io(&self.path))
    }

    /// Removes the journal once the final reports are written.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if it cannot be removed.
    pub fn finish(self) -> Result<()> {
        drop(self.file);
        std::fs::remove_file(&self.path).map_err(io(&self.path))
    }
}

/// A float as its exact bit pattern (JSON numbers cannot hold NaN or ±∞).
pub fn f64_to_json(x: f64) -> serde_json::Value {
    serde_json::Value::String(format!("{:016x}", x.to_bits()))
}

/// The float written by [`f64_to_json`].
pub fn f64_from_json(v: &serde_json::Value) -> Option<f64> {
    u64::from_str_radix(v.as_str()?, 16)
        .ok()
        .map(f64::from_bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_and_torn_lines_are_dropped() {
        let dir = std::env::temp_dir().join(format!("mi-est-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("j.jsonl");
        let _ = std::fs::remove_file(&p);
        let j = Journal::open(&p, "abc", false).unwrap();
        j.record("1", f64_to_json(f64::NAN)).unwrap();
        j.record("2", f64_to_json(-0.1)).unwrap();
        drop(j);
        // A kill in the middle of a write: half a line at the end.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"key\":\"3\",\"val").unwrap();
        drop(f);
        let j = Journal::open(&p, "abc", false).unwrap();
        assert_eq!(j.n_done(), 2);
        assert!(f64_from_json(j.get("1").unwrap()).unwrap().is_nan());
        assert_eq!(
            f64_from_json(j.get("2").unwrap()).unwrap().to_bits(),
            (-0.1f64).to_bits()
        );
        j.record("3", f64_to_json(3.0)).unwrap();
        drop(j);
        let j = Journal::open(&p, "abc", false).unwrap();
        assert_eq!(j.n_done(), 3);
        drop(j);
        // Another computation's journal is refused, or discarded on request.
        assert!(matches!(
            Journal::open(&p, "xyz", false),
            Err(Error::BadFile { .. })
        ));
        let j = Journal::open(&p, "xyz", true).unwrap();
        assert_eq!(j.n_done(), 0);
        j.finish().unwrap();
        assert!(!p.exists());
    }
}
