//! The MNIST files, fetched the way a user's machine would: over HTTPS into a cache
//! folder, each file checked against a SHA-256 in this file before it is used.
//!
//! * The cache is `$MI_EST_DATA/mnist` when `MI_EST_DATA` is set, else `mnist` in the
//!   platform's cache folder (`$XDG_CACHE_HOME/mi-est` or `~/.cache/mi-est` on Linux,
//!   `~/Library/Caches/mi-est` on macOS, `%LOCALAPPDATA%\mi-est` on Windows).
//! * The files come from [`MNIST_BASE_URL`] unless `MI_EST_MNIST_URL` names another base
//!   (a mirror, or a local server in the tests).
//! * The checksum is of the **decompressed** IDX bytes, which are the same on every
//!   mirror, while the `.gz` bytes differ between mirrors that recompressed them. The
//!   decompressed length is checked too, and decompression stops one byte past it.
//! * A download goes to `<name>.part`. When the connection drops, the part stays and the
//!   next attempt asks the server for the rest (an HTTP range request); a server that
//!   ignores the range sends the whole file and the part restarts. A finished part whose
//!   checksum is wrong is removed, and the error says so; a good one is renamed into
//!   place, so the cache only ever holds verified files.
//!
//! Checking a cache needs no network code; downloading needs the `fetch` feature.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::error::{Error, Result};

/// One file of a data set: its name, and the length and SHA-256 of its decompressed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name, also the last segment of its URL.
    pub name: &'static str,
    /// Length of the decompressed content, bytes.
    pub raw_len: u64,
    /// SHA-256 of the decompressed content, lowercase hex.
    pub raw_sha256: &'static str,
}

/// The four standard MNIST files (60,000 training and 10,000 test images of 28 × 28
/// pixels, with labels). The checksums are of the original uncompressed IDX files.
pub const MNIST_FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: super::MNIST_FILE_NAMES[0],
        raw_len: 47_040_016,
        raw_sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    RemoteFile {
        name: super::MNIST_FILE_NAMES[1],
        raw_len: 60_008,
        raw_sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    RemoteFile {
        name: super::MNIST_FILE_NAMES[2],
        raw_len: 7_840_016,
        raw_sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    RemoteFile {
        name: super::MNIST_FILE_NAMES[3],
        raw_len: 10_008,
        raw_sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

/// Where the MNIST files are fetched from unless `MI_EST_MNIST_URL` says otherwise.
pub const MNIST_BASE_URL: &str = "https://storage.googleapis.com/cvdf-datasets/mnist/";

/// The environment variable naming another base URL for the MNIST files.
pub const MNIST_URL_VAR: &str = "MI_EST_MNIST_URL";

/// The environment variable naming the data cache folder.
pub const DATA_DIR_VAR: &str = "MI_EST_DATA";

/// The largest `.gz` file accepted from a server, bytes: far above any MNIST file
/// (9.9 MB), so that a misbehaving server cannot fill the disk.
pub const MAX_DOWNLOAD_BYTES: u64 = 64 << 20;

/// The data cache folder: `$MI_EST_DATA`, else `mi-est` in the platform's cache folder.
///
/// # Errors
///
/// [`Error::InvalidParameter`] when neither `MI_EST_DATA` nor the variables that locate
/// the platform's cache folder (`XDG_CACHE_HOME`/`HOME`, `LOCALAPPDATA`) are set.
pub fn data_dir() -> Result<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var(DATA_DIR_VAR) {
        return Ok(d);
    }
    let platform = if cfg!(windows) {
        var("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|h| h.join("Library").join("Caches"))
    } else {
        var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))
    };
    platform.map(|d| d.join("mi-est")).ok_or_else(|| {
        Error::invalid(
            DATA_DIR_VAR,
            "unset",
            "no cache folder: set MI_EST_DATA to a folder for downloaded data",
        )
    })
}

/// The MNIST cache folder: `mnist` in [`data_dir`].
///
/// # Errors
///
/// Those of [`data_dir`].
pub fn mnist_dir() -> Result<PathBuf> {
    Ok(data_dir()?.join("mnist"))
}

/// A full MNIST already on this machine, without fetching: the folder `$MI_EST_MNIST`
/// when set, else the data cache's when it is complete.
pub fn local_mnist() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MI_EST_MNIST").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    mnist_dir().ok().filter(|d| is_complete(d, &MNIST_FILES))
}

/// The base URL of the MNIST files: `$MI_EST_MNIST_URL`, else [`MNIST_BASE_URL`]; always
/// ending in `/`.
pub fn mnist_base_url() -> String {
    let mut base = std::env::var(MNIST_URL_VAR)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| MNIST_BASE_URL.to_string());
    if !base.ends_with('/') {
        base.push('/');
    }
    base
}

/// Checks a gzipped file against `file`'s decompressed length and SHA-256.
///
/// # Errors
///
/// [`Error::Io`] when it cannot be read; [`Error::BadFile`] naming what did not match
/// (not gzip, too long, too short, another checksum).
pub fn verify(path: &Path, file: &RemoteFile) -> Result<()> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let bad = |reason: String| Error::BadFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader =
        flate2::read::GzDecoder::new(std::io::BufReader::new(f)).take(file.raw_len + 1);
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| bad(format!("not a complete gzip file: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    if len > file.raw_len {
        return Err(bad(format!(
            "decompresses to more than the {} bytes that belong",
            file.raw_len
        )));
    }
    if len < file.raw_len {
        return Err(bad(format!(
            "decompresses to {len} bytes where {} belong",
            file.raw_len
        )));
    }
    let got = hex(&hasher.finalize());
    if got != file.raw_sha256 {
        return Err(bad(format!(
            "SHA-256 of the content is {got}, expected {}",
            file.raw_sha256
        )));
    }
    Ok(())
}

/// Whether every file is in `dir` and verifies.
pub fn is_complete(dir: &Path, files: &[RemoteFile]) -> bool {
    files.iter().all(|f| verify(&dir.join(f.name), f).is_ok())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Downloads what is missing of `files` from `base_url` into `dir` (created if needed),
/// resuming a `.part` left by an interrupted download, and verifies each file before
/// it takes its final name. Files already present and valid are not fetched again.
/// `progress(name, done, total)` is called as bytes arrive (`total` when the server
/// says it).
///
/// Returns the paths of the files, in order.
///
/// # Errors
///
/// [`Error::Download`] naming the URL (unreachable server, an HTTP error status, a
/// connection that closed early, more than [`MAX_DOWNLOAD_BYTES`]); [`Error::BadFile`]
/// for a file whose checksum is wrong (it is removed); [`Error::Io`] for the cache
/// folder.
#[cfg(feature = "fetch")]
pub fn fetch(
    base_url: &str,
    dir: &Path,
    files: &[RemoteFile],
    observer: &dyn crate::observe::Observer,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut paths = Vec::with_capacity(files.len());
    for file in files {
        let path = dir.join(file.name);
        if !(path.exists() && verify(&path, file).is_ok()) {
            let url = format!("{base_url}{}", file.name);
            let part = dir.join(format!("{}.part", file.name));
            download(&url, &part, &|d, t| observer.bytes(file.name, d, t))?;
            if let Err(e) = verify(&part, file) {
                let _ = std::fs::remove_file(&part);
                return Err(Error::Context {
                    what: format!("{url} was downloaded but is not the expected file (removed it)"),
                    source: Box::new(e),
                });
            }
            std::fs::rename(&part, &path).map_err(|e| Error::io(&path, e))?;
        }
        paths.push(path);
    }
    Ok(paths)
}

/// Appends the rest of `url` to `part` (all of it when `part` is absent or the server
/// ignores the range).
#[cfg(feature = "fetch")]
fn download(url: &str, part: &Path, progress: &dyn Fn(u64, Option<u64>)) -> Result<()> {
    use std::io::Write;
    let failed = |reason: String| Error::Download {
        url: url.to_string(),
        reason,
    };
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .timeout_recv_body(Some(std::time::Duration::from_secs(120)))
        .build()
        .into();
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let mut response = match request.call() {
        Ok(r) => r,
        // The part is already whole (or the server disagrees about it): start again.
        Err(ureq::Error::StatusCode(416)) if have > 0 => {
            std::fs::remove_file(part).map_err(|e| Error::io(part, e))?;
            return download(url, part, progress);
        }
        Err(ureq::Error::StatusCode(code)) => {
            return Err(failed(format!("the server answered HTTP {code}")));
        }
        Err(e) => return Err(failed(e.to_string())),
    };
    let resumed = response.status().as_u16() == 206 && have > 0;
    let start = if resumed { have } else { 0 };
    let length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let total = length.map(|l| l + start);
    if total.is_some_and(|t| t > MAX_DOWNLOAD_BYTES) {
        return Err(failed(format!(
            "the file is {} bytes, more than the {MAX_DOWNLOAD_BYTES} accepted",
            total.unwrap_or(0)
        )));
    }
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(part)
        .map_err(|e| Error::io(part, e))?;
    let mut body = response.body_mut().as_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = start;
    progress(done, total);
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                out.sync_all().map_err(|e| Error::io(part, e))?;
                return Err(failed(format!(
                    "the connection failed after {done} bytes ({e}); run the command again to resume"
                )));
            }
        };
        out.write_all(&buf[..n]).map_err(|e| Error::io(part, e))?;
        done += n as u64;
        if done > MAX_DOWNLOAD_BYTES {
            drop(out);
            let _ = std::fs::remove_file(part);
            return Err(failed(format!(
                "the server sent more than {MAX_DOWNLOAD_BYTES} bytes"
            )));
        }
        progress(done, total);
    }
    out.sync_all().map_err(|e| Error::io(part, e))?;
    if let Some(t) = total
        && done < t
    {
        return Err(failed(format!(
            "the connection closed after {done} of {t} bytes; run the command again to resume"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn verify_names_what_does_not_match() {
        let dir = std::env::temp_dir().join(format!("mi-est-fetch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f.gz");
        // SHA-256("abc"), a published test vector (FIPS 180-2).
        let file = RemoteFile {
            name: "f.gz",
            raw_len: 3,
            raw_sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        };
        std::fs::write(&p, gz(b"abc")).unwrap();
        verify(&p, &file).unwrap();
        for (content, needle) in [
            (gz(b"abd"), "SHA-256 of the content is"),
            (gz(b"ab"), "decompresses to 2 bytes where 3 belong"),
            (gz(b"abcd"), "more than the 3 bytes"),
            (b"abc".to_vec(), "not a complete gzip file"),
            (gz(b"abc")[..10].to_vec(), "not a complete gzip file"),
        ] {
            std::fs::write(&p, content).unwrap();
            let e = verify(&p, &file).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("f.gz"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_base_url_ends_in_a_slash_and_the_checksums_are_hex() {
        assert!(mnist_base_url().ends_with('/'));
        for f in MNIST_FILES {
            assert_eq!(f.raw_sha256.len(), 64);
            assert!(
                f.raw_sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
    }
}
