//! The `index.html` of every report folder (issue 18 item 4): it parses as XML (a strict
//! parser, so any browser's lenient one reads it too), needs nothing from the network,
//! runs no script, and names every plot and table of its folder.

use std::path::Path;
use std::process::Command;

/// Checks that `html` is well formed: every element closed in order, attributes quoted
/// (a `>` inside a quoted value does not end a tag). Returns the number of tags.
fn well_formed(html: &str) -> Result<usize, String> {
    let b = html.as_bytes();
    let (mut i, mut count) = (0, 0);
    let mut stack: Vec<String> = Vec::new();
    while let Some(off) = html[i..].find('<') {
        let start = i + off;
        let rest = &html[start..];
        if rest.starts_with("<!--") {
            i = start + rest.find("-->").ok_or("an unclosed comment")? + 3;
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            i = start + rest.find('>').ok_or("an unclosed declaration")? + 1;
            continue;
        }
        let mut j = start + 1;
        let mut quote = None;
        while j < b.len() {
            match (quote, b[j]) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, c @ (b'"' | b'\'')) => quote = Some(c),
                (None, b'>') => break,
                (None, _) => {}
            }
            j += 1;
        }
        if j == b.len() {
            return Err(format!("an unclosed tag at byte {start}"));
        }
        let tag = &html[start + 1..j];
        let name = |t: &str| {
            t.split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap_or("")
                .to_string()
        };
        if let Some(closing) = tag.strip_prefix('/') {
            let open = stack
                .pop()
                .ok_or_else(|| format!("`</{closing}>` closes nothing"))?;
            if open != closing.trim() {
                return Err(format!("`</{}>` closes `<{open}>`", closing.trim()));
            }
        } else if !tag.ends_with('/') {
            stack.push(name(tag));
        }
        count += 1;
        i = j + 1;
    }
    match stack.last() {
        Some(open) => Err(format!("`<{open}>` is never closed")),
        None => Ok(count),
    }
}

/// The page of `dir` parses, is self-contained and names every plot and Parquet file of
/// the folder, and each of `tables`.
fn check_page(dir: &Path, tables: &[&str]) {
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let n = well_formed(&html).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert!(n > 20);
    assert!(!html.contains("<script"), "no script");
    for attr in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(attr), "nothing from the network: {attr}");
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let (stem, file) = (
            p.file_stem().unwrap().to_string_lossy().into_owned(),
            p.file_name().unwrap().to_string_lossy().into_owned(),
        );
        match p.extension().and_then(|e| e.to_str()) {
            Some("svg") => {
                assert!(
                    html.contains(&format!("<figure id=\"plot-{stem}\">")),
                    "{file}"
                );
                assert!(
                    html.contains(&format!("<figcaption>{file}</figcaption>")),
                    "{file}"
                );
            }
            Some("parquet") => assert!(html.contains(&format!("<a href=\"{file}\">")), "{file}"),
            _ => {}
        }
    }
    for t in tables {
        assert!(
            html.contains(&format!("<h3 id=\"table-{t}\">")),
            "table {t}"
        );
    }
    assert!(html.contains("<summary>manifest.json</summary>"));
}

#[test]
fn well_formed_refuses_what_a_parser_would() {
    assert!(well_formed("<p><b>x</b></p>").is_ok());
    assert!(well_formed("<p a=\"1>2\"><br/></p>").is_ok());
    assert!(well_formed("<p><b>x</p></b>").is_err());
    assert!(well_formed("<p>").is_err());
}

#[test]
fn a_run_folder_has_a_page_with_every_plot_and_table() {
    let dir = crate::common::Scratch::new("pages", "run");
    let out = Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .args([
            "run",
            "--posterior",
            "fuzz/corpus/posterior/abs-2.safetensors",
        ])
        .args([
            "--estimators",
            "infonce,exact,sandwich",
            "--k",
            "2,4",
            "--samples",
            "20",
        ])
        .args(["--repeats", "2", "--elbo-samples", "2", "--out"])
        .arg(dir.join("r"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_page(&dir.join("r"), &["bias_variance", "bounds"]);
    // `mi-est page` writes the folder's page again from what it holds.
    std::fs::remove_file(dir.join("r/index.html")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .arg("page")
        .arg(dir.join("r"))
        .output()
        .unwrap();
    assert!(out.status.success());
    check_page(&dir.join("r"), &[]);
}

#[test]
fn a_reproduce_folder_has_a_page_with_every_plot_and_table() {
    use mi_est::study::reproduce::{Experiment, ReproduceOptions};
    let dir = crate::common::Scratch::new("pages", "reproduce");
    let options = ReproduceOptions {
        quick: true,
        seed: 0,
        mnist_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-small"),
        observer: None,
        journal: None,
        samples: None,
    };
    let (r, files) = mi_est::report::reproduce_into(
        &dir.join("t"),
        Experiment::TractableBnn,
        options,
        true,
        &mi_est::report::Provenance {
            command_line: vec!["test".to_string()],
            git_revision: None,
        },
    )
    .unwrap();
    assert!(files.iter().any(|f| f.ends_with("index.html")));
    let names: Vec<&str> = r.tables.iter().map(|t| t.name.as_str()).collect();
    assert!(!names.is_empty());
    check_page(&dir.join("t"), &names);
    let html = std::fs::read_to_string(dir.join("t/index.html")).unwrap();
    assert!(html.contains("<h1>mi-est reproduce tractable-bnn</h1>"));
}
