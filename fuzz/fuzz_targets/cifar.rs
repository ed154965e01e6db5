//! Fuzzes the CIFAR-10 and CIFAR-100 record parsers with arbitrary bytes: they must return an
//! error or a consistent data set, never panic.

#![no_main]

use std::path::Path;

use iekd::data::DatasetKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in [DatasetKind::Cifar10, DatasetKind::Cifar100] {
        if let Ok(set) = iekd::data::cifar::parse(kind, data, Path::new("fuzz-input")) {
            assert_eq!(set.images().len(), set.len() * 32 * 32 * 3);
            assert!(set.labels().iter().all(|&l| usize::from(l) < kind.num_classes()));
        }
    }
});
