//! The real download code against a local HTTP server on 127.0.0.1 that serves the
//! bundled MNIST subset: success, a corrupted file, a server that closes mid-file (and
//! the resume after it), a 404, and the command line's messages.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use mi_est::data::fetch::{RemoteFile, fetch, is_complete, verify};
use sha2::Digest;

use crate::common::Scratch;

/// How the server misbehaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Serves every file, honouring range requests.
    Good,
    /// Flips one byte in the middle of `train-images`.
    Corrupt,
    /// Announces the whole of `train-images` but closes the connection halfway.
    CloseMidFile,
    /// Answers 404 to everything.
    NotFound,
}

/// A request the server saw: path and `Range` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Starts a server on 127.0.0.1 (an ephemeral port) and returns its base URL.
fn serve(mode: Mode) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/mnist/", listener.local_addr().unwrap());
    let files: BTreeMap<String, Vec<u8>> = subset_dir()
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (name_of(&p), std::fs::read(&p).unwrap()))
        .collect();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let _ = answer(conn, mode, &files, &log);
        }
    });
    (base, seen)
}

fn answer(
    mut conn: TcpStream,
    mode: Mode,
    files: &BTreeMap<String, Vec<u8>>,
    seen: &Seen,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    seen.lock().unwrap().push((path.clone(), range.clone()));
    let name = path.rsplit('/').next().unwrap_or("");
    let Some(body) = files.get(name).filter(|_| mode != Mode::NotFound) else {
        return conn.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        );
    };
    let mut body = body.clone();
    let images = name.starts_with("train-images");
    if mode == Mode::Corrupt && images {
        let mid = body.len() / 2;
        body[mid] ^= 0x55;
    }
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<usize>().ok())
        .filter(|&s| s < body.len());
    let head = match start {
        Some(s) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {s}-{}/{}\r\nConnection: close\r\n\r\n",
            body.len() - s,
            body.len() - 1,
            body.len()
        ),
        None => format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ),
    };
    conn.write_all(head.as_bytes())?;
    let payload = &body[start.unwrap_or(0)..];
    if mode == Mode::CloseMidFile && images {
        conn.write_all(&payload[..payload.len() / 2])?;
        conn.flush()?;
        return conn.shutdown(std::net::Shutdown::Both);
    }
    conn.write_all(payload)
}

fn subset_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-small")
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// The subset's files with their checksums, computed here from the bundled files.
fn subset_files() -> Vec<RemoteFile> {
    let mut out = Vec::new();
    for name in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(subset_dir().join(name)).unwrap())
            .read_to_end(&mut raw)
            .unwrap();
        let sha: String = sha2::Sha256::digest(&raw)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        out.push(RemoteFile {
            name,
            raw_len: raw.len() as u64,
            raw_sha256: Box::leak(sha.into_boxed_str()),
        });
    }
    out
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match dir.read_dir() {
        Ok(rd) => rd.map(|e| name_of(&e.unwrap().path())).collect(),
        Err(_) => vec![],
    };
    v.sort();
    v
}

#[test]
fn a_good_server_fills_the_cache_with_verified_files_once() {
    let (base, seen) = serve(Mode::Good);
    let cache = Scratch::new("fetch", "good");
    let files = subset_files();
    let paths = fetch(&base, &cache, &files, &mi_est::observe::Silent).unwrap();
    assert_eq!(paths.len(), 4);
    for (p, f) in paths.iter().zip(&files) {
        verify(p, f).unwrap();
        assert_eq!(
            std::fs::read(p).unwrap(),
            std::fs::read(subset_dir().join(f.name)).unwrap()
        );
    }
    assert!(is_complete(&cache, &files));
    assert_eq!(
        listing(&cache).len(),
        4,
        "no .part left: {:?}",
        listing(&cache)
    );
    // The files load as MNIST.
    let train = mi_est::data::load_mnist(
        &cache,
        mi_est::data::MnistSplit::Train,
        None,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(train.len(), train.x().nrows());
    assert!(train.len() >= 100, "{} images", train.len());
    // A second call finds everything in place and asks the server for nothing.
    let before = seen.lock().unwrap().len();
    fetch(&base, &cache, &files, &mi_est::observe::Silent).unwrap();
    assert_eq!(seen.lock().unwrap().len(), before);
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(p, r)| p.starts_with("/mnist/") && r.is_none())
    );
}

#[test]
fn a_corrupted_file_is_refused_and_nothing_of_it_stays() {
    let (base, _) = serve(Mode::Corrupt);
    let cache = Scratch::new("fetch", "corrupt");
    let e = fetch(&base, &cache, &subset_files(), &mi_est::observe::Silent).unwrap_err();
    let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
    assert!(
        chain.contains("train-images-idx3-ubyte.gz") && chain.contains("not the expected file"),
        "{chain}"
    );
    assert!(
        !listing(&cache)
            .iter()
            .any(|n| n.starts_with("train-images")),
        "{:?}",
        listing(&cache)
    );
}

#[test]
fn a_connection_closed_mid_file_keeps_the_part_and_the_next_attempt_resumes() {
    let (bad, _) = serve(Mode::CloseMidFile);
    let cache = Scratch::new("fetch", "resume");
    let files = subset_files();
    let e = fetch(&bad, &cache, &files, &mi_est::observe::Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&bad) && e.contains("resume"), "{e}");
    let part = cache.join("train-images-idx3-ubyte.gz.part");
    let have = std::fs::metadata(&part).unwrap().len();
    let whole = std::fs::metadata(subset_dir().join("train-images-idx3-ubyte.gz"))
        .unwrap()
        .len();
    assert!(have > 0 && have < whole, "{have} of {whole}");
    assert!(!cache.join("train-images-idx3-ubyte.gz").exists());
    // The next attempt asks for the rest only.
    let (good, seen) = serve(Mode::Good);
    fetch(&good, &cache, &files, &mi_est::observe::Silent).unwrap();
    assert!(is_complete(&cache, &files));
    let asked = seen.lock().unwrap().clone();
    assert!(
        asked
            .iter()
            .any(|(p, r)| p.ends_with("train-images-idx3-ubyte.gz")
                && r.as_deref() == Some(&format!("bytes={have}-")[..])),
        "{asked:?}"
    );
}

#[test]
fn a_missing_file_names_the_url_and_the_status() {
    let (base, _) = serve(Mode::NotFound);
    let cache = Scratch::new("fetch", "404");
    let e = fetch(&base, &cache, &subset_files(), &mi_est::observe::Silent)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("{base}train-images-idx3-ubyte.gz")) && e.contains("HTTP 404"),
        "{e}"
    );
    assert!(listing(&cache).is_empty(), "{:?}", listing(&cache));
}

fn mi_est_with(url: &str, cache: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .args(args)
        .env("MI_EST_MNIST_URL", url)
        .env("MI_EST_DATA", cache)
        .env_remove("MI_EST_MNIST")
        .output()
        .unwrap()
}

/// The command line checks the real MNIST checksums: the subset served under MNIST's
/// names is refused, named, and leaves no file in the cache.
#[test]
fn the_command_refuses_files_that_are_not_mnist_and_names_the_way_out() {
    let (base, _) = serve(Mode::Good);
    let cache = Scratch::new("fetch", "cli");
    let out = mi_est_with(&base, &cache, &["data", "mnist"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("fetching it from") && err.contains(&base),
        "{err}"
    );
    assert!(
        err.contains("is not the expected file") && err.contains("where 47040016 belong"),
        "{err}"
    );
    assert!(err.contains("mi-est data mnist"), "{err}");
    assert!(
        listing(&cache.join("mnist")).is_empty(),
        "{:?}",
        listing(&cache.join("mnist"))
    );
    // `reproduce mnist` without --data goes through the same cache and says so.
    let out = mi_est_with(
        "http://127.0.0.1:1/",
        &cache,
        &[
            "reproduce",
            "mnist",
            "--out",
            &cache.join("r").display().to_string(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`mi-est reproduce mnist` could not fetch MNIST from http://127.0.0.1:1/")
            && err.contains("mi-est data mnist"),
        "{err}"
    );
    assert!(!cache.join("r").exists());
}
