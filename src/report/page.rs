//! One page per report folder (`index.html`): the summary, the tables and every plot of
//! the folder in a single self-contained file. The CSS is inline and the SVGs are
//! embedded. It needs no network and no JavaScript (the manifest folds with `<details>`).
//! The page is well-formed XML (polyglot XHTML), so a strict parser reads it as well as a
//! browser does.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::study::table::{Table, Values};

/// A table shown on the page: a name, its column names and its cells as text.
#[derive(Clone, Debug, PartialEq)]
pub struct PageTable {
    /// The table's name (the stem of its Parquet file, where it has one).
    pub name: String,
    /// Column names.
    pub header: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

/// Rows shown per table; the rest are in the table's Parquet file.
const MAX_ROWS: usize = 400;

impl PageTable {
    /// A study table, each real column with one number of decimals
    /// ([`crate::study::format::column`]).
    pub fn of(t: &Table) -> Self {
        use crate::study::format::column;
        let text = |v: &Values| -> Vec<String> {
            let opt = |x: Option<String>| x.unwrap_or_else(|| "–".to_string());
            match v {
                Values::F64(x) => column(&x.iter().map(|&v| Some(v)).collect::<Vec<_>>()),
                Values::OptF64(x) => column(x),
                Values::U64(x) => x.iter().map(u64::to_string).collect(),
                Values::OptU64(x) => x.iter().map(|v| opt(v.map(|v| v.to_string()))).collect(),
                Values::Str(x) => x.clone(),
                Values::OptStr(x) => x.iter().map(|v| opt(v.clone())).collect(),
                Values::Bool(x) => x.iter().map(bool::to_string).collect(),
            }
        };
        let columns: Vec<Vec<String>> = t.columns.iter().map(|(_, v)| text(v)).collect();
        PageTable {
            name: t.name.clone(),
            header: t.columns.iter().map(|(c, _)| c.clone()).collect(),
            rows: (0..t.height())
                .map(|i| columns.iter().map(|c| c[i].clone()).collect())
                .collect(),
        }
    }
}

/// A figure shown on the page: its SVG file's stem and what to read from it.
#[derive(Clone, Debug, PartialEq)]
pub struct PageFigure {
    /// The stem of `<stem>.svg` in the report's folder.
    pub stem: String,
    /// What to read from it (never empty: the file's name where nothing else is known).
    pub caption: String,
}

/// The files of `dir` whose extension is `ext`, sorted.
///
/// # Errors
///
/// [`Error::Io`] naming an unreadable folder.
pub(crate) fn files_with(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    Ok(files)
}

/// `&`, `<`, `>` and `"` escaped.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Inline markdown: `code`, **bold**, and [text](url) links, the rest escaped.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('`')
            && let Some(end) = r.find('`')
        {
            write!(out, "<code>{}</code>", escape(&r[..end])).expect("to a string");
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix("**")
            && let Some(end) = r.find("**")
        {
            write!(out, "<strong>{}</strong>", inline(&r[..end])).expect("to a string");
            rest = &r[end + 2..];
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push_str(&escape(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The cells of a markdown table row: split at `|` but not at an escaped `\|`, which
/// stands for a literal bar.
fn table_cells(line: &str) -> Vec<String> {
    let inner = line.trim().strip_prefix('|').unwrap_or(line.trim());
    let inner = inner
        .strip_suffix('|')
        .filter(|s| !s.ends_with('\\'))
        .unwrap_or(inner);
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cells.last_mut().expect("a cell").push('|');
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().expect("a cell").push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

/// The markdown the summaries use (headings, paragraphs, `*`/`-` lists, pipe tables,
/// fenced code) as HTML.
pub(crate) fn markdown(md: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    let mut para: Vec<&str> = Vec::new();
    let flush = |para: &mut Vec<&str>, out: &mut String| {
        if !para.is_empty() {
            writeln!(out, "<p>{}</p>", inline(&para.join(" "))).expect("to a string");
            para.clear();
        }
    };
    while i < lines.len() {
        let line = lines[i].trim_end();
        let t = line.trim_start();
        if t.starts_with("```") {
            flush(&mut para, &mut out);
            let mut code = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                code.push(lines[i]);
                i += 1;
            }
            writeln!(out, "<pre>{}</pre>", escape(&code.join("\n"))).expect("to a string");
        } else if let Some(level) = (1..=4).find(|&l| t.starts_with(&format!("{} ", "#".repeat(l))))
        {
            flush(&mut para, &mut out);
            // The page's own title is h1: summary headings start at h2.
            let h = (level + 1).min(6);
            writeln!(out, "<h{h}>{}</h{h}>", inline(t[level..].trim())).expect("to a string");
        } else if t.starts_with('|') {
            flush(&mut para, &mut out);
            let mut rows: Vec<Vec<String>> = Vec::new();
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                let cells = table_cells(lines[i]);
                if !cells
                    .iter()
                    .all(|c| c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
                {
                    rows.push(cells);
                }
                i += 1;
            }
            i -= 1;
            out.push_str("<table>\n");
            for (r, cells) in rows.iter().enumerate() {
                let tag = if r == 0 { "th" } else { "td" };
                out.push_str("<tr>");
                for c in cells {
                    write!(out, "<{tag}>{}</{tag}>", inline(c)).expect("to a string");
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</table>\n");
        } else if t.starts_with("* ") || t.starts_with("- ") {
            flush(&mut para, &mut out);
            out.push_str("<ul>\n");
            while i < lines.len() {
                let l = lines[i].trim();
                if let Some(item) = l.strip_prefix("* ").or_else(|| l.strip_prefix("- ")) {
                    let mut text = item.to_string();
                    // Continuation lines of the item.
                    while i + 1 < lines.len()
                        && lines[i + 1].starts_with("  ")
                        && !lines[i + 1].trim().is_empty()
                        && !lines[i + 1].trim_start().starts_with("* ")
                        && !lines[i + 1].trim_start().starts_with("- ")
                    {
                        i += 1;
                        text.push(' ');
                        text.push_str(lines[i].trim());
                    }
                    writeln!(out, "<li>{}</li>", inline(&text)).expect("to a string");
                    i += 1;
                } else {
                    break;
                }
            }
            out.push_str("</ul>\n");
            continue;
        } else if t.is_empty() {
            flush(&mut para, &mut out);
        } else {
            para.push(t);
        }
        i += 1;
    }
    flush(&mut para, &mut out);
    out
}

/// An SVG file's markup for embedding: without its XML declaration.
fn inline_svg(path: &Path) -> Result<String> {
    let text = crate::atomic::read_text(path, crate::atomic::MAX_TEXT_BYTES)?;
    let start = text.find("<svg").unwrap_or(0);
    Ok(text[start..].to_string())
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1040px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45;font-size:16px}
h1{font-size:1.6em;border-bottom:1px solid #ccc;padding-bottom:.2em}h2{margin-top:1.6em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em;display:block;overflow-x:auto;max-width:100%}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right;white-space:nowrap}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
code{background:#f3f3f3;padding:0 .2em}pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em}
figure{margin:1.4em 0;padding:0}figure svg{display:block;width:100%;height:auto;border:1px solid #e3e3e3}
figcaption{font-size:1em;color:#333;margin-top:.4em}figcaption a{color:#666;font-size:.9em}
details{margin:.6em 0}summary{cursor:pointer;font-weight:600}nav a{margin-right:1em}";

/// Writes `dir/index.html`: `title`; the `figures` first, each `<stem>.svg` of the
/// folder inline with its caption (a figure whose file is not there is left out); the
/// summary (`markdown`); then `tables`, each folded (`<details>`), the list of every
/// `*.parquet` file and `manifest.json` if there is one. Returns its path.
///
/// # Errors
///
/// [`Error::Io`] naming an unreadable folder or plot, or an unwritable page.
pub fn write_index(
    dir: &Path,
    title: &str,
    summary: &str,
    figures: &[PageFigure],
    tables: &[PageTable],
) -> Result<PathBuf> {
    let parquets: Vec<String> = files_with(dir, "parquet")?
        .iter()
        .filter_map(|p| p.file_name().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let figures: Vec<&PageFigure> = figures
        .iter()
        .filter(|f| dir.join(format!("{}.svg", f.stem)).is_file())
        .collect();
    let summary = crate::study::format::plain_exponents(summary);
    let mut h = String::new();
    writeln!(
        h,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>",
        escape(title),
        escape(title)
    )
    .expect("to a string");
    h.push_str("<nav>");
    if !figures.is_empty() {
        h.push_str("<a href=\"#figures\">Figures</a>");
    }
    if !summary.trim().is_empty() {
        h.push_str("<a href=\"#summary\">Summary</a>");
    }
    if !tables.is_empty() || !parquets.is_empty() {
        h.push_str("<a href=\"#tables\">Tables</a>");
    }
    h.push_str("</nav>\n");
    if !figures.is_empty() {
        h.push_str("<section id=\"figures\">\n");
        for (n, f) in figures.iter().enumerate() {
            writeln!(
                h,
                "<figure id=\"figure-{0}\">\n{1}\n<figcaption><strong>Figure {2}.</strong> {3} <a href=\"{0}.svg\">{0}.svg</a></figcaption>\n</figure>",
                escape(&f.stem),
                inline_svg(&dir.join(format!("{}.svg", f.stem)))?,
                n + 1,
                inline(&crate::study::format::plain_exponents(&f.caption)),
            )
            .expect("to a string");
        }
        h.push_str("</section>\n");
    }
    if !summary.trim().is_empty() {
        h.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n");
        h.push_str(&markdown(&summary));
        h.push_str("</section>\n");
    }
    if !tables.is_empty() || !parquets.is_empty() {
        h.push_str("<section id=\"tables\">\n<h2>Tables</h2>\n");
        for t in tables {
            writeln!(
                h,
                "<details id=\"table-{0}\">\n<summary>{0}: {1} rows × {2} columns</summary>",
                escape(&t.name),
                t.rows.len(),
                t.header.len()
            )
            .expect("to a string");
            h.push_str("<table>\n<tr>");
            for c in &t.header {
                write!(h, "<th>{}</th>", escape(c)).expect("to a string");
            }
            h.push_str("</tr>\n");
            for row in t.rows.iter().take(MAX_ROWS) {
                h.push_str("<tr>");
                for c in row {
                    write!(h, "<td>{}</td>", escape(c)).expect("to a string");
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</table>\n");
            if t.rows.len() > MAX_ROWS {
                writeln!(
                    h,
                    "<p>The first {MAX_ROWS} of {} rows; all of them are in <code>{}.parquet</code>.</p>",
                    t.rows.len(),
                    escape(&t.name)
                )
                .expect("to a string");
            }
            h.push_str("</details>\n");
        }
        if !parquets.is_empty() {
            h.push_str("<p>Parquet files of this folder:</p>\n<ul>\n");
            for p in &parquets {
                writeln!(h, "<li><a href=\"{0}\">{0}</a></li>", escape(p)).expect("to a string");
            }
            h.push_str("</ul>\n");
        }
        h.push_str("</section>\n");
    }
    let manifest = dir.join("manifest.json");
    if manifest.is_file() {
        let text = crate::atomic::read_text(&manifest, crate::atomic::MAX_TEXT_BYTES)?;
        writeln!(
            h,
            "<details>\n<summary>manifest.json</summary>\n<pre>{}</pre>\n</details>",
            escape(&text)
        )
        .expect("to a string");
    }
    h.push_str("</body>\n</html>\n");
    let out = dir.join("index.html");
    write_atomic(&out, h.as_bytes(), true)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_bars_stay_in_their_cell() {
        assert_eq!(
            table_cells("| a | I/ln\\|G\\| | b |"),
            ["a", "I/ln|G|", "b"]
        );
        let html = markdown("| x | ln\\|G\\| |\n| --- | --- |\n| 1 | 2 |\n");
        assert!(html.contains("<th>ln|G|</th>"), "{html}");
        assert_eq!(html.matches("<td>").count(), 2);
    }
}
