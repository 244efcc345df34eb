//! `mi-est spec --sequential`: the permutation spec of a plain chain of layers.

use anyhow::Result;

use super::args::SpecArgs;

/// `mi-est spec --sequential`: the spec of a posterior's layers as a plain chain,
/// checked against the file before it is written.
pub(crate) fn spec(a: SpecArgs, limits: &mi_est::resources::Limits) -> Result<()> {
    let layers = a.layers.as_ref().map(|l| l.0.as_slice());
    let spec = mi_est::io::sequential_spec(&a.posterior, layers, limits)?;
    // The spec must read the file it came from (a fixed layer it would permute fails here).
    let read = mi_est::io::ReadOptions {
        limits: *limits,
        ..mi_est::io::ReadOptions::spec(Some(&spec))
    };
    mi_est::io::load_with_bytes(&a.posterior, read)?;
    let text = spec.to_json() + "\n";
    match &a.out {
        Some(out) => {
            mi_est::atomic::write_atomic(out, text.as_bytes(), a.overwrite)?;
            eprintln!("wrote {}", out.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
