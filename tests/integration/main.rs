//! The one integration-test crate of mi-est (one binary keeps link time down).

mod cli;
mod common;
mod estimators;
mod files;
mod foundation;
mod bad_input;
mod gradients;
mod hostile;
mod reproduce;
mod study;
mod training;
