//! The one door to faer's matrix product.
//!
//! faer's `matmul` reaches the hand-written assembly microkernels of `private-gemm-x86`
//! (AVX2 and AVX-512). They return without `vzeroupper`, so the upper halves of the
//! YMM/ZMM registers stay *dirty* after the product. Every later legacy-SSE
//! instruction — all of our scalar f64 code, compiled for baseline x86-64, and glibc's
//! `exp`/`log` — then pays for that dirty state: scalar code after a matmul ran up to
//! 30× slower on an AVX-512 Xeon and 13× slower on an AMD EPYC (Zen 3) virtual machine
//! (`cargo bench --bench scalar_after_matmul`).
//!
//! Every product in this crate therefore goes through `matmul` (with the `train` feature), which calls faer and
//! then [`clear_upper_vector_state`]. [`upper_vector_state_in_use`] reads the
//! processor's own record of the dirty state (`XGETBV` with `ECX = 1`), so tests check
//! the mechanism itself rather than a timing.

#[cfg(feature = "train")]
use faer::mat::{AsMatMut, AsMatRef};
#[cfg(feature = "train")]
use faer::{Accum, Par};

/// `dst = alpha · lhs · rhs` (`Accum::Replace`) or `dst += alpha · lhs · rhs`
/// (`Accum::Add`) through faer, leaving the upper vector state clean.
///
/// # Panics
///
/// If the shapes do not agree (as faer's `matmul`).
#[cfg(feature = "train")]
#[inline]
pub fn matmul(
    dst: impl AsMatMut<T = f64, Rows = usize, Cols = usize>,
    accum: Accum,
    lhs: impl AsMatRef<T = f64, Rows = usize, Cols = usize>,
    rhs: impl AsMatRef<T = f64, Rows = usize, Cols = usize>,
    alpha: f64,
    par: Par,
) {
    faer::linalg::matmul::matmul(dst, accum, lhs, rhs, alpha, par);
    clear_upper_vector_state();
}

/// Zeroes the upper halves of the vector registers (`vzeroupper`) on x86-64 processors
/// with AVX; a no-op elsewhere. Cheap (one instruction after a cached feature check).
#[inline]
pub fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the processor has AVX (checked just above).
            unsafe { zeroupper() }
        }
    }
}

/// Runs `f` inlined into a function compiled with AVX when the processor has it, so
/// that the compiler vectorizes its loops four f64 wide instead of two (baseline x86-64
/// has only SSE2). The results are the same bits: Rust never contracts `a * b + c`
/// into a fused multiply-add, and IEEE `+ − × ÷ sqrt` are correctly rounded at any
/// width. The compiler clears the upper vector state when the AVX function returns.
///
/// Mark the closure `#[inline(always)]`: the AVX function only vectorizes what is
/// inlined into it, and the compiler declines to inline a large closure by itself
/// (it then runs as baseline SSE2 code; the bits are the same, the speed is not).
#[inline(always)]
pub fn with_avx<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx")]
        fn run<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the processor has AVX (checked just above).
            return unsafe { run(f) };
        }
    }
    f()
}

/// As [`with_avx`] with AVX2 as well (256-bit integer lanes, which the branch-free
/// [`crate::vmath`] functions use to build powers of two); falls back to [`with_avx`].
/// Still no fused multiply-add: the same bits on every path.
#[inline(always)]
pub fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn run<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor has AVX2 (checked just above).
            return unsafe { run(f) };
        }
    }
    with_avx(f)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn zeroupper() {
    std::arch::x86_64::_mm256_zeroupper();
}

/// Whether the upper vector state is in use right now, as the processor records it:
/// bit 2 (upper 128 bits of YMM) or bits 6–7 (upper ZMM, ZMM16–31) of `XINUSE`
/// (`XGETBV` with `ECX = 1`). `None` where the processor cannot say (not x86-64, no
/// XSAVE, or no `XGETBV` with `ECX = 1`).
///
/// A processor may report a component in use that is in fact in its initial state, so
/// `Some(false)` is the informative answer; on the machines we measured, a product
/// through faer alone reports `Some(true)` and one through `matmul` `Some(false)`.
pub fn upper_vector_state_in_use() -> Option<bool> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid_count;
        if !std::arch::is_x86_feature_detected!("xsave") {
            return None;
        }
        // CPUID leaf 0Dh, sub-leaf 1, EAX bit 2: XGETBV with ECX = 1 is supported.
        let leaf = __cpuid_count(0x0D, 1);
        if leaf.eax & (1 << 2) == 0 {
            return None;
        }
        // SAFETY: XSAVE and XGETBV with ECX = 1 are supported (checked above).
        let in_use = unsafe { xgetbv_in_use() };
        Some(in_use & ((1 << 2) | (1 << 6) | (1 << 7)) != 0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "xsave")]
unsafe fn xgetbv_in_use() -> u64 {
    // SAFETY: the caller checked that XGETBV with ECX = 1 is supported.
    unsafe { std::arch::x86_64::_xgetbv(1) }
}

/// `Σ_k ((x_k − m_k) · s_k)²` with eight independent accumulators, so the reduction
/// vectorizes and is not bound by the latency of one chain of additions.
#[inline(always)]
pub fn scaled_square_distance(x: &[f64], m: &[f64], s: &[f64]) -> f64 {
    const LANES: usize = 8;
    let mut acc = [0.0f64; LANES];
    let (xc, xr) = x.split_at(x.len() - x.len() % LANES);
    let (mc, mr) = m.split_at(xc.len());
    let (sc, sr) = s.split_at(xc.len());
    for ((xa, ma), sa) in xc
        .chunks_exact(LANES)
        .zip(mc.chunks_exact(LANES))
        .zip(sc.chunks_exact(LANES))
    {
        for l in 0..LANES {
            let z = (xa[l] - ma[l]) * sa[l];
            acc[l] += z * z;
        }
    }
    let mut tail = 0.0;
    for ((xv, mv), sv) in xr.iter().zip(mr).zip(sr) {
        let z = (xv - mv) * sv;
        tail += z * z;
    }
    acc.iter().sum::<f64>() + tail
}

/// `Σ_k ((x[idx_k] − m_k) · s_k)²` (a gathered `x`), with the same eight lanes as
/// [`scaled_square_distance`].
///
/// # Panics
///
/// If an index is out of range or the lengths of `idx`, `m`, `s` differ.
#[inline(always)]
pub fn scaled_square_distance_gathered(x: &[f64], idx: &[usize], m: &[f64], s: &[f64]) -> f64 {
    const LANES: usize = 8;
    assert!(idx.len() == m.len() && m.len() == s.len());
    let mut acc = [0.0f64; LANES];
    let whole = idx.len() - idx.len() % LANES;
    for ((ia, ma), sa) in idx[..whole]
        .chunks_exact(LANES)
        .zip(m[..whole].chunks_exact(LANES))
        .zip(s[..whole].chunks_exact(LANES))
    {
        for l in 0..LANES {
            let z = (x[ia[l]] - ma[l]) * sa[l];
            acc[l] += z * z;
        }
    }
    let mut tail = 0.0;
    for ((&i, mv), sv) in idx[whole..].iter().zip(&m[whole..]).zip(&s[whole..]) {
        let z = (x[i] - mv) * sv;
        tail += z * z;
    }
    acc.iter().sum::<f64>() + tail
}

#[cfg(all(test, feature = "train"))]
mod tests {
    use super::*;
    use faer::Mat;

    fn operands() -> (Mat<f64>, Mat<f64>) {
        let a = Mat::from_fn(100, 784, |r, c| ((r * 7 + c * 3) % 11) as f64 - 5.0);
        let b = Mat::from_fn(784, 30, |r, c| ((r + 2 * c) % 5) as f64 * 0.25);
        (a, b)
    }

    #[test]
    fn product_through_the_helper_equals_faers() {
        let (a, b) = operands();
        let mut ours = Mat::<f64>::zeros(100, 30);
        let mut theirs = Mat::<f64>::zeros(100, 30);
        matmul(&mut ours, Accum::Replace, &a, &b, 0.5, Par::Seq);
        faer::linalg::matmul::matmul(&mut theirs, Accum::Replace, &a, &b, 0.5, Par::Seq);
        assert_eq!(ours, theirs);
        // A naive triple loop as the independent reference.
        for r in 0..100 {
            for c in 0..30 {
                let naive: f64 = 0.5 * (0..784).map(|k| a[(r, k)] * b[(k, c)]).sum::<f64>();
                assert!((ours[(r, c)] - naive).abs() <= 1e-9 * naive.abs().max(1.0));
            }
        }
    }

    #[test]
    fn helper_leaves_the_upper_vector_state_clean_where_faer_alone_does_not() {
        let (a, b) = operands();
        let mut z = Mat::<f64>::zeros(100, 30);
        // Only conclusive where the processor reports a cleared state as clear (it may
        // report "in use" conservatively, and off x86-64 it reports nothing).
        clear_upper_vector_state();
        if upper_vector_state_in_use() != Some(false) {
            eprintln!("the processor does not report a cleared vector state; nothing to check");
            return;
        }
        faer::linalg::matmul::matmul(&mut z, Accum::Replace, &a, &b, 1.0, Par::Seq);
        let raw = upper_vector_state_in_use();
        matmul(&mut z, Accum::Replace, &a, &b, 1.0, Par::Seq);
        assert_eq!(
            upper_vector_state_in_use(),
            Some(false),
            "the helper must leave it clean"
        );
        // faer runs private-gemm-x86's assembly kernels on AVX2 + FMA processors, and
        // they leave the state dirty: the reason for the helper (and proof that the
        // check above can fail).
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            assert_eq!(
                raw,
                Some(true),
                "faer's matmul alone should leave the upper state dirty"
            );
        }
        let _ = raw;
        // faer's other operations that this crate calls are compiled Rust (pulp), which
        // the compiler ends with `vzeroupper`: they leave the state clean by themselves.
        let big = Mat::<f64>::zeros(1000, 300);
        assert_eq!(upper_vector_state_in_use(), Some(false), "Mat::zeros");
        let copy = big.as_ref().transpose().to_owned();
        assert_eq!(upper_vector_state_in_use(), Some(false), "to_owned");
        let filled = Mat::from_fn(500, 200, |r, c| (r + c) as f64);
        assert_eq!(upper_vector_state_in_use(), Some(false), "from_fn");
        assert_eq!((copy.nrows(), filled[(1, 2)]), (300, 3.0));
    }
}
