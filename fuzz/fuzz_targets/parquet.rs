#![no_main]
//! Fuzzes `mi_est::fuzz_entry::parquet` (see its docs).

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // libFuzzer's hook aborts on every panic, even one that mi-est catches (it
        // catches a panic of the third-party Parquet decoder on malformed input and
        // reports a bad file). A quiet hook lets `catch_unwind` work; a panic that
        // escapes still aborts where it unwinds out of the fuzzer's C entry point.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| mi_est::fuzz_entry::parquet(data)
);
