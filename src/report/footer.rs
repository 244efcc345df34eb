//! A dry run of polars-parquet's footer decoder, so that hostile footers are refused
//! before polars reads them.
//!
//! polars-parquet 0.55.2 decodes the footer (`FileMetaData`, Thrift compact protocol)
//! with a hand-written reader (`handwritten_thrift/file_metadata_thrift.rs`) that
//! pre-sizes every list from its header (`Vec::with_capacity(list.size)`). A lying
//! header asks for up to 2³¹ elements of a few hundred bytes each; the allocation
//! failure aborts the process, which no `catch_unwind` stops (fuzzing found ~136 GB).
//! That reader dispatches on field *ids* and trusts its own schema over the wire type,
//! so a generic Thrift skipper does not see the lists it reads. [`check`] therefore
//! walks the footer exactly as polars does — the same struct, the same field ids read
//! the same way, the same generic skip for the rest, the same bytes (the metadata plus
//! the trailing length and magic) — and refuses, where polars would allocate or
//! recurse from a claim, every claim the bytes cannot back:
//!
//! * a list whose size is negative or exceeds the bytes left (each element takes at
//!   least one byte);
//! * a struct that lacks a field polars requires (so every list element has a minimum
//!   size on the wire and a list of empty structs is no cheaper than its claim);
//! * a footer over [`MAX_FOOTER`], a schema tree deeper than [`MAX_SCHEMA_DEPTH`]
//!   (polars builds it recursively) and everything polars itself refuses.
//!
//! If this walk succeeds, polars follows the same path through the same bytes, so every
//! vector it pre-sizes holds at most as many elements as bytes remain. The walk is
//! stricter than polars, never looser: any difference refuses a file polars might read.

/// The largest footer accepted (16 MiB; a report's footer is a few KiB).
pub const MAX_FOOTER: usize = 16 << 20;

/// The deepest schema tree accepted, in levels from root to leaf (reports have 2).
pub const MAX_SCHEMA_DEPTH: usize = 64;

/// The depth at which polars' generic skip gives up.
const SKIP_DEPTH: i8 = 64;

type Walk<T> = std::result::Result<T, String>;

/// Checks the footer of the Parquet file `bytes` as described in the module docs;
/// returns the reason on refusal.
///
/// # Errors
///
/// A message naming the first claim the footer cannot back.
pub fn check(bytes: &[u8]) -> Walk<()> {
    let n = bytes.len();
    if n < 12 || &bytes[n - 4..] != b"PAR1" {
        return Err("no Parquet footer (PAR1)".into());
    }
    let len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().expect("4 bytes")) as usize;
    if len > n - 12 {
        return Err(format!("footer length {len} exceeds the file"));
    }
    if len > MAX_FOOTER {
        return Err(format!(
            "footer of {len} bytes exceeds the limit of {MAX_FOOTER}"
        ));
    }
    // polars hands its decoder the metadata *and* the 8 trailing bytes.
    reader(&bytes[n - 8 - len..]).file_metadata()
}

fn reader(b: &[u8]) -> Reader<'_> {
    Reader {
        b,
        at: 0,
        #[cfg(test)]
        headers: Vec::new(),
    }
}

/// One field header: wire type (compact protocol nibble) and id.
#[derive(Clone, Copy)]
struct Field {
    ty: u8,
    id: i16,
}

impl Field {
    /// Refuses a field polars reads as a bool unless its wire type is one (polars takes
    /// the value from the header and panics, `expect`, on any other type).
    fn bool(self) -> Walk<()> {
        match self.ty {
            1 | 2 => Ok(()),
            t => Err(format!(
                "field {} should be a bool, has wire type {t}",
                self.id
            )),
        }
    }
}

/// polars' `ThriftSliceInputProtocol`, reading nothing but lengths and counts.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    /// Where each field header was read (for the tests' targeted edits).
    #[cfg(test)]
    headers: Vec<usize>,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.b.len() - self.at
    }

    fn byte(&mut self) -> Walk<u8> {
        let x = *self.b.get(self.at).ok_or("footer ends early")?;
        self.at += 1;
        Ok(x)
    }

    /// polars' `read_vlq`: no length limit, shifts wrap.
    fn vlq(&mut self) -> Walk<u64> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let x = self.byte()?;
            v |= u64::from(x & 0x7f).wrapping_shl(shift);
            if x & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    /// polars' `read_zig_zag`.
    fn zigzag(&mut self) -> Walk<i64> {
        let v = self.vlq()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn skip_bytes(&mut self, k: usize) -> Walk<()> {
        if k > self.left() {
            return Err(format!(
                "a length of {k} exceeds the {} footer bytes left",
                self.left()
            ));
        }
        self.at += k;
        Ok(())
    }

    /// polars' `skip_binary` and `read_bytes`.
    fn binary(&mut self) -> Walk<()> {
        let k = self.vlq()? as usize;
        self.skip_bytes(k)
    }

    /// polars' `read_string`: a binary that must be UTF-8.
    fn string(&mut self) -> Walk<()> {
        let k = self.vlq()? as usize;
        let start = self.at;
        self.skip_bytes(k)?;
        std::str::from_utf8(&self.b[start..self.at])
            .map(|_| ())
            .map_err(|_| "a string in the footer is not UTF-8".into())
    }

    /// polars' `read_list_begin`, refusing sizes the bytes left cannot hold. Returns
    /// (element type, size).
    fn list_begin(&mut self) -> Walk<(u8, usize)> {
        let h = self.byte()?;
        let count = h >> 4;
        let elem = match h & 0x0f {
            0 if count == 0 => 3,
            1 | 2 => 2,
            e @ 3..=12 => e,
            e => return Err(format!("invalid list element type {e}")),
        };
        let size = if count == 15 {
            self.vlq()? as i32
        } else {
            i32::from(count)
        };
        let size = usize::try_from(size).map_err(|_| format!("a list of {size} elements"))?;
        if size > self.left() {
            return Err(format!(
                "a list of {size} elements in {} footer bytes",
                self.left()
            ));
        }
        Ok((elem, size))
    }

    /// polars' `read_field_begin`; `None` at the stop field.
    fn field_begin(&mut self, last: i16) -> Walk<Option<Field>> {
        #[cfg(test)]
        self.headers.push(self.at);
        let h = self.byte()?;
        let ty = h & 0x0f;
        let delta = h >> 4;
        match ty {
            0 => return Ok(None),
            1..=12 => {}
            t => return Err(format!("invalid field type {t}")),
        }
        let id = if delta != 0 {
            last.checked_add(i16::from(delta))
                .ok_or("field id overflows")?
        } else {
            self.zigzag()? as i16
        };
        Ok(Some(Field { ty, id }))
    }

    /// polars' `read_struct_fields!`: `arm` reads the fields it knows and returns
    /// `false` for the rest, which are skipped by wire type. Returns the ids `arm` read
    /// (bit `i` for id `i`; the arms read ids below 16), for [`required`].
    fn fields(&mut self, mut arm: impl FnMut(&mut Self, Field) -> Walk<bool>) -> Walk<u64> {
        let mut last = 0i16;
        let mut read = 0u64;
        while let Some(f) = self.field_begin(last)? {
            if arm(self, f)? {
                read |= 1u64.checked_shl(f.id as u32).unwrap_or(0);
            } else {
                self.skip(f.ty, SKIP_DEPTH)?;
            }
            last = f.id;
        }
        Ok(read)
    }

    /// polars' `skip_till_depth`. Like polars, the elements of a skipped list of bools
    /// consume no bytes (it skips them as bool *fields*, whose value is in the header).
    fn skip(&mut self, ty: u8, depth: i8) -> Walk<()> {
        if depth == 0 {
            return Err("metadata nested too deeply".into());
        }
        match ty {
            1 | 2 => Ok(()),
            3 => self.byte().map(|_| ()),
            4..=6 => self.vlq().map(|_| ()),
            7 => self.skip_bytes(8),
            8 => self.binary(),
            12 => {
                let mut last = 0i16;
                while let Some(f) = self.field_begin(last)? {
                    self.skip(f.ty, depth - 1)?;
                    last = f.id;
                }
                Ok(())
            }
            9 => {
                let (elem, size) = self.list_begin()?;
                if elem == 2 {
                    return Ok(());
                }
                // polars fails on a set or map element, so only if there is one.
                if (elem == 10 || elem == 11) && size > 0 {
                    return Err("a set or map in the footer".into());
                }
                for _ in 0..size {
                    self.skip(elem, depth - 1)?;
                }
                Ok(())
            }
            t => Err(format!("cannot skip wire type {t}")),
        }
    }

    /// polars' `read_list` (and `skip_list_of_varint` / `skip_list_of_binary`): the
    /// element type is ignored, `one` reads each element.
    fn list(&mut self, mut one: impl FnMut(&mut Self) -> Walk<()>) -> Walk<()> {
        let (_, size) = self.list_begin()?;
        for _ in 0..size {
            one(self)?;
        }
        Ok(())
    }

    fn file_metadata(&mut self) -> Walk<()> {
        let mut children = Vec::new();
        let read = self.fields(|r, f| {
            match f.id {
                1 | 3 => r.zigzag().map(|_| ())?,
                2 => r.list(|r| r.schema_element(&mut children))?,
                4 => r.list(Self::row_group)?,
                5 => r.list(Self::key_value)?,
                6 => r.string()?,
                7 => r.list(Self::column_order)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        required(
            "FileMetaData",
            read,
            &[
                (1, "version"),
                (2, "schema"),
                (3, "num_rows"),
                (4, "row_groups"),
            ],
        )?;
        schema_depth(&children)
    }

    /// Records each element's `num_children` for [`schema_depth`].
    fn schema_element(&mut self, children: &mut Vec<i64>) -> Walk<()> {
        let mut num_children = 0;
        let read = self.fields(|r, f| {
            match f.id {
                1 | 2 | 3 | 6..=9 => r.zigzag().map(|_| ())?,
                4 => r.string()?,
                5 => num_children = i64::from(r.zigzag()? as i32),
                10 => r.logical_type()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        required("SchemaElement", read, &[(4, "name")])?;
        children.push(num_children);
        Ok(())
    }

    fn row_group(&mut self) -> Walk<()> {
        let read = self.fields(|r, f| {
            match f.id {
                1 => r.list(Self::column_chunk)?,
                2 | 3 | 5..=7 => r.vlq().map(|_| ())?,
                4 => r.list(Self::sorting_column)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        required(
            "RowGroup",
            read,
            &[(1, "columns"), (2, "total_byte_size"), (3, "num_rows")],
        )
    }

    fn column_chunk(&mut self) -> Walk<()> {
        let read = self.fields(|r, f| {
            match f.id {
                1 => r.binary()?,
                2 | 4..=7 => r.vlq().map(|_| ())?,
                3 => r.column_meta_data()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        required("ColumnChunk", read, &[(3, "meta_data")])
    }

    /// Also refuses what polars checks (codec) or unwraps (the chunk's byte range) right
    /// after decoding it.
    fn column_meta_data(&mut self) -> Walk<()> {
        let mut value = [0i64; 12];
        let read = self.fields(|r, f| {
            match f.id {
                4..=7 | 9..=11 => value[f.id as usize] = r.zigzag()?,
                1 | 14 | 15 => r.vlq().map(|_| ())?,
                2 => r.list(|r| r.vlq().map(|_| ()))?,
                3 => r.list(Self::binary)?,
                12 => r.statistics()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        required(
            "ColumnMetaData",
            read,
            &[
                (4, "codec"),
                (5, "num_values"),
                (6, "total_uncompressed_size"),
                (7, "total_compressed_size"),
                (9, "data_page_offset"),
            ],
        )?;
        // polars reads the codec as an i32: UNCOMPRESSED … LZ4_RAW.
        let codec = value[4] as i32;
        if !(0..=7).contains(&codec) {
            return Err(format!("unknown compression codec {codec}"));
        }
        let start = if read & 1 << 11 != 0 {
            value[11]
        } else {
            value[9]
        } as u64;
        if start.checked_add(value[7] as u64).is_none() {
            return Err("a column chunk's byte range overflows".into());
        }
        Ok(())
    }

    fn statistics(&mut self) -> Walk<()> {
        self.fields(|r, f| {
            match f.id {
                1 | 2 => r.binary()?,
                3 | 4 => r.vlq().map(|_| ())?,
                // polars truncates these lengths to u32.
                5 | 6 => {
                    let k = r.vlq()? as u32;
                    r.skip_bytes(k as usize)?;
                }
                7 | 8 => f.bool()?,
                _ => return Ok(false),
            }
            Ok(true)
        })
        .map(|_| ())
    }

    fn key_value(&mut self) -> Walk<()> {
        let read = self.fields(|r, f| {
            if !(1..=2).contains(&f.id) {
                return Ok(false);
            }
            r.string()?;
            Ok(true)
        })?;
        required("KeyValue", read, &[(1, "key")])
    }

    fn sorting_column(&mut self) -> Walk<()> {
        let read = self.fields(|r, f| {
            match f.id {
                1 => r.zigzag().map(|_| ())?,
                2 | 3 => f.bool()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        required(
            "SortingColumn",
            read,
            &[(1, "column_idx"), (2, "descending"), (3, "nulls_first")],
        )
    }

    /// A union of empty structs (`ColumnOrder`, `TimeUnit`): polars reads variants
    /// `1..=last` as empty structs and needs one of them.
    fn union_of_empty(&mut self, name: &str, last: i16) -> Walk<()> {
        let read = self.fields(|r, f| {
            if !(1..=last).contains(&f.id) {
                return Ok(false);
            }
            r.empty_struct()?;
            Ok(true)
        })?;
        one_variant(name, read)
    }

    fn column_order(&mut self) -> Walk<()> {
        self.union_of_empty("ColumnOrder", 2)
    }

    /// polars' `read_empty_struct`: every field skipped by wire type.
    fn empty_struct(&mut self) -> Walk<()> {
        self.fields(|_, _| Ok(false)).map(|_| ())
    }

    fn logical_type(&mut self) -> Walk<()> {
        let read = self.fields(|r, f| {
            match f.id {
                1..=4 | 6 | 11..=15 => r.empty_struct()?,
                5 => r.decimal()?,
                7 | 8 => r.time()?,
                10 => r.int_type()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        one_variant("LogicalType", read)
    }

    fn decimal(&mut self) -> Walk<()> {
        let read = self.fields(|r, f| {
            if !(1..=2).contains(&f.id) {
                return Ok(false);
            }
            r.zigzag()?;
            Ok(true)
        })?;
        required("DecimalType", read, &[(1, "scale"), (2, "precision")])
    }

    /// `TimeType` and `TimestampType`.
    fn time(&mut self) -> Walk<()> {
        let read = self.fields(|r, f| {
            match f.id {
                1 => f.bool()?,
                2 => r.union_of_empty("TimeUnit", 3)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        required(
            "TimeType",
            read,
            &[(1, "is_adjusted_to_u_t_c"), (2, "unit")],
        )
    }

    fn int_type(&mut self) -> Walk<()> {
        let read = self.fields(|r, f| {
            match f.id {
                1 => r.byte().map(|_| ())?,
                2 => f.bool()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        required("IntType", read, &[(1, "bit_width"), (2, "is_signed")])
    }
}

/// Refuses a struct missing one of the `(id, name)` fields polars requires; `read` holds
/// the ids read, as [`Reader::fields`] returns them.
fn required(what: &str, read: u64, fields: &[(u32, &str)]) -> Walk<()> {
    match fields.iter().find(|(id, _)| read & 1 << id == 0) {
        Some((_, name)) => Err(format!("{what}.{name} missing")),
        None => Ok(()),
    }
}

/// Refuses a union (`read` as [`Reader::fields`] returns it) with no variant set.
fn one_variant(name: &str, read: u64) -> Walk<()> {
    if read == 0 {
        Err(format!("{name} union has no variant set"))
    } else {
        Ok(())
    }
}

/// Refuses a schema tree deeper than [`MAX_SCHEMA_DEPTH`] levels (root to leaf), as
/// polars builds it recursively from the elements' `num_children` (in file order,
/// children after their parent); negative counts are refused too.
fn schema_depth(children: &[i64]) -> Walk<()> {
    // Children still to read at each open level.
    let mut open: Vec<i64> = Vec::new();
    for &c in children {
        if c < 0 {
            return Err(format!("a schema element with {c} children"));
        }
        while open.last() == Some(&0) {
            open.pop();
        }
        if let Some(top) = open.last_mut() {
            *top -= 1;
        }
        // This element's level: its open ancestors plus itself.
        if open.len() + 1 > MAX_SCHEMA_DEPTH {
            return Err(format!(
                "a schema nested deeper than {MAX_SCHEMA_DEPTH} levels"
            ));
        }
        if c > 0 || open.is_empty() {
            open.push(c);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;
    use polars::prelude::*;
    use rand::RngExt;

    /// A Parquet file as polars writes one: several row groups, columns of every kind
    /// a report has (f64 with and without nulls, u64, bool, strings), statistics on.
    fn written() -> Vec<u8> {
        let n = 300;
        let mut df = DataFrame::new(
            n,
            vec![
                Column::new("a".into(), (0..n).map(|i| i as f64).collect::<Vec<f64>>()),
                Column::new(
                    "b".into(),
                    (0..n)
                        .map(|i| (i % 3 != 0).then_some(i as f64 * 0.5))
                        .collect::<Vec<Option<f64>>>(),
                ),
                Column::new("k".into(), (0..n as u64).collect::<Vec<u64>>()),
                Column::new(
                    "s".into(),
                    (0..n).map(|i| i % 2 == 0).collect::<Vec<bool>>(),
                ),
                Column::new(
                    "name".into(),
                    (0..n).map(|i| format!("item-{i}")).collect::<Vec<String>>(),
                ),
            ],
        )
        .unwrap();
        let mut buf = std::io::Cursor::new(Vec::new());
        ParquetWriter::new(&mut buf)
            .with_row_group_size(Some(100))
            .finish(&mut df)
            .unwrap();
        buf.into_inner()
    }

    /// One to three random edits inside the footer's metadata, the footer length kept
    /// in step. Besides byte edits, an edit may give one field header of the original
    /// (`headers`: their offsets) another wire type or another id — the disguise behind
    /// the crash inputs, since polars reads known fields by id whatever their wire type.
    fn mutate_footer(bytes: &[u8], headers: &[usize], rng: &mut impl rand::Rng) -> Vec<u8> {
        let n = bytes.len();
        let len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
        let mut meta = bytes[n - 8 - len..n - 8].to_vec();
        for _ in 0..rng.random_range(1..=3) {
            let i = rng.random_range(0..meta.len());
            match rng.random_range(0..7u8) {
                5 => {
                    let h = headers[rng.random_range(0..headers.len())];
                    if h < meta.len() {
                        meta[h] = (meta[h] & 0xf0) | rng.random_range(1..=12u8);
                    }
                }
                6 => {
                    let h = headers[rng.random_range(0..headers.len())];
                    if h < meta.len() && meta[h] >> 4 != 0 {
                        meta[h] = (meta[h] & 0x0f) | rng.random_range(1..=15u8) << 4;
                    }
                }
                0 => meta[i] ^= 1 << rng.random_range(0..8),
                1 => {
                    meta[i] = [0u8, 0x15, 0x19, 0x1c, 0x29, 0x7f, 0x80, 0xf9, 0xff]
                        [rng.random_range(0..9)]
                }
                2 => meta[i] = rng.random(),
                3 => {
                    let extra: Vec<u8> =
                        (0..rng.random_range(1..6)).map(|_| rng.random()).collect();
                    meta.splice(i..i, extra);
                }
                _ => {
                    let j = (i + rng.random_range(1..8)).min(meta.len());
                    meta.drain(i..j);
                }
            }
        }
        let mut out = bytes[..n - 8 - len].to_vec();
        out.extend_from_slice(&meta);
        out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        out.extend_from_slice(b"PAR1");
        out
    }

    /// Files polars writes pass: the frame above and every report committed under
    /// `reports/`.
    #[test]
    fn files_polars_writes_pass() {
        assert_eq!(check(&written()), Ok(()));
        let mut n = 0;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
        for dir in std::fs::read_dir(&root).unwrap() {
            for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                let p = f.unwrap().path();
                if p.extension().is_some_and(|e| e == "parquet") {
                    assert_eq!(
                        check(&std::fs::read(&p).unwrap()),
                        Ok(()),
                        "{}",
                        p.display()
                    );
                    n += 1;
                }
            }
        }
        assert!(n >= 9, "only {n} committed reports found");
    }

    /// Errors only polars' footer decoder raises (wire-level), as opposed to those of the
    /// schema conversion after it.
    const DECODER_ERRORS: [&str; 10] = [
        "Unexpected EOF",
        "Unexpected struct field type",
        "Unexpected list/set element type",
        "cannot add",
        "cannot convert",
        "invalid utf8",
        "cannot parse past",
        "cannot skip field type",
        " missing",
        "has no variant set",
    ];

    /// Differential check against polars itself on 100,000 seeded edits of a real
    /// footer. Where the walk accepts, polars' decoder must not fail (only the schema
    /// conversion after it may) and nothing may panic; where the walk refuses a
    /// claim polars can afford to act on (lists of at most 10⁵ elements), polars must
    /// refuse too. A walk that drifted from polars' field-by-field path would show up
    /// as decoder errors on accepted inputs or as inputs polars reads that were refused.
    #[test]
    fn the_walk_agrees_with_polars_on_edited_footers() {
        use polars_parquet::parquet::read::read_metadata;
        let file = written();
        let n = file.len();
        let len = u32::from_le_bytes(file[n - 8..n - 4].try_into().unwrap()) as usize;
        let mut walk = reader(&file[n - 8 - len..]);
        walk.file_metadata().unwrap();
        let headers = walk.headers;
        let (mut accepted, mut refused, mut both_refuse) = (0, 0, 0);
        for i in 0..100_000u64 {
            let edited = mutate_footer(&file, &headers, &mut stream(5, i));
            let mine = check(&edited);
            let huge = mine.as_ref().is_err_and(|e| {
                e.strip_prefix("a list of ")
                    .and_then(|r| r.split(' ').next()?.parse::<u64>().ok())
                    .is_some_and(|size| size > 100_000)
            });
            if huge {
                refused += 1;
                continue;
            }
            let theirs = std::panic::catch_unwind(|| {
                read_metadata(&mut std::io::Cursor::new(&edited))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
            match (&mine, theirs) {
                (Ok(()), Ok(Ok(()))) => accepted += 1,
                (Ok(()), Ok(Err(e))) => {
                    assert!(
                        !DECODER_ERRORS.iter().any(|d| e.contains(d)),
                        "edit {i}: accepted, but polars' decoder failed: {e}"
                    );
                    accepted += 1;
                }
                (Ok(()), Err(_)) => panic!("edit {i}: accepted, but polars panicked"),
                (Err(e), Ok(Ok(()))) => panic!("edit {i}: refused ({e}) but polars reads it"),
                (Err(_), _) => {
                    refused += 1;
                    both_refuse += 1;
                }
            }
        }
        assert!(
            accepted > 3000 && refused > 3000 && both_refuse > 3000,
            "accepted {accepted}, refused {refused}, both refuse {both_refuse}"
        );
    }

    /// A hand-built footer: `FileMetaData` with field 2 (schema) holding a list header
    /// that claims 2³¹ − 1 elements, the shape of the inputs fuzzing found.
    #[test]
    fn a_lying_list_header_is_refused() {
        let file = |meta: &[u8]| {
            let mut b = b"PAR1".to_vec();
            b.extend_from_slice(meta);
            b.extend_from_slice(&(meta.len() as u32).to_le_bytes());
            b.extend_from_slice(b"PAR1");
            b
        };
        // field 1 (i32) = 1, field 2: list header 0xfc = "size follows, structs".
        let lying = [0x15, 0x02, 0x19, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00];
        let e = check(&file(&lying)).unwrap_err();
        assert!(e.starts_with("a list of 2147483647 elements"), "{e}");
        // The same claim under a wire type a generic skipper would read as an i32
        // (field 2 declared I32 = 5): polars reads a list there regardless.
        let disguised = [0x15, 0x02, 0x15, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00];
        let e = check(&file(&disguised)).unwrap_err();
        assert!(e.starts_with("a list of 2147483647 elements"), "{e}");
        // A well-formed empty file: version 1, one root schema element, 0 rows, no groups.
        let empty = [
            0x15, 0x02, 0x19, 0x1c, 0x48, 0x01, b'r', 0x00, 0x16, 0x00, 0x19, 0x0c, 0x00,
        ];
        assert_eq!(check(&file(&empty)), Ok(()));
        let meta = read_metadata_of(&file(&empty));
        assert_eq!(meta, Ok(0));
    }

    fn read_metadata_of(bytes: &[u8]) -> std::result::Result<usize, String> {
        polars_parquet::parquet::read::read_metadata(&mut std::io::Cursor::new(bytes))
            .map(|m| m.num_rows)
            .map_err(|e| e.to_string())
    }

    /// The depth polars recurses to when it builds the schema tree.
    #[test]
    fn schema_depth_follows_num_children() {
        assert_eq!(schema_depth(&[3, 0, 0, 0]), Ok(()));
        assert_eq!(schema_depth(&[0]), Ok(()));
        let chain = |n: usize| {
            let mut c = vec![1i64; n];
            c.push(0);
            c
        };
        assert_eq!(schema_depth(&chain(MAX_SCHEMA_DEPTH - 1)), Ok(()));
        assert!(schema_depth(&chain(MAX_SCHEMA_DEPTH)).is_err());
        // Siblings do not add depth: root with 100 groups of one leaf each.
        let mut wide = vec![100i64];
        for _ in 0..100 {
            wide.extend([1, 0]);
        }
        assert_eq!(schema_depth(&wide), Ok(()));
        assert!(schema_depth(&[2, -1, 0]).is_err());
    }
}
