//! One file per experiment of `mi-est reproduce`, each a unit struct implementing
//! [`Study`](crate::study::experiment::Study): from
//! [`ReproduceOptions`](crate::study::experiment::ReproduceOptions) to a
//! [`Reproduction`](crate::study::experiment::Reproduction); the shared types are in
//! [`crate::study::experiment`], the dispatch in [`crate::study::reproduce`].

pub mod estimator_cost;
pub mod mnist;
pub mod mnist_objectives;
pub mod mode_interpolation;
pub mod mode_proximity;
pub mod symmetry_regime;
pub mod symmetry_replication;
pub mod tractable_bnn;
pub(crate) mod tractable_quadrature;
pub mod tractable_sweep;
