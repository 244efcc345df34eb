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
                let at = html
                    .find(&format!("<figure id=\"figure-{stem}\">"))
                    .unwrap_or_else(|| panic!("{file} is not a figure of the page"));
                // Its caption says something beyond its number and file name.
                let caption = &html[at..][html[at..].find("<figcaption>").unwrap()..];
                let caption = &caption[..caption.find("</figcaption>").unwrap()];
                let words = caption
                    .split("</strong>")
                    .nth(1)
                    .unwrap()
                    .split("<a href")
                    .next()
                    .unwrap();
                assert!(words.trim().len() > 20, "{file}: caption {caption:?}");
            }
            Some("parquet") => assert!(html.contains(&format!("<a href=\"{file}\">")), "{file}"),
            _ => {}
        }
    }
    // The figures come first: none after the first table.
    if let (Some(last), Some(table)) = (html.rfind("<figure"), html.find("<table")) {
        assert!(last < table, "a figure after the first table");
    }
    for t in tables {
        assert!(
            html.contains(&format!("<details id=\"table-{t}\">")),
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
    check_page(&dir.join("r"), &["bias_variance", "bounds", "raw"]);
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
        limits: Default::default(),
    };
    let (r, files) = mi_est::app::reproduce_into(
        &dir.join("t"),
        Experiment::TractableBnn,
        options,
        true,
        &mi_est::app::Provenance {
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

/// A script added to a copy of a page (never to the page itself, which has none) that
/// reports, once the page has loaded, what a reader sees: the number of figures, any
/// figure after the first table, any caption without words, and the smallest text of any
/// figure in CSS pixels as drawn (its font size times the figure's scale).
const CHECK_SCRIPT: &str = "<script>window.addEventListener('load',function(){var p=[];var figs=[].slice.call(document.querySelectorAll('figure'));var t=document.querySelector('table');figs.forEach(function(f){if(t&&(f.compareDocumentPosition(t)&Node.DOCUMENT_POSITION_PRECEDING))p.push('figure after a table: '+f.id);var c=f.querySelector('figcaption');var w=c?c.textContent.replace(/Figure [0-9]+\\./,'').replace(/\\S+\\.svg\\s*$/,'').trim():'';if(w.length<20)p.push('caption without words: '+f.id);});var min=1e9;figs.forEach(function(f){var s=f.querySelector('svg');if(!s)return;var k=s.getBoundingClientRect().width/s.viewBox.baseVal.width;[].slice.call(s.querySelectorAll('text')).forEach(function(x){if(!x.textContent.trim())return;min=Math.min(min,parseFloat(getComputedStyle(x).fontSize)*k);});});var e=document.createElement('pre');e.id='page-check';e.textContent='CHECK '+JSON.stringify({figures:figs.length,problems:p,min_px:min})+' END';document.body.appendChild(e);});</script>";

/// The browser the page test opens pages in, if the machine has one.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// Opens `page` in headless Chromium at a desktop's width: saves its screenshot as
/// `target/page-screenshots/<name>.png` (the test's artefact) and returns what
/// [`CHECK_SCRIPT`] saw.
fn open_in_browser(browser: &str, page: &Path, name: &str, scratch: &Path) -> serde_json::Value {
    let html = std::fs::read_to_string(page).unwrap();
    let checked = page.with_file_name("checked-page.html");
    std::fs::write(
        &checked,
        html.replace("</body>", &format!("{CHECK_SCRIPT}</body>")),
    )
    .unwrap();
    let common = |cmd: &mut Command| {
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1200,1600",
            "--virtual-time-budget=5000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            scratch.join("profile").display()
        ));
    };
    let mut dump = Command::new(browser);
    common(&mut dump);
    let out = dump
        .arg("--dump-dom")
        .arg(format!("file://{}", checked.display()))
        .output()
        .unwrap();
    std::fs::remove_file(&checked).unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let report = dom
        .split("<pre id=\"page-check\">CHECK ")
        .nth(1)
        .and_then(|r| r.split(" END").next())
        .unwrap_or_else(|| {
            panic!(
                "{name}: the check did not run: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/page-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut shot = Command::new(browser);
    common(&mut shot);
    let png = shots.join(format!("{name}.png"));
    let out = shot
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        png.is_file(),
        "{name}: no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(report).unwrap()
}

/// Every committed report's page, and a page written now, as a reader sees them in a
/// browser: the figures before the first table, every caption with words, no text in a
/// figure under 11 px; a screenshot of each is left in `target/page-screenshots/`.
/// Chromium is a Debian package (`.ci/run` installs it); without it this test fails
/// unless `MI_EST_NO_BROWSER=1` says to leave it out.
#[test]
fn every_page_reads_in_a_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("MI_EST_NO_BROWSER").is_ok_and(|v| v == "1"),
            "no chromium: install it (apt-get install chromium) or set MI_EST_NO_BROWSER=1"
        );
        eprintln!("MI_EST_NO_BROWSER=1: the pages are not opened in a browser");
        return;
    };
    let scratch = crate::common::Scratch::new("pages", "browser");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let mut pages: Vec<(String, std::path::PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("index.html").is_file() {
            pages.push((
                dir.file_name().unwrap().to_string_lossy().into_owned(),
                dir.join("index.html"),
            ));
        }
        for sub in std::fs::read_dir(&dir).unwrap() {
            let sub = sub.unwrap().path();
            if sub.join("index.html").is_file() {
                pages.push((
                    sub.file_name().unwrap().to_string_lossy().into_owned(),
                    sub.join("index.html"),
                ));
            }
        }
    }
    assert!(pages.len() >= 8, "{pages:?}");
    pages.sort();
    for (name, page) in &pages {
        // A copy beside its own files, so that the check leaves the report untouched.
        let copy = scratch.join(name);
        std::fs::create_dir_all(&copy).unwrap();
        std::fs::copy(page, copy.join("index.html")).unwrap();
        let seen = open_in_browser(browser, &copy.join("index.html"), name, &scratch);
        let problems = seen["problems"].as_array().unwrap();
        assert!(problems.is_empty(), "{name}: {problems:?}");
        assert!(seen["figures"].as_u64().unwrap() >= 1, "{name}: no figure");
        let min_px = seen["min_px"].as_f64().unwrap();
        assert!(min_px >= 11.0, "{name}: text of {min_px:.1} px in a figure");
    }
}

/// `mi-est page` reads back only the Parquet a report's manifest recorded by hash: a
/// table whose bytes changed is refused, naming it, before it is parsed (polars sizes
/// allocations from a file's headers); a folder whose manifest records no hashes keeps
/// the plots it has, and its Parquet files, whatever they hold, are not read.
#[test]
fn a_page_reads_back_only_the_tables_its_manifest_recorded() {
    let dir = crate::common::Scratch::new("pages", "hashes");
    let out = dir.join("r");
    let status = Command::new(env!("CARGO_BIN_EXE_mi-est"))
        .args([
            "run",
            "--posterior",
            "fuzz/corpus/posterior/abs-2.safetensors",
        ])
        .args([
            "--estimators",
            "infonce,exact",
            "--k",
            "2",
            "--samples",
            "10",
        ])
        .args(["--repeats", "1", "--elbo-samples", "2", "--out"])
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(status.status.success());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let hashes = manifest["tables_sha256"].as_object().unwrap();
    assert_eq!(hashes.len(), 3, "{hashes:?}");
    let page = |dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_mi-est"))
            .arg("page")
            .arg(dir)
            .output()
            .unwrap()
    };
    assert!(page(&out).status.success());
    // A table changed after it was written: refused by its hash, never parsed.
    let bomb = out.join("bounds.parquet");
    let mut bytes = std::fs::read(&bomb).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&bomb, &bytes).unwrap();
    let o = page(&out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bounds.parquet") && err.contains("does not match `tables_sha256`"),
        "{err}"
    );
    // No hashes recorded: the plots as they are, no table read (this one is not Parquet).
    let mut m = manifest.clone();
    m.as_object_mut().unwrap().remove("tables_sha256");
    std::fs::write(out.join("manifest.json"), m.to_string()).unwrap();
    std::fs::write(&bomb, b"PAR1 not a table PAR1").unwrap();
    let o = page(&out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("records no table hashes"), "{html}");
}
