//! NumPy `.npz` archives (what `numpy.savez` and `numpy.savez_compressed` write, and what
//! JAX users save parameter dictionaries with): a ZIP archive of `.npy` arrays. Only what
//! those writers produce is read: stored or deflated members, ZIP64 sizes, and `.npy`
//! versions 1–3 holding little- or big-endian `f4`/`f8` arrays in C or Fortran order.
//! Everything else is an error naming the member.

use std::io::Read;

/// The largest total of decompressed array bytes accepted (an `.npz` bomb is refused).
pub const MAX_NPZ_BYTES: u64 = 1 << 34;

/// One array: name (the member name without `.npy`), shape, values in C order.
pub type Array = (String, Vec<usize>, Vec<f64>);

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]) as u64)
}

fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as u64)
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
}

/// Whether `bytes` start like a ZIP archive.
pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Reads every array of an `.npz` archive, in archive order, refusing by their declared
/// sizes what would not fit in `limits` before any is inflated.
///
/// # Errors
///
/// A message naming the member (or the archive structure) that could not be read.
pub fn read_npz(bytes: &[u8], limits: &crate::resources::Limits) -> Result<Vec<Array>, String> {
    const EOCD: &[u8] = b"PK\x05\x06";
    let tail = bytes.len().saturating_sub(65_557);
    let eocd = (tail..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..].starts_with(EOCD))
        .ok_or("not a ZIP archive (no end-of-central-directory record)")?;
    let truncated = || "the ZIP archive is truncated".to_string();
    let mut entries = u16_at(bytes, eocd + 10).ok_or_else(truncated)?;
    let mut cd = u32_at(bytes, eocd + 16).ok_or_else(truncated)?;
    // ZIP64: the locator just before the record points at the ZIP64 record.
    if (entries == 0xFFFF || cd == 0xFFFF_FFFF) && eocd >= 20 {
        let loc = eocd - 20;
        if bytes[loc..].starts_with(b"PK\x06\x07") {
            let rec = u64_at(bytes, loc + 8).ok_or_else(truncated)? as usize;
            if !bytes
                .get(rec..)
                .is_some_and(|b| b.starts_with(b"PK\x06\x06"))
            {
                return Err("bad ZIP64 end-of-central-directory record".into());
            }
            entries = u64_at(bytes, rec + 32).ok_or_else(truncated)?;
            cd = u64_at(bytes, rec + 48).ok_or_else(truncated)?;
        }
    }
    let mut at = usize::try_from(cd).map_err(|_| truncated())?;
    let mut total = 0u64;
    // The members as the directory declares them, all checked before any is inflated.
    let mut members = Vec::new();
    for _ in 0..entries {
        if !bytes
            .get(at..)
            .is_some_and(|b| b.starts_with(b"PK\x01\x02"))
        {
            return Err("bad ZIP central directory".into());
        }
        let method = u16_at(bytes, at + 10).ok_or_else(truncated)?;
        let mut compressed = u32_at(bytes, at + 20).ok_or_else(truncated)?;
        let mut size = u32_at(bytes, at + 24).ok_or_else(truncated)?;
        let name_len = u16_at(bytes, at + 28).ok_or_else(truncated)? as usize;
        let extra_len = u16_at(bytes, at + 30).ok_or_else(truncated)? as usize;
        let comment_len = u16_at(bytes, at + 32).ok_or_else(truncated)? as usize;
        let mut local = u32_at(bytes, at + 42).ok_or_else(truncated)?;
        let name = bytes
            .get(at + 46..at + 46 + name_len)
            .ok_or_else(truncated)?;
        let name = String::from_utf8_lossy(name).into_owned();
        let extra = bytes
            .get(at + 46 + name_len..at + 46 + name_len + extra_len)
            .ok_or_else(truncated)?;
        // ZIP64 extended information: the fields whose 32-bit value is saturated, in order.
        let mut e = 0;
        while e + 4 <= extra.len() {
            let id = u16_at(extra, e).unwrap_or(0);
            let len = u16_at(extra, e + 2).unwrap_or(0) as usize;
            if id == 1 {
                let mut f = e + 4;
                for v in [&mut size, &mut compressed, &mut local] {
                    if *v == 0xFFFF_FFFF {
                        *v = u64_at(extra, f).ok_or_else(truncated)?;
                        f += 8;
                    }
                }
            }
            e += 4 + len;
        }
        at += 46 + name_len + extra_len + comment_len;
        let member = |reason: String| format!("member `{name}`: {reason}");
        total = total.saturating_add(size);
        if total > MAX_NPZ_BYTES {
            return Err(member(format!(
                "the arrays exceed {MAX_NPZ_BYTES} bytes in total"
            )));
        }
        if !matches!(method, 0 | 8) {
            return Err(member(format!(
                "compression method {method} (only stored and deflate are read)"
            )));
        }
        members.push((name, method, compressed, size, local));
    }
    // The memory the arrays take once read, by their declared sizes, before any is
    // inflated: float32 doubles in f64, and a posterior holds its values a few times
    // over while it is built (`READ_COPIES`).
    crate::resources::check(
        &format!(
            "reading the {} arrays of this .npz ({total} bytes inflated)",
            members.len()
        ),
        crate::resources::Cost::default().with_bytes(2.0 * total as f64 * READ_COPIES),
        limits,
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (name, method, compressed, size, local) in members {
        let member = |reason: String| format!("member `{name}`: {reason}");
        let local = usize::try_from(local).map_err(|_| member("bad offset".into()))?;
        if !bytes
            .get(local..)
            .is_some_and(|b| b.starts_with(b"PK\x03\x04"))
        {
            return Err(member("bad local header".into()));
        }
        let l_name = u16_at(bytes, local + 26).ok_or_else(truncated)? as usize;
        let l_extra = u16_at(bytes, local + 28).ok_or_else(truncated)? as usize;
        let start = local + 30 + l_name + l_extra;
        let data = usize::try_from(compressed)
            .ok()
            .and_then(|c| bytes.get(start..start.checked_add(c)?))
            .ok_or_else(|| member("the data run past the end of the archive".into()))?;
        // Streamed: the inflated bytes are converted as they come, never held whole, and
        // never more of them than the directory declares.
        let (shape, values) = if method == 0 {
            read_npy_from(data, data.len() as u64)
        } else {
            let mut inflated = flate2::read::DeflateDecoder::new(data).take(size);
            read_npy_from(&mut inflated, size).and_then(|array| match inflated.limit() {
                0 => Ok(array),
                left => Err(format!(
                    "holds {} bytes where the directory says {size}",
                    size - left
                )),
            })
        }
        .map_err(member)?;
        let stem = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        out.push((stem, shape, values));
    }
    Ok(out)
}

/// How many times over reading a posterior holds its values at the peak (the parsed
/// arrays, their safetensors bytes, the tensors read back and the posterior's vectors),
/// for the memory check before reading.
pub const READ_COPIES: f64 = 5.0;

/// Reads one `.npy` array of `f4` or `f8`: its shape and its values in C order.
///
/// # Errors
///
/// What is wrong with the header or the data.
pub fn read_npy(b: &[u8]) -> Result<(Vec<usize>, Vec<f64>), String> {
    read_npy_from(b, b.len() as u64)
}

/// [`read_npy`] from a stream of `len` bytes, converting the data as they are read.
fn read_npy_from(mut r: impl Read, len: u64) -> Result<(Vec<usize>, Vec<f64>), String> {
    let short = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            "truncated .npy array".to_string()
        } else {
            format!("bad deflate data: {e}")
        }
    };
    let mut head = [0u8; 12];
    r.read_exact(&mut head[..10])
        .map_err(|_| "not a .npy array (bad magic)".to_string())?;
    if !head.starts_with(b"\x93NUMPY") {
        return Err("not a .npy array (bad magic)".into());
    }
    let (header_len, start) = match head[6] {
        1 => (u16_at(&head, 8).unwrap_or(0) as usize, 10),
        2 | 3 => {
            r.read_exact(&mut head[10..12])
                .map_err(|_| "truncated .npy header".to_string())?;
            (u32_at(&head, 8).unwrap_or(0) as usize, 12)
        }
        v => return Err(format!(".npy version {v} (1 to 3 are read)")),
    };
    if (start + header_len) as u64 > len {
        return Err("truncated .npy header".into());
    }
    let mut header = vec![0u8; header_len];
    r.read_exact(&mut header)
        .map_err(|_| "truncated .npy header".to_string())?;
    let header = std::str::from_utf8(&header).map_err(|_| "the .npy header is not text")?;
    let field = |key: &str| -> Result<&str, String> {
        let k = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| format!("the .npy header lacks '{key}'"))?;
        let rest = header[k + key.len() + 2..].trim_start();
        Ok(rest.strip_prefix(':').unwrap_or(rest).trim_start())
    };
    let descr = field("descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or("bad 'descr' in the .npy header")?;
    let fortran = field("fortran_order")?.starts_with("True");
    let shape_text = field("shape")?;
    let shape_text = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or("bad 'shape' in the .npy header")?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad dimension `{s}` in 'shape'"))
        })
        .collect::<Result<_, _>>()?;
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("the shape overflows")?;
    let (width, big) = match descr {
        "<f8" | "=f8" => (8, false),
        ">f8" => (8, true),
        "<f4" | "=f4" => (4, false),
        ">f4" => (4, true),
        d => {
            return Err(format!(
                "dtype `{d}` (only float32 and float64 arrays are read)"
            ));
        }
    };
    // The data must fill the rest of the member exactly: checked against the declared
    // length before anything is allocated.
    let data_len = len - (start + header_len) as u64;
    let want = n.checked_mul(width).ok_or("the shape overflows")?;
    if data_len != want as u64 {
        return Err(format!(
            "{data_len} data bytes for shape {shape:?} of {descr} ({want} expected)"
        ));
    }
    let mut values: Vec<f64> = Vec::with_capacity(n);
    let mut chunk = vec![0u8; (1 << 16) - (1 << 16) % width];
    let mut left = want;
    while left > 0 {
        let take = left.min(chunk.len());
        r.read_exact(&mut chunk[..take]).map_err(short)?;
        values.extend(
            chunk[..take]
                .chunks_exact(width)
                .map(|c| match (width, big) {
                    (8, false) => f64::from_le_bytes(c.try_into().expect("8")),
                    (8, true) => f64::from_be_bytes(c.try_into().expect("8")),
                    (_, false) => f32::from_le_bytes(c.try_into().expect("4")) as f64,
                    (_, true) => f32::from_be_bytes(c.try_into().expect("4")) as f64,
                }),
        );
        left -= take;
    }
    if fortran && shape.len() > 1 {
        // Fortran order: the first index varies fastest. Reorder to C order.
        let mut c = vec![0.0; n];
        let mut idx = vec![0usize; shape.len()];
        for v in values.iter() {
            let flat = idx.iter().zip(&shape).fold(0, |a, (&i, &d)| a * d + i);
            c[flat] = *v;
            for (i, &d) in idx.iter_mut().zip(&shape) {
                *i += 1;
                if *i < d {
                    break;
                }
                *i = 0;
            }
        }
        values = c;
    }
    Ok((shape, values))
}
