//! Journals of finished work items, so that an interrupted study (`kill -9`, a lost
//! node) resumes where it stopped and produces the same final tables (issue 8 item 3).
//!
//! A journal is an append-only text file: a first line naming the computation by the
//! SHA-256 of its settings (its *fingerprint*), then one JSON line per finished item,
//! `{"key": …, "value": …}`, each written whole, flushed and synced before the item counts
//! as done. On reopening, a line cut short by a kill (no newline, or not JSON) and
//! anything after it are ignored and recomputed. A journal with another fingerprint is
//! refused unless the caller discards it. Floats that must round-trip exactly are stored
//! as their bit patterns ([`exact`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
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
    move |e| Error::io(path, e)
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
                    reason: "holds the partial results of a run with other settings (set `overwrite` to start afresh, or use another output folder)".into(),
                });
            }
        }
        if fresh {
            let mut f = std::fs::File::create(path).map_err(io(path))?;
            f.write_all(header.as_bytes()).map_err(io(path))?;
            f.sync_all().map_err(io(path))?;
            valid_len = header.len();
        }
        // Append mode: every record goes to the end of the file as it is then, whole.
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io(path))?;
        // Drop a torn last line so new records start on a line of their own.
        file.set_len(valid_len as u64).map_err(io(path))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            done,
        })
    }

    /// Whether the journal at `path` is one of the computation `fingerprint`: a run with
    /// these settings began there and has not finished (its reports, if any are there,
    /// may be an incomplete set that the same run may replace).
    pub fn is_of(path: &Path, fingerprint: &str) -> bool {
        use std::io::BufRead;
        let Ok(f) = std::fs::File::open(path) else {
            return false;
        };
        let mut first = String::new();
        let _ = std::io::BufReader::new(f.take(200)).read_line(&mut first);
        first == format!("{HEADER} {fingerprint}\n")
    }

    /// Number of items recorded before this process opened the journal.
    pub fn n_done(&self) -> usize {
        self.done.len()
    }

    /// The recorded value of `key`, if it finished before and reads as a `T` (a record
    /// of another shape, e.g. from an older version, counts as not finished).
    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        T::deserialize(self.done.get(key)?).ok()
    }

    /// Records a finished item (whole line, flushed and synced).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the write fails.
    pub fn record<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let value = serde_json::to_value(value).map_err(|e| Error::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
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

/// Serde for floats as their exact bit patterns, 16 hex digits (JSON numbers cannot hold
/// NaN or ±∞, and a decimal round trip is only as exact as the printer): the one way
/// journal records and shard rows store a float, `#[serde(with = "exact")]` on an `f64`,
/// `exact::option` on an `Option<f64>`, `exact::seq` on a `Vec<f64>`, `exact::array` on
/// an `[f64; N]`.
pub mod exact {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// A float that serializes as its bit pattern.
    #[derive(Clone, Copy, Debug)]
    struct Bits(f64);

    impl Serialize for Bits {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&format!("{:016x}", self.0.to_bits()))
        }
    }

    impl<'de> Deserialize<'de> for Bits {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let text = String::deserialize(d)?;
            if text.len() != 16 {
                return Err(D::Error::custom(format!("`{text}` is not 16 hex digits")));
            }
            u64::from_str_radix(&text, 16)
                .map(|b| Bits(f64::from_bits(b)))
                .map_err(|_| D::Error::custom(format!("`{text}` is not 16 hex digits")))
        }
    }

    /// Serializes `x` as its bit pattern.
    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        Bits(*x).serialize(s)
    }

    /// The float of a bit pattern.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Bits::deserialize(d).map(|b| b.0)
    }

    /// `Option<f64>`: `None` as null.
    pub mod option {
        use super::Bits;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        /// Serializes `x` as a bit pattern or null.
        pub fn serialize<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
            x.map(Bits).serialize(s)
        }

        /// The float of a bit pattern, or `None` for null.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
            Ok(Option::<Bits>::deserialize(d)?.map(|b| b.0))
        }
    }

    /// `Vec<f64>`: a list of bit patterns.
    pub mod seq {
        use super::Bits;
        use serde::{Deserialize, Deserializer, Serializer};

        /// Serializes `x` as a list of bit patterns.
        pub fn serialize<S: Serializer>(x: &[f64], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(x.iter().map(|&v| Bits(v)))
        }

        /// The floats of a list of bit patterns.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
            Ok(Vec::<Bits>::deserialize(d)?
                .into_iter()
                .map(|b| b.0)
                .collect())
        }
    }

    /// `[f64; N]`: a list of exactly N bit patterns.
    pub mod array {
        use serde::de::Error as _;
        use serde::{Deserializer, Serializer};

        /// Serializes `x` as a list of bit patterns.
        pub fn serialize<S: Serializer, const N: usize>(
            x: &[f64; N],
            s: S,
        ) -> Result<S::Ok, S::Error> {
            super::seq::serialize(x, s)
        }

        /// The floats of a list of exactly N bit patterns.
        pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
            d: D,
        ) -> Result<[f64; N], D::Error> {
            let v = super::seq::deserialize(d)?;
            let n = v.len();
            v.try_into()
                .map_err(|_| D::Error::custom(format!("{n} values where {N} belong")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Rec {
        #[serde(with = "exact")]
        x: f64,
        #[serde(with = "exact::option")]
        y: Option<f64>,
        #[serde(with = "exact::seq")]
        z: Vec<f64>,
        #[serde(with = "exact::array")]
        w: [f64; 2],
    }

    #[test]
    fn floats_round_trip_bit_for_bit() {
        let r = Rec {
            x: -0.1,
            y: Some(f64::NEG_INFINITY),
            z: vec![f64::MIN_POSITIVE / 3.0, -0.0, 1e308],
            w: [f64::NAN, std::f64::consts::PI],
        };
        let back: Rec = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        let bits = |r: &Rec| {
            let mut b = vec![r.x.to_bits(), r.y.unwrap().to_bits()];
            b.extend(r.z.iter().chain(&r.w).map(|v| v.to_bits()));
            b
        };
        assert_eq!(bits(&back), bits(&r));
        let none: Rec = serde_json::from_str(
            r#"{"x":"0000000000000000","y":null,"z":[],"w":["0000000000000000","3ff0000000000000"]}"#,
        )
        .unwrap();
        assert_eq!((none.y, none.w[1]), (None, 1.0));
        for bad in [
            r#"{"x":"00","y":null,"z":[],"w":[]}"#,
            r#"{"x":0.5,"y":null,"z":[],"w":[]}"#,
            r#"{"x":"000000000000000g","y":null,"z":[],"w":[]}"#,
            r#"{"x":"0000000000000000","y":null,"z":[],"w":["0000000000000000"]}"#,
        ] {
            assert!(serde_json::from_str::<Rec>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn records_survive_reopening_and_torn_lines_are_dropped() {
        let dir = std::env::temp_dir().join(format!("mi-est-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("j.jsonl");
        let _ = std::fs::remove_file(&p);
        let j = Journal::open(&p, "abc", false).unwrap();
        #[derive(serde::Serialize, serde::Deserialize)]
        struct F(#[serde(with = "exact")] f64);
        j.record("1", &F(f64::NAN)).unwrap();
        j.record("2", &F(-0.1)).unwrap();
        drop(j);
        // A kill in the middle of a write: half a line at the end.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"key\":\"3\",\"val").unwrap();
        drop(f);
        let j = Journal::open(&p, "abc", false).unwrap();
        assert_eq!(j.n_done(), 2);
        assert!(j.get::<F>("1").unwrap().0.is_nan());
        assert_eq!(j.get::<F>("2").unwrap().0.to_bits(), (-0.1f64).to_bits());
        assert!(
            j.get::<Rec>("2").is_none(),
            "another shape reads as not finished"
        );
        j.record("3", &F(3.0)).unwrap();
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
        std::fs::remove_dir(&dir).unwrap();
    }
}
