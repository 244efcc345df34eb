//! Numbers for people, on pages, in captions and in summaries: integers as integers,
//! fixed decimals for fractions, scientific notation only below 1e-3 (and at 1e15 and
//! beyond, where an integer would print digits no computation holds).

/// `v` to `sig` significant digits: `256`, `0.0500`, `95.95`, `1.2e-5`; `NaN`, `inf`
/// and `-inf` as such.
pub fn number(v: f64, sig: usize) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if v.fract() == 0.0 && a < 1e15 {
        return format!("{v:.0}");
    }
    if !(1e-3..1e15).contains(&a) {
        let s = format!("{:.*e}", sig.saturating_sub(1), v);
        return s;
    }
    let decimals = (sig as i32 - 1 - a.log10().floor() as i32).max(0) as usize;
    format!("{v:.decimals$}")
}

/// A column of reals as text with one number of decimals for the whole column, so that
/// its digits line up: integers when every value is whole, else the fewest decimals
/// (at most 6) that give every value 4 significant digits, trailing zeros the column
/// has in common dropped; values below 1e-3 in scientific notation; missing ones as `–`.
pub fn column(values: &[Option<f64>]) -> Vec<String> {
    let finite: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let whole = finite.iter().all(|v| v.fract() == 0.0 && v.abs() < 1e15);
    let shown = |v: f64| v != 0.0 && (1e-3..1e15).contains(&v.abs());
    let mut decimals = if whole {
        0
    } else {
        finite
            .iter()
            .filter(|v| shown(**v))
            .map(|v| (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize)
            .max()
            .unwrap_or(0)
    };
    // Drop decimals that are zero in every value.
    while decimals > 0
        && finite.iter().filter(|v| shown(**v)).all(|v| {
            let s = format!("{v:.decimals$}");
            s.ends_with('0')
        })
    {
        decimals -= 1;
    }
    values
        .iter()
        .map(|v| match v {
            None => "–".to_string(),
            Some(v) if !v.is_finite() => format!("{v}"),
            Some(v) if *v == 0.0 => "0".to_string(),
            Some(v) if whole => format!("{v:.0}"),
            Some(v) if shown(*v) => format!("{v:.decimals$}"),
            Some(v) => format!("{v:.2e}"),
        })
        .collect()
}

/// Text with every number in exponent form (`9.595e1`, `+0.00e0`, `1.000e0`, as some
/// summaries wrote them) rewritten for people where its size allows: the same
/// significant digits in plain decimals between 1e-3 and 1e6, the rest left as it is.
pub fn plain_exponents(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if let Some((end, plain)) = exponent_number(text, i) {
            out.push_str(&plain);
            i = end;
        } else {
            let c = text[i..].chars().next().expect("in the text");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// At byte `start` of `text`, a number `[+-]d.ddd e[+-]d` not inside a word, as
/// (its end, its plain form), when the plain form applies.
fn exponent_number(text: &str, start: usize) -> Option<(usize, String)> {
    let b = text.as_bytes();
    if start > 0
        && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'.' || b[start - 1] == b'_')
    {
        return None;
    }
    let mut i = start;
    let sign = if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
        &text[start..i]
    } else {
        ""
    };
    let digits = |mut j: usize| {
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let int_end = digits(i);
    if int_end == i {
        return None;
    }
    let (mantissa_end, frac_digits) = if b.get(int_end) == Some(&b'.') {
        let e = digits(int_end + 1);
        (e, e - int_end - 1)
    } else {
        (int_end, 0)
    };
    if b.get(mantissa_end) != Some(&b'e') {
        return None;
    }
    let mut j = mantissa_end + 1;
    if matches!(b.get(j), Some(b'+' | b'-')) {
        j += 1;
    }
    let exp_end = digits(j);
    if exp_end == j || b.get(exp_end).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let exp: i32 = text[mantissa_end + 1..exp_end].parse().ok()?;
    let mantissa: f64 = text[i..mantissa_end].parse().ok()?;
    let v = mantissa * 10f64.powi(exp);
    if v != 0.0 && !(1e-3..1e6).contains(&v.abs()) {
        return None;
    }
    let int_digits = int_end - i;
    let sig = (int_digits + frac_digits) as i32;
    let decimals = if v == 0.0 {
        frac_digits
    } else {
        (sig - 1 - v.abs().log10().floor() as i32).max(0) as usize
    };
    Some((exp_end, format!("{sign}{v:.decimals$}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(number(256.0, 3), "256");
        assert_eq!(number(0.05, 3), "0.0500");
        assert_eq!(number(95.954, 4), "95.95");
        assert_eq!(number(1.234e-5, 2), "1.2e-5");
        assert_eq!(number(-0.0, 3), "0");
        assert_eq!(number(f64::NAN, 3), "NaN");
        assert_eq!(
            column(&[Some(0.05), Some(0.1), Some(0.2), None]),
            ["0.05", "0.10", "0.20", "–"]
        );
        assert_eq!(column(&[Some(256.0), Some(16.0)]), ["256", "16"]);
        assert_eq!(column(&[Some(1.5e-5), Some(0.25)]), ["1.50e-5", "0.25"]);
        assert_eq!(
            plain_exponents("9.595e1× smaller, 1.000e0, +0.00e0 ± 0.0e0, 2.3e-7, x1e5, 3e8"),
            "95.95× smaller, 1.000, +0.00 ± 0.0, 2.3e-7, x1e5, 3e8"
        );
    }
}
