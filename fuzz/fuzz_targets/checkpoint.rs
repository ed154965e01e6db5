//! Fuzzes checkpoint parsing with arbitrary bytes: an error or a checkpoint whose every tensor
//! holds exactly the elements its shape says, never a panic or an allocation the data does not back.

#![no_main]

use std::path::Path;

use iekd::checkpoint::Checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ckpt) = Checkpoint::from_bytes(data, Path::new("fuzz-input")) {
        for (shape, values) in ckpt.tensors.values() {
            assert_eq!(shape.iter().product::<usize>(), values.len());
        }
    }
});
