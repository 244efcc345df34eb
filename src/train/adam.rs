//! Adam (Kingma & Ba 2015) with the standard defaults. It only computes the next step;
//! the training loop owns iteration and stopping.

/// Adam state for a flat parameter vector.
#[derive(Clone, Debug)]
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    t: u64,
    b1t: f64,
    b2t: f64,
}

impl Adam {
    /// Adam with learning rate `lr`, β₁ = 0.9, β₂ = 0.999, ε = 10⁻⁸, for `n` parameters.
    pub fn new(n: usize, lr: f64) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            b1t: 0.0,
            b2t: 0.0,
        }
    }

    /// One descent step on `params` along the loss gradient `grad`.
    ///
    /// # Panics
    ///
    /// If the lengths differ from the state's.
    pub fn step(&mut self, params: &mut [f64], grad: &[f64]) {
        assert_eq!(params.len(), self.m.len());
        self.begin_step();
        self.update_slice(0, params, grad);
    }

    /// Starts a step taken slice by slice with [`update_slice`](Self::update_slice) (so
    /// that the caller can fuse it with other per-parameter work): advances the step
    /// count and its bias corrections.
    pub fn begin_step(&mut self) {
        self.t += 1;
        self.b1t = 1.0 - self.beta1.powi(self.t as i32);
        self.b2t = 1.0 - self.beta2.powi(self.t as i32);
    }

    /// Moves the parameters at state positions `offset..offset + params.len()` of the
    /// current step (after [`begin_step`](Self::begin_step)) along the loss gradient
    /// `grad`; [`step`](Self::step) is this for the whole state. Plain IEEE arithmetic
    /// with `sqrt`, so vectorized code gives the same bits as one coordinate at a time.
    ///
    /// # Panics
    ///
    /// If `grad` and `params` differ in length or the range leaves the state.
    #[inline]
    pub fn update_slice(&mut self, offset: usize, params: &mut [f64], grad: &[f64]) {
        assert_eq!(params.len(), grad.len());
        let end = offset + params.len();
        let (beta1, beta2, lr, eps) = (self.beta1, self.beta2, self.lr, self.eps);
        let (b1t, b2t) = (self.b1t, self.b2t);
        let (m, v) = (&mut self.m[offset..end], &mut self.v[offset..end]);
        crate::linalg::with_avx(
            #[inline(always)]
            || {
                for (((p, g), m), v) in params.iter_mut().zip(grad).zip(m).zip(v) {
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                    *p -= lr * (*m / b1t) / ((*v / b2t).sqrt() + eps);
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_coordinate_by_the_learning_rate() {
        let mut adam = Adam::new(2, 0.1);
        let mut p = [1.0, -1.0];
        adam.step(&mut p, &[3.0, -0.01]);
        assert!(
            (p[0] - 0.9).abs() < 1e-6 && (p[1] + 0.9).abs() < 1e-5,
            "{p:?}"
        );
    }

    #[test]
    fn minimizes_a_quadratic() {
        let mut adam = Adam::new(1, 0.05);
        let mut p = [5.0];
        for _ in 0..2000 {
            let g = [2.0 * (p[0] - 1.5)];
            adam.step(&mut p, &g);
        }
        assert!((p[0] - 1.5).abs() < 1e-3);
    }
}
