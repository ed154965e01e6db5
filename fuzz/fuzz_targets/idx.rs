//! Fuzzes the IDX image and label parsers with arbitrary bytes: they must return an error or
//! a result consistent with the header, never panic or allocate what the data does not hold.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz-input");
    if let Ok(images) = iekd::data::idx::parse_images(data, path) {
        assert_eq!(images.pixels.len(), images.count * images.rows * images.cols);
    }
    if let Ok(labels) = iekd::data::idx::parse_labels(data, path, 10) {
        assert!(labels.iter().all(|&l| l < 10));
    }
});
