//! Data sets: readers, augmentation and batching.
