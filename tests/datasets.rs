//! Datasets beyond the Fashion-MNIST shortcut: any IDX pair, folders of PNG and JPEG files
//! made here (colour and grey, odd sizes, a corrupt file, a non-image file), colour and
//! other sizes through real training runs, and the decoded-data cache for folders.

mod common;

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageFormat, Luma, Rgb, RgbImage};

use dcgan_harness::config::{DataConfig, DatasetName};
use dcgan_harness::data::{DataError, DatasetCache, Shape, decoded};

use common::{bundled_data, dcgan, gunzip, manifest, run_dirs, stderr, stdout, write_file};

fn folder_config(path: &Path, side: usize, channels: usize) -> DataConfig {
    DataConfig {
        dataset: DatasetName::Folder,
        path: Some(path.to_path_buf()),
        image_size: side,
        channels,
        ..DataConfig::default()
    }
}

fn save(image: DynamicImage, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let format = ImageFormat::from_path(path).unwrap();
    image.save_with_format(path, format).unwrap();
}

/// A class folder layout: `red/` holds colour images, `grey/` grey ones, in PNG and JPEG at
/// odd sizes; plus a corrupt `.png`, a text file and a hidden file that must be ignored.
fn photo_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (i, (w, h)) in [(37, 23), (100, 61), (64, 64), (19, 140)].into_iter().enumerate() {
        let red = RgbImage::from_pixel(w, h, Rgb([220, 30, 40]));
        save(red.into(), &root.join(format!("red/r{i}.png")));
        let grey = GrayImage::from_fn(w, h, |x, _| Luma([(x * 255 / w) as u8]));
        save(grey.into(), &root.join(format!("grey/nested/g{i}.jpg")));
    }
    // A wide picture whose centre square is white and whose sides are blue: the crop keeps
    // only white.
    let wide = RgbImage::from_fn(90, 30, |x, _| {
        if (30..60).contains(&x) { Rgb([255, 255, 255]) } else { Rgb([0, 0, 255]) }
    });
    save(wide.into(), &root.join("red/wide.PNG"));
    std::fs::write(root.join("red/broken.png"), b"not a png at all").unwrap();
    std::fs::write(root.join("grey/notes.txt"), b"a text file among the images").unwrap();
    std::fs::write(root.join("grey/.hidden.png"), b"hidden files are not listed").unwrap();
    dir
}

#[test]
fn a_folder_decodes_every_readable_image_lists_the_broken_one_and_keeps_classes() {
    let folder = photo_folder();
    let data = DatasetCache::default().dataset(&folder_config(folder.path(), 32, 3)).unwrap();
    assert_eq!(data.len(), 9, "4 grey + 4 red + the wide one; not the broken, text or hidden");
    assert_eq!(data.source.count, 10, "the broken .png is an image file that was listed");
    assert_eq!(data.source.classes, vec!["grey", "red"]);
    assert_eq!(data.skipped.len(), 1);
    assert_eq!(data.skipped[0].name, "red/broken.png");
    assert_eq!(data.image(0).len(), 32 * 32 * 3);
    // Sorted by path: grey/nested/g0..g3.jpg, then red/broken (skipped), r0..r3, wide.
    assert_eq!(&data.labels[..], &[0, 0, 0, 0, 1, 1, 1, 1, 1]);
    let plane = 32 * 32;
    let grey = data.image(0);
    assert_eq!(&grey[..plane], &grey[plane..2 * plane], "grey spread over the three planes");
    let red = data.image(4);
    assert!(red[..plane].iter().all(|&v| v > 200) && red[2 * plane..].iter().all(|&v| v < 60));
    let wide = data.image(8);
    assert!(wide.iter().all(|&v| v > 240), "the centre square of the wide image is white");

    let grey_data = DatasetCache::default().dataset(&folder_config(folder.path(), 64, 1)).unwrap();
    assert_eq!(grey_data.image(4).len(), 64 * 64, "colour converted to one channel");
    assert_eq!(grey_data.source.fingerprint, data.source.fingerprint, "same files");
}

#[test]
fn strict_mode_fails_on_the_unreadable_file_and_names_it() {
    let folder = photo_folder();
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "data: {{ dataset: folder, path: {}, strict: true, image_size: 32 }}\n\
         model: {{ width: 2, z_dim: 8 }}\ntrain: {{ steps: 2, batch_size: 4 }}\n",
        folder.path().display()
    );
    let file = write_file(tmp.path(), "strict.yaml", &text);
    let out = dcgan(tmp.path(), &["run", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let runs = run_dirs(&tmp.path().join("runs"));
    assert_eq!(runs.len(), 1, "the failure is recorded in a run directory");
    let m = manifest(&runs[0]);
    assert_eq!(m.status, dcgan_harness::store::manifest::Status::Failed);
    assert!(m.failure.unwrap_or_default().contains("red/broken.png"));
    let listed = stdout(&dcgan(tmp.path(), &["ls", "--runs-dir", "runs"]));
    assert_eq!(listed.lines().count(), 2, "a header and one line per run:\n{listed}");
    assert!(listed.contains("failed") && listed.contains("red/broken.png"), "{listed}");

    let folder = photo_folder();
    let cfg = DataConfig { strict: true, ..folder_config(folder.path(), 32, 1) };
    let runs = tempfile::tempdir().unwrap();
    // Once decoding, once from the cache that a lenient read filled: both refuse.
    for cache in [DatasetCache::default(), DatasetCache::on_disk(runs.path())] {
        let mut cache = cache;
        let err = cache.dataset(&cfg).unwrap_err();
        assert!(matches!(err, DataError::Unreadable { count: 1, .. }), "{err}");
        assert!(err.to_string().contains("red/broken.png"), "{err}");
        let lenient = folder_config(folder.path(), 32, 1);
        assert_eq!(DatasetCache::on_disk(runs.path()).dataset(&lenient).unwrap().len(), 9);
    }
}

/// Entries a walk must not trip over: a pipe named like an image (reading it would block), a
/// symbolic link back up the tree, a file name that is not UTF-8, and a runs folder (with its
/// sample grids) inside the image folder.
#[test]
fn pipes_link_loops_odd_names_and_runs_folders_are_handled() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let image = || DynamicImage::from(RgbImage::from_pixel(8, 8, Rgb([10, 200, 30])));
    save(image(), &root.join("a/one.png"));
    let odd = std::ffi::OsStr::from_bytes(b"\xff\xfe.png");
    save(image(), &root.join("a").join(odd));
    std::os::unix::fs::symlink("..", root.join("a/up")).unwrap();
    let fifo = std::ffi::CString::new(root.join("a/pipe.png").as_os_str().as_bytes()).unwrap();
    // SAFETY: a plain libc call on a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    std::fs::create_dir_all(root.join("runs/.locks")).unwrap();
    save(image(), &root.join("runs/abc/samples/step_000001.png"));
    let cfg = folder_config(root, 32, 3);
    let data = DatasetCache::on_disk(&root.join("runs/.cache")).dataset(&cfg).unwrap();
    assert_eq!(data.len(), 2, "one.png and the odd name, once each; {:?}", data.skipped);
    assert!(data.skipped.is_empty(), "{:?}", data.skipped);
}

#[test]
fn folders_without_images_or_with_only_broken_ones_are_clear_errors() {
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("readme.txt"), b"no images here").unwrap();
    let err = DatasetCache::default().dataset(&folder_config(empty.path(), 64, 1)).unwrap_err();
    assert!(err.to_string().contains("holds no PNG or JPEG files"), "{err}");
    std::fs::write(empty.path().join("a.jpg"), b"garbage").unwrap();
    let err = DatasetCache::default().dataset(&folder_config(empty.path(), 64, 1)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("none of the 1 image files") && msg.contains("a.jpg"), "{msg}");
    // A class whose only file is broken is listed but has no image: one class is present.
    let two = tempfile::tempdir().unwrap();
    save(RgbImage::from_pixel(4, 4, Rgb([9, 9, 9])).into(), &two.path().join("red/1.png"));
    save(RgbImage::from_pixel(4, 4, Rgb([9, 9, 9])).into(), &two.path().join("red/2.png"));
    std::fs::create_dir_all(two.path().join("blue")).unwrap();
    std::fs::write(two.path().join("blue/1.png"), b"broken").unwrap();
    let data = DatasetCache::default().dataset(&folder_config(two.path(), 32, 1)).unwrap();
    assert_eq!((data.class_count(), data.classes_present()), (2, 1));
    // A runs folder is not an image folder.
    std::fs::create_dir_all(two.path().join("runs/.locks")).unwrap();
    let runs = folder_config(&two.path().join("runs"), 32, 1);
    let msg = DatasetCache::default().dataset(&runs).unwrap_err().to_string();
    assert!(msg.contains("is a runs folder"), "{msg}");
    let missing = folder_config(&empty.path().join("nope"), 64, 1);
    let msg = DatasetCache::default().dataset(&missing).unwrap_err().to_string();
    assert!(msg.contains("cannot read") && msg.contains("nope"), "{msg}");
}

#[test]
fn a_folder_is_cached_once_fingerprinted_by_content_and_rebuilt_when_damaged() {
    let folder = photo_folder();
    let runs = tempfile::tempdir().unwrap();
    let cache_dir = runs.path().join(".cache");
    let cfg = folder_config(folder.path(), 32, 3);
    let first = DatasetCache::on_disk(&cache_dir).dataset(&cfg).unwrap();
    assert!(first.decoded_here, "a miss decodes");
    let hit = DatasetCache::on_disk(&cache_dir).dataset(&cfg).unwrap();
    assert!(!hit.decoded_here && hit.is_mapped(), "a hit maps");
    assert_eq!(hit.pixels(), first.pixels());
    assert_eq!(
        (hit.labels.clone(), hit.skipped.clone()),
        (first.labels.clone(), first.skipped.clone())
    );

    // The same files elsewhere have the same fingerprint, so they share the cache.
    let copy = tempfile::tempdir().unwrap();
    copy_tree(folder.path(), copy.path());
    let moved = DatasetCache::on_disk(&cache_dir).dataset(&folder_config(copy.path(), 32, 3));
    let moved = moved.unwrap();
    assert_eq!(moved.source.fingerprint, first.source.fingerprint);
    assert!(!moved.decoded_here, "same content, same cache file");

    // A changed image is another dataset: a miss.
    let changed = RgbImage::from_pixel(10, 10, Rgb([1, 2, 3]));
    save(changed.into(), &copy.path().join("red/r0.png"));
    let other = DatasetCache::on_disk(&cache_dir).dataset(&folder_config(copy.path(), 32, 3));
    let other = other.unwrap();
    assert_ne!(other.source.fingerprint, first.source.fingerprint);
    assert!(other.decoded_here);

    // A cache file cut short is found out and rebuilt whole.
    let file =
        decoded::path(&cache_dir, &first.source.fingerprint, Shape { side: 32, channels: 3 });
    let whole = std::fs::read(&file).unwrap();
    std::fs::write(&file, &whole[..whole.len() - 7]).unwrap();
    let rebuilt = DatasetCache::on_disk(&cache_dir).dataset(&cfg).unwrap();
    assert!(rebuilt.decoded_here, "the partial file was not used");
    assert_eq!(std::fs::read(&file).unwrap(), whole, "rebuilt byte for byte");
    let names: Vec<String> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".images")), "no partial files left: {names:?}");
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The first `n` images and labels of the bundled test split as plain IDX files in `dir`.
fn idx_subset(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let images = gunzip(&bundled_data().join("t10k-images-idx3-ubyte.gz"));
    let labels = gunzip(&bundled_data().join("t10k-labels-idx1-ubyte.gz"));
    let mut image_file = vec![0, 0, 8, 3];
    for d in [n as u32, 28, 28] {
        image_file.extend_from_slice(&d.to_be_bytes());
    }
    image_file.extend_from_slice(&images[16..16 + n * 784]);
    let mut label_file = vec![0, 0, 8, 1];
    label_file.extend_from_slice(&(n as u32).to_be_bytes());
    label_file.extend_from_slice(&labels[8..8 + n]);
    let (i, l) = (dir.join("some-images.idx"), dir.join("some-labels.idx"));
    std::fs::write(&i, image_file).unwrap();
    std::fs::write(&l, label_file).unwrap();
    (i, l)
}

#[test]
fn an_idx_pair_reads_like_the_fashion_shortcut_and_other_sizes_are_cropped() {
    let bundled = bundled_data();
    let as_idx = DataConfig {
        dataset: DatasetName::Idx,
        images: Some(bundled.join("t10k-images-idx3-ubyte.gz")),
        labels: Some(bundled.join("t10k-labels-idx1-ubyte.gz")),
        ..DataConfig::default()
    };
    let shortcut = DataConfig {
        split: dcgan_harness::config::Split::Test,
        path: Some(bundled.clone()),
        ..DataConfig::default()
    };
    let mut cache = DatasetCache::default();
    let (a, b) = (cache.dataset(&as_idx).unwrap(), cache.dataset(&shortcut).unwrap());
    assert_eq!(a.source.fingerprint, b.source.fingerprint, "the same files, gzipped");
    assert_eq!(a.pixels(), b.pixels());
    assert_eq!(a.source.classes.len(), 10);

    // A plain (not gzipped) 20x30 set without labels: centre 20x20, no classes.
    let dir = tempfile::tempdir().unwrap();
    let mut file = vec![0, 0, 8, 3];
    for d in [2u32, 20, 30] {
        file.extend_from_slice(&d.to_be_bytes());
    }
    file.extend((0..2 * 20 * 30).map(|i| if (5..25).contains(&(i % 30)) { 255 } else { 0 }));
    let path = dir.path().join("tall.idx");
    std::fs::write(&path, file).unwrap();
    let cfg = DataConfig { images: Some(path), labels: None, image_size: 32, ..as_idx.clone() };
    let tall = DatasetCache::default().dataset(&cfg).unwrap();
    assert_eq!((tall.len(), tall.source.classes.len()), (2, 0));
    assert!(tall.image(1).iter().all(|&v| v == 255), "the white centre square is kept");

    // Labels that do not match the images are refused, naming both files.
    let (images, _) = idx_subset(dir.path(), 50);
    let other = tempfile::tempdir().unwrap();
    let (_, labels) = idx_subset(other.path(), 40);
    let cfg = DataConfig { images: Some(images), labels: Some(labels), ..as_idx };
    let msg = DatasetCache::default().dataset(&cfg).unwrap_err().to_string();
    assert!(msg.contains("50 images") && msg.contains("40 labels"), "{msg}");
}

#[test]
fn dataset_settings_that_cannot_work_are_refused_with_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("data:\n  dataset: folder\n", "data.path", "missing"),
        ("data:\n  dataset: idx\n  path: /x\n  images: /y\n", "data.path", "left out"),
        ("data:\n  dataset: fashion-mnist\n  images: /y\n", "data.images", "left out"),
        ("data:\n  image_size: 48\n", "data.image_size", "32, 64 or 128"),
        ("data:\n  channels: 2\n", "data.channels", "1 (grey) or 3 (RGB)"),
        ("data:\n  strict: true\n", "data.strict", "only dataset `folder`"),
        ("data:\n  dataset: imagenet\n", "unknown variant", "folder"),
    ];
    for (text, key, expected) in cases {
        let file = write_file(tmp.path(), "bad.yaml", text);
        let out = dcgan(tmp.path(), &["run", file.to_str().unwrap(), "--runs-dir", "runs"]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{text}");
        assert!(err.contains(key) && err.contains(expected), "{text}:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!tmp.path().join("runs").exists() || run_dirs(&tmp.path().join("runs")).is_empty());
}

/// A 3-channel 32x32 run on a made-up folder without classes (so it is not scored), and a
/// 1-channel 128x128 run on an IDX pair with labels (so it is scored at that size).
#[test]
fn colour_32px_and_grey_128px_runs_train_and_write_their_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    for i in 0..40u32 {
        let image = RgbImage::from_fn(48 + i, 40, |x, y| Rgb([(x * 5) as u8, (y * 6) as u8, 200]));
        save(image.into(), &photos.join(format!("p{i:02}.jpg")));
    }
    let (images, labels) = idx_subset(tmp.path(), 200);
    let config = format!(
        "name: shapes\nbase:\n  model: {{ width: 2, z_dim: 8 }}\n  \
         train: {{ steps: 3, batch_size: 16, extra_z: 16 }}\n  \
         eval: {{ n: 40, classifier_epochs: 1 }}\n\
         axes:\n  zip:\n    - data.dataset: [folder, idx]\n      data.path: [photos, null]\n      \
         data.images: [null, {}]\n      data.labels: [null, {}]\n      \
         data.image_size: [32, 128]\n      data.channels: [3, 1]\n",
        images.display(),
        labels.display()
    );
    let file = write_file(tmp.path(), "shapes.yaml", &config);
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let runs = run_dirs(&tmp.path().join("runs"));
    assert_eq!(runs.len(), 2);
    for run in runs {
        let m = manifest(&run);
        assert_eq!(m.status, dcgan_harness::store::manifest::Status::Completed);
        let cfg = dcgan_harness::store::read_config(&run).unwrap();
        let grid = image::open(run.join("samples/step_000003.png")).unwrap();
        let side = cfg.data.image_size as u32;
        assert_eq!(grid.width(), 8 * side + 9 * 2, "{}", run.display());
        let evaluation = m.evaluation.unwrap_or_default();
        if cfg.data.channels == 3 {
            assert_eq!(side, 32);
            assert!(matches!(grid, DynamicImage::ImageRgb8(_)), "a colour grid");
            assert!(
                evaluation.starts_with("skipped: the dataset has fewer than two classes"),
                "{evaluation}"
            );
        } else {
            assert_eq!(side, 128);
            assert!(matches!(grid, DynamicImage::ImageLuma8(_)), "a grey grid");
            assert!(run.join("eval.parquet").is_file(), "scored: {evaluation}");
        }
    }
}

#[test]
fn bench_refuses_a_bad_shape_before_decoding_anything() {
    let folder = photo_folder();
    let tmp = tempfile::tempdir().unwrap();
    let path = folder.path().to_str().unwrap();
    for (flag, value) in [("--channels", "2"), ("--channels", "0"), ("--image-size", "4096")] {
        let out = dcgan(tmp.path(), &["bench", "--data", path, flag, value, "--steps", "1"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(&format!("{flag} is {value}")), "{err}");
        assert!(!tmp.path().join("runs").exists(), "nothing decoded for {flag} {value}");
    }
}

#[test]
fn data_inspect_reports_a_folder_and_writes_a_colour_grid() {
    let folder = photo_folder();
    let tmp = tempfile::tempdir().unwrap();
    let path = folder.path().to_str().unwrap();
    let args = ["data", "inspect", path, "--channels", "3", "--image-size", "32", "-n", "9"];
    let out = dcgan(tmp.path(), &[&args[..], &["--out", "grid.png"]].concat());
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("images       9"), "{text}");
    assert!(text.contains("classes      2: grey: 4, red: 5"), "{text}");
    assert!(text.contains("red/broken.png"), "{text}");
    assert!(text.contains("32x32, 3 channel(s)"), "{text}");
    let grid = image::open(tmp.path().join("grid.png")).unwrap();
    assert!(matches!(grid, DynamicImage::ImageRgb8(_)));
    assert_eq!(grid.width(), 3 * 32 + 4 * 2);
    // The second time it is read from the cache the first one filled.
    let again = dcgan(tmp.path(), &[&args[..], &["--out", "grid.png"]].concat());
    assert!(stdout(&again).contains("read from the cache"), "{}", stdout(&again));
    let fingerprint = text.lines().find(|l| l.starts_with("fingerprint")).unwrap();
    assert!(stdout(&again).contains(fingerprint));
}
