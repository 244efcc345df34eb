#![no_main]
//! Fuzzes `mi_est::fuzz_entry::csv` (see its docs).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mi_est::fuzz_entry::csv(data));
