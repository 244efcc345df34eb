//! The command's parts: its arguments, the values its flags take, its progress display,
//! and one file per subcommand.

pub(crate) mod args;
pub(crate) mod data;
pub(crate) mod demo;
pub(crate) mod inspect;
pub(crate) mod merge;
pub(crate) mod observer;
pub(crate) mod page;
pub(crate) mod reproduce;
pub(crate) mod run;
pub(crate) mod spec;
pub(crate) mod train;
pub(crate) mod values;
