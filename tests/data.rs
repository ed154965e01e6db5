//! Integration tests of the data module: readers on small files in the standard formats,
//! corrupt files, the real Fashion-MNIST when installed, and the batch loader (downloads are in
//! tests/fetch.rs).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;

use common::*;
use iekd::data::{Augment, Batch, Dataset, DatasetKind, Loader, LoaderConfig, Split, augment, load};

/// Counts the largest single allocation made by the current thread.
struct PeakAlloc;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = PEAK.try_with(|p| p.set(p.get().max(layout.size())));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = PEAK.try_with(|p| p.set(p.get().max(new_size)));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// Asserts that the test split of `kind` in `dir` loads with these labels.
fn assert_test_labels(kind: DatasetKind, dir: &Path, labels: &[u8]) {
    assert_eq!(load(kind, dir, Split::Test).unwrap().labels(), labels);
}

// ---------- names ----------

#[test]
fn kind_names_parse_and_print() {
    for kind in DatasetKind::ALL {
        assert_eq!(kind.to_string().parse::<DatasetKind>().unwrap(), kind);
        assert_eq!(kind.mean().len(), kind.channels());
        assert_eq!(kind.std().len(), kind.channels());
    }
    assert_eq!("CIFAR-10".parse::<DatasetKind>().unwrap(), DatasetKind::Cifar10);
    assert_eq!("fashion_mnist".parse::<DatasetKind>().unwrap(), DatasetKind::FashionMnist);
    assert!(err_of("imagenet".parse::<DatasetKind>()).contains("unknown data set 'imagenet'"));
    assert_eq!(DatasetKind::Cifar100.default_dir(), Path::new("data/cifar100"));
    assert_eq!(DatasetKind::Cifar100.num_classes(), 100);
    assert!(DatasetKind::Cifar10.default_flip() && DatasetKind::FashionMnist.default_flip());
    assert!(!DatasetKind::Mnist.default_flip());
}

// ---------- CIFAR ----------

#[test]
fn cifar10_loads_channels_last_from_archive_folder() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar10(&tmp.path().join("cifar-10-batches-bin"));
    let train = load(DatasetKind::Cifar10, tmp.path(), Split::Train).unwrap();
    assert_eq!((train.len(), train.height(), train.width(), train.channels()), (10, 32, 32, 3));
    assert_eq!(train.labels(), &[1, 8, 2, 7, 3, 6, 4, 5, 5, 4]);
    // image 1 of batch 1 has seed 1: pixel p, channel c = p + 7c + 1 (mod 256)
    let img = train.image(1).unwrap();
    for p in [0usize, 33, 1023] {
        for c in 0..3 {
            assert_eq!(img[p * 3 + c], ((p % 256) as u8).wrapping_add(7 * c as u8 + 1));
        }
    }
    assert_test_labels(DatasetKind::Cifar10, &tmp.path().join("cifar-10-batches-bin"), &[0, 1, 2]);
}

#[test]
fn cifar100_loads_fine_labels() {
    let tmp = tempfile::tempdir().unwrap();
    write_files(
        &tmp.path().join("cifar-100-binary"),
        [
            ("train.bin", [cifar_record(&[19, 99], 0), cifar_record(&[3, 17], 1)].concat()),
            ("test.bin", cifar_record(&[0, 0], 2)),
        ],
    );
    let d = load(DatasetKind::Cifar100, tmp.path(), Split::Train).unwrap();
    assert_eq!((d.labels(), d.num_classes()), (&[99u8, 17][..], 100));
    assert_eq!(load(DatasetKind::Cifar100, tmp.path(), Split::Test).unwrap().len(), 1);
}

#[test]
fn cifar_bad_files_are_one_line_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar10(tmp.path());
    std::fs::remove_file(tmp.path().join("data_batch_3.bin")).unwrap();
    let e = err_of(load(DatasetKind::Cifar10, tmp.path(), Split::Train));
    assert!(e.contains("data_batch_3.bin") && e.contains("not found") && !e.contains('\n'), "{e}");

    let mut truncated = cifar10_file(&[1, 2]);
    truncated.truncate(3073 + 100);
    std::fs::write(tmp.path().join("test_batch.bin"), truncated).unwrap();
    let e = err_of(load(DatasetKind::Cifar10, tmp.path(), Split::Test));
    assert!(e.contains("test_batch.bin at byte 3073") && e.contains("100 bytes left over"), "{e}");

    std::fs::write(tmp.path().join("test_batch.bin"), cifar10_file(&[1, 10])).unwrap();
    let e = err_of(load(DatasetKind::Cifar10, tmp.path(), Split::Test));
    assert!(e.contains("test_batch.bin at byte 3073") && e.contains("label 10"), "{e}");
}

// ---------- IDX ----------

#[test]
fn mnist_raw_and_gzip_load_padded_to_32() {
    let tmp = tempfile::tempdir().unwrap();
    write_mnist(tmp.path());
    let train = load(DatasetKind::Mnist, tmp.path(), Split::Train).unwrap();
    assert_eq!((train.len(), train.height(), train.width(), train.channels()), (5, 32, 32, 1));
    assert_eq!(train.labels(), &[0, 1, 2, 3, 9]);
    let img = train.image(0).unwrap();
    assert!(img[..2 * 32].iter().all(|&v| v == 0), "top border is zero");
    assert_eq!(img[2 * 32 + 2], 1, "first pixel lands at (2, 2)");
    assert_eq!(img.iter().filter(|&&v| v == 0).count(), 1024 - 784);
    assert_test_labels(DatasetKind::Mnist, tmp.path(), &[7, 8, 9]);
}

#[test]
fn fashion_mnist_accepts_torchvision_layout_and_dotted_names() {
    let tmp = tempfile::tempdir().unwrap();
    write_files(
        &tmp.path().join("FashionMNIST/raw"),
        [("t10k-images.idx3-ubyte", idx_images(2)), ("t10k-labels.idx1-ubyte.gz", gz(&idx_labels(&[4, 5])))],
    );
    let d = load(DatasetKind::FashionMnist, tmp.path(), Split::Test).unwrap();
    assert_eq!((d.len(), d.labels()), (2, &[4u8, 5][..]));
}

#[test]
fn idx_corrupt_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_mnist(dir);
    let images = dir.join("train-images-idx3-ubyte");
    let labels = dir.join("train-labels-idx1-ubyte");
    let check = |want: &[&str]| {
        let e = err_of(load(DatasetKind::Mnist, dir, Split::Train));
        assert!(want.iter().all(|w| e.contains(w)) && !e.contains('\n'), "{e}");
    };
    std::fs::write(&images, idx(0x801, &[5], &[0; 5])).unwrap();
    check(&["train-images-idx3-ubyte at byte 0", "wrong magic number 0x00000801"]);
    let mut short = idx_images(5);
    short.truncate(16 + 784 * 4 + 10);
    std::fs::write(&images, short).unwrap();
    check(&["train-images-idx3-ubyte at byte 16", "only holds 3146"]);
    std::fs::write(&images, idx_images(4)).unwrap();
    check(&["train-labels-idx1-ubyte", "holds 5 labels", "holds 4 images"]);
    std::fs::write(&images, idx_images(5)).unwrap();
    std::fs::write(&labels, idx_labels(&[0, 1, 10, 3, 4])).unwrap();
    check(&["train-labels-idx1-ubyte at byte 10", "label 10"]);
    std::fs::remove_file(&labels).unwrap();
    check(&["train-labels-idx1-ubyte", "not found"]);
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), b"not gzip at all").unwrap();
    let e = err_of(load(DatasetKind::Mnist, dir, Split::Test));
    assert!(e.contains("t10k-images-idx3-ubyte.gz") && e.contains("gzip"), "{e}");
}

#[test]
fn lying_header_is_an_error_without_a_huge_allocation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_mnist(dir);
    let huge = idx(0x803, &[u32::MAX, 28, 28], &[7; 784 * 2]);
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("train-images-idx3-ubyte", huge.clone(), "only holds 1568"),
        ("t10k-images-idx3-ubyte.gz", gz(&huge), "more than a"),
        // within what gzip could hold, so it is read with a limit and found short
        ("t10k-images-idx3-ubyte.gz", gz(&idx(0x803, &[200, 28, 28], &noise(784 * 2))), "only holds 1568"),
    ];
    for (name, bytes, want) in cases {
        std::fs::write(dir.join(name), bytes).unwrap();
        let split = if name.starts_with("train") { Split::Train } else { Split::Test };
        PEAK.with(|p| p.set(0));
        let e = err_of(load(DatasetKind::Mnist, dir, split));
        let peak = PEAK.with(|p| p.get());
        assert!(e.contains(name) && e.contains(want), "{e}");
        assert!(peak < 1 << 20, "{name}: largest allocation {peak} bytes");
    }
    // a gzip stream longer than its header says is read only one byte past the end
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gz(&idx(0x803, &[1, 28, 28], &[7; 784 * 50])))
        .unwrap();
    let e = err_of(load(DatasetKind::Mnist, dir, Split::Test));
    assert!(e.contains("more follows"), "{e}");
}

#[test]
fn real_fashion_mnist_from_debian_package() {
    if !common::fashion_installed() {
        return;
    }
    let dir = Path::new(iekd::data::DEBIAN_FASHION_MNIST_DIR);
    assert_eq!(DatasetKind::FashionMnist.default_dir(), dir);
    let train = load(DatasetKind::FashionMnist, dir, Split::Train).unwrap();
    let test = load(DatasetKind::FashionMnist, dir, Split::Test).unwrap();
    for d in [&train, &test] {
        assert_eq!((d.height(), d.width(), d.channels(), d.num_classes()), (32, 32, 1, 10));
    }
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(train.class_counts(), vec![6000; 10]);
    assert_eq!(test.class_counts(), vec![1000; 10]);
    let mean = train.images().iter().map(|&v| f64::from(v)).sum::<f64>() / (60_000.0 * 784.0 * 255.0);
    assert!((mean - f64::from(DatasetKind::FashionMnist.mean()[0])).abs() < 1e-3, "mean {mean}");
    let loader = Loader::new(train, LoaderConfig::train(DatasetKind::FashionMnist, 128, 0)).unwrap();
    let start = std::time::Instant::now();
    let (mut seen, mut batches) = (0, 0);
    for b in loader.epoch(0) {
        assert!(b.images.iter().all(|v| v.is_finite()) && (b.h, b.w, b.c) == (32, 32, 1));
        seen += b.n;
        batches += 1;
    }
    assert_eq!((seen, batches), (60_000, 469));
    eprintln!("one augmented Fashion-MNIST epoch prepared in {:?}", start.elapsed());
}

// ---------- loader ----------

fn random_dataset(n: usize) -> Dataset {
    Dataset::new(noise(n * 32 * 32 * 3), (0..n).map(|i| (i % 10) as u8).collect(), 10, [32, 32, 3]).unwrap()
}

fn collect(loader: &Loader, epoch: u64, slow: bool) -> Vec<Batch> {
    loader
        .epoch(epoch)
        .inspect(|_| {
            if slow {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
        .collect()
}

#[test]
fn loader_is_reproducible_and_reshuffles_each_epoch() {
    let data = Arc::new(random_dataset(50));
    let cfg = LoaderConfig::train(DatasetKind::Cifar10, 16, 7);
    let a = Loader::new(Arc::clone(&data), cfg.clone()).unwrap();
    let b = Loader::new(Arc::clone(&data), cfg.clone()).unwrap();
    let e0 = collect(&a, 0, false);
    assert_eq!(e0, collect(&b, 0, true), "same seed, same batches whatever the timing");
    assert_eq!(e0.iter().map(|b| b.n).collect::<Vec<_>>(), [16, 16, 16, 2]);
    assert_eq!((e0[0].h, e0[0].w, e0[0].c, e0[0].images.len()), (32, 32, 3, 16 * 32 * 32 * 3));
    let order = |bs: &[Batch]| bs.iter().flat_map(|b| b.indices.clone()).collect::<Vec<_>>();
    let mut sorted = order(&e0);
    sorted.sort_unstable();
    assert_eq!(sorted, (0..50).collect::<Vec<_>>(), "each image once per epoch");
    assert_ne!(order(&e0), order(&collect(&a, 1, false)), "new epoch, new order");
    let other = Loader::new(Arc::clone(&data), LoaderConfig { seed: 8, ..cfg }).unwrap();
    assert_ne!(e0, collect(&other, 0, false), "new seed, new batches");
    for b in &e0 {
        let want: Vec<usize> = b.indices.iter().map(|&i| usize::from(data.labels()[i])).collect();
        assert_eq!(b.labels, want);
    }
    let eval = Loader::new(data, LoaderConfig::eval(DatasetKind::Cifar10, 16)).unwrap();
    assert_eq!(order(&collect(&eval, 3, false)), (0..50).collect::<Vec<_>>());
}

/// The window `(dy, dx)` of the 4-pixel reflect-padded 32x32 source, and the mirroring, that
/// produce `img` (channel 0 = source row * 8, channel 1 = source column * 8), if any does.
fn explain(img: &[f32]) -> Option<(isize, isize, bool)> {
    let at = |y: usize, x: usize, c: usize| (img[(y * 32 + x) * 3 + c] * 255.0 / 8.0).round() as usize;
    let candidates = (0..=8).flat_map(|dy| (0..=8).flat_map(move |dx| [(dy, dx, false), (dy, dx, true)]));
    let mut found = candidates.filter(|&(dy, dx, mirrored)| {
        (0..32).all(|y| {
            (0..32).all(|x| {
                let col = if mirrored { 31 - x } else { x } as isize;
                at(y, x, 0) == augment::reflect(y as isize + dy - 4, 32)
                    && at(y, x, 1) == augment::reflect(col + dx - 4, 32)
            })
        })
    });
    let first = found.next();
    assert!(found.next().is_none(), "one window only");
    first
}

#[test]
fn augmented_crop_is_a_shifted_window_of_the_reflect_padded_image() {
    // channel 0 holds the row, channel 1 the column (times 8), so each output pixel says
    // where in the source it came from
    let mut images = vec![0u8; 4 * 32 * 32 * 3];
    for (p, px) in images.chunks_exact_mut(3).enumerate() {
        px[0] = ((p / 32) % 32 * 8) as u8;
        px[1] = (p % 32 * 8) as u8;
    }
    let data = Dataset::new(images, vec![0, 1, 2, 3], 10, [32, 32, 3]).unwrap();
    for flip in [false, true] {
        let cfg = LoaderConfig {
            batch_size: 4,
            shuffle: true,
            augment: Some(Augment { pad: 4, flip }),
            drop_last: false,
            seed: 1,
            mean: vec![0.0; 3],
            std: vec![1.0; 3],
        };
        let loader = Loader::new(data.clone(), cfg).unwrap();
        let mut flipped = 0;
        for epoch in 0..20 {
            let pixels: Vec<f32> = loader.epoch(epoch).flat_map(|b| b.images).collect();
            for img in pixels.chunks_exact(32 * 32 * 3) {
                let (_, _, mirrored) = explain(img).expect("output is a window of the padded image");
                flipped += usize::from(mirrored);
            }
        }
        assert_eq!(flipped > 0, flip, "flips only when asked");
    }
}
