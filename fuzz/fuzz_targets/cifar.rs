//! Fuzzes the CIFAR-10 and CIFAR-100 record parsers with arbitrary bytes: they must return an
//! error or a consistent data set, never panic. Each input is also parsed cut to a whole number
//! of records, so the record path (labels, pixel layout) is reached, not only the size check.

#![no_main]

use std::path::Path;

use iekd::data::DatasetKind;
use iekd::data::cifar::{self, IMAGE_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for (kind, label_bytes) in [(DatasetKind::Cifar10, 1), (DatasetKind::Cifar100, 2)] {
        let whole = data.len() / (IMAGE_BYTES + label_bytes) * (IMAGE_BYTES + label_bytes);
        for bytes in [data, &data[..whole]] {
            if let Ok(set) = cifar::parse(kind, bytes, Path::new("fuzz-input")) {
                assert_eq!(set.images().len(), set.len() * 32 * 32 * 3);
                assert!(set.labels().iter().all(|&l| usize::from(l) < kind.num_classes()));
            }
        }
    }
});
