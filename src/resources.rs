//! Up-front estimates of the memory and time a computation needs, and the limits they
//! are checked against (issue 8 item 5): enumeration, permanents and grids refuse, with
//! the estimate in the error, what would not fit instead of being killed by the OS.
//!
//! The time model is operation counts times rates measured on the development machine
//! (2 cores, `cargo bench --bench estimators`): about 0.65 ns per parameter per
//! permutation on the generic path, 0.6 ns per step of the permanent's subset program,
//! 1 ns per unit-cost entry and 5 ns per proposal softmax entry; for training and the
//! ELBO, 0.05 ns per multiply-add of a forward pass and 7 µs per optimizer step. It is
//! an order of magnitude guide, not a promise; the limits are meant to stop runs that
//! would take days or exhaust memory, not to schedule. Readers check a file's declared
//! sizes (an IDX header, an `.npz` directory, a file's length) against the memory limit
//! before they allocate.
//!
//! Limits: by default half of the available memory (`MemAvailable` in `/proc/meminfo`,
//! 8 GiB where that cannot be read) and 72 hours ([`Limits::default`]); [`Limits::new`]
//! replaces either (the CLI's `--max-memory-gib` and `--max-hours`, Python's
//! `max_memory_gib` and `max_hours`). A `Limits` is a value passed to every check.

use crate::error::{Error, Result};

/// Estimated peak memory (bytes) and wall time (seconds on one thread).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    /// Peak bytes.
    pub bytes: f64,
    /// Seconds of work on one thread.
    pub seconds: f64,
}

impl Cost {
    /// Seconds from an operation count at `ns` nanoseconds each.
    pub fn ops(count: f64, ns: f64) -> Self {
        Cost {
            bytes: 0.0,
            seconds: count * ns * 1e-9,
        }
    }

    /// Adds bytes.
    pub fn with_bytes(mut self, bytes: f64) -> Self {
        self.bytes += bytes;
        self
    }

    /// Sum of two costs run one after the other (memory: the larger peak).
    pub fn then(self, other: Cost) -> Self {
        Cost {
            bytes: self.bytes.max(other.bytes),
            seconds: self.seconds + other.seconds,
        }
    }
}

/// The limits a computation runs within: a value in the settings of whatever runs it
/// (the command's `--max-memory-gib`/`--max-hours`, Python's `max_memory_gib`/`max_hours`,
/// or [`Limits::default`], the machine's), passed to every check; no global.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Largest peak memory allowed, bytes.
    pub max_bytes: f64,
    /// Longest wall time allowed, seconds (on the threads available).
    pub max_seconds: f64,
}

impl Default for Limits {
    /// The machine's: half of the available memory, 72 hours.
    fn default() -> Self {
        Limits::default_for_machine()
    }
}

/// Nanoseconds per parameter per permutation on the generic path.
pub const NS_PARAM_PERM: f64 = 0.65;
/// Nanoseconds per step of the permanent's subset program.
pub const NS_PERMANENT_STEP: f64 = 0.6;
/// Nanoseconds per unit-cost entry (building C, one O(d) permutation step).
pub const NS_UNIT_COST: f64 = 1.0;
/// Nanoseconds per proposal softmax entry (one exp and a comparison).
pub const NS_SOFTMAX: f64 = 5.0;
/// Nanoseconds per multiply-add of an MLP's forward pass over a batch of rows (the
/// backward pass counts twice): `train --hidden 400,400 --epochs 2` on the 2,000 bundled
/// MNIST images is estimated at 84 s and took 71 s on the development machine; at widths
/// 100 and 10 the estimates were within 0.5–1.6× of the measured times too.
pub const NS_MAC: f64 = 0.05;
/// Nanoseconds of a training step besides its arithmetic (drawing the noise, the
/// optimizer's update, bookkeeping): 7 µs measured for a 1-10-1 net on 100 rows.
pub const NS_STEP: f64 = 7_000.0;

/// Bytes of available memory from `/proc/meminfo`, if readable.
fn available_memory() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

impl Limits {
    /// The defaults: half of the available memory, 72 hours.
    pub fn default_for_machine() -> Self {
        Limits {
            max_bytes: 0.5 * available_memory().unwrap_or(16.0 * (1u64 << 30) as f64),
            max_seconds: 72.0 * 3600.0,
        }
    }

    /// The machine's limits with either replaced: `max_memory_gib` GiB of memory,
    /// `max_hours` hours.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `max_memory_gib` or `max_hours` when it is not
    /// a positive number.
    pub fn new(max_memory_gib: Option<f64>, max_hours: Option<f64>) -> Result<Self> {
        let mut limits = Limits::default_for_machine();
        if let Some(g) = max_memory_gib {
            if g.is_nan() || g <= 0.0 {
                return Err(Error::invalid("max_memory_gib", g, "must be > 0"));
            }
            limits.max_bytes = g * (1u64 << 30) as f64;
        }
        if let Some(h) = max_hours {
            if h.is_nan() || h <= 0.0 {
                return Err(Error::invalid("max_hours", h, "must be > 0"));
            }
            limits.max_seconds = h * 3600.0;
        }
        Ok(limits)
    }
}

/// Human-readable bytes.
pub fn format_bytes(b: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut x = b;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    if u + 1 == UNITS.len() && x >= 1024.0 {
        return format!("{b:.3e} B");
    }
    format!("{x:.1} {}", UNITS[u])
}

/// Human-readable seconds.
pub fn format_seconds(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 3.0 * 86400.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s < 1e3 * 365.0 * 86400.0 {
        format!("{:.1} days", s / 86400.0)
    } else {
        format!("{:.2e} years", s / (365.0 * 86400.0))
    }
}

/// Reads the file at `path`, whose contents are held `held_per_byte` times over once
/// parsed, refusing what would not fit in the memory limit before it is read: by the
/// file's size where it has one, else (a pipe, a device) after reading no more than the
/// limit allows.
///
/// # Errors
///
/// [`Error::Io`] naming the path; [`Error::ResourceLimit`] with the estimate.
pub fn read_within_limits(
    path: &std::path::Path,
    held_per_byte: f64,
    limits: &Limits,
) -> Result<Vec<u8>> {
    use std::io::Read;
    let io = |e| Error::io(path, e);
    let file = std::fs::File::open(path).map_err(io)?;
    let cost = |bytes: u64| Cost::default().with_bytes(bytes as f64 * held_per_byte);
    if let Some(size) = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
    {
        check(
            &format!("reading {} ({size} bytes)", path.display()),
            cost(size),
            limits,
        )?;
    }
    let cap = (limits.max_bytes / held_per_byte) as u64;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let read = bytes.len() as u64;
    if read > cap {
        check(
            &format!("reading {} ({read} bytes or more)", path.display()),
            cost(read),
            limits,
        )?;
    }
    Ok(bytes)
}

/// Refuses `cost` if it exceeds `limits`, its time spread over the threads available.
///
/// # Errors
///
/// [`Error::ResourceLimit`] naming `what`, the estimate and the limit.
pub fn check(what: &str, cost: Cost, limits: &Limits) -> Result<()> {
    let threads = rayon::current_num_threads().max(1) as f64;
    let seconds = cost.seconds / threads;
    if cost.bytes > limits.max_bytes || seconds > limits.max_seconds || !seconds.is_finite() {
        return Err(Error::ResourceLimit {
            what: what.to_string(),
            bytes: format_bytes(cost.bytes),
            time: format_seconds(seconds),
            max_bytes: format_bytes(limits.max_bytes),
            max_time: format_seconds(limits.max_seconds),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_refuses() {
        assert_eq!(format_bytes(1536.0), "1.5 KiB");
        assert_eq!(format_seconds(90.0), "90.0 s");
        assert!(format_seconds(1e12).contains("years"));
        let l = Limits::default();
        assert!(check("nothing", Cost::default(), &l).is_ok());
        let e = check("huge", Cost::ops(1e30, 1.0), &l).unwrap_err();
        assert!(
            e.to_string().contains("huge") && e.to_string().contains("years"),
            "{e}"
        );
        let e = check("big", Cost::default().with_bytes(1e30), &l).unwrap_err();
        assert!(
            e.to_string().contains("PiB") || e.to_string().contains("e"),
            "{e}"
        );
        // Limits are a value: a small one refuses what the machine's allows.
        let small = Limits::new(Some(1e-6), Some(1e-6)).unwrap();
        let work = Cost::ops(1e9, 10.0).with_bytes(1e6);
        assert!(check("work", work, &l).is_ok());
        assert!(check("work", work, &small).is_err());
        assert!(Limits::new(Some(0.0), None).is_err());
        assert!(Limits::new(None, Some(f64::NAN)).is_err());
    }
}
