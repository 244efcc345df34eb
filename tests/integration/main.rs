//! The one integration-test crate of mi-est (one binary keeps link time down).

mod bad_input;
mod cli;
mod common;
mod docs_commands;
mod estimators;
mod estimators_bounds;
mod fetch;
mod files;
mod formats;
mod formats_order;
mod foundation;
mod gradients;
mod hostile;
mod hostile_commands;
mod hostile_files;
mod pages;
mod reproduce;
mod reproduction_numbers;
mod specs;
mod specs_batchnorm;
mod specs_estimators;
mod study;
mod training;
mod writers;
