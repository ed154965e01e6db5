//! Checkpoints in safetensors with PyTorch-style names, written atomically.
//!
//! A model file holds exactly a network's `state_dict` (parameters and buffers, f32, with
//! `num_batches_tracked` as a 0-dim i64 as PyTorch stores it), so PyTorch's `load_state_dict`
//! takes it after `safetensors.torch.load_file`. Training state (momentum buffers, progress) lives
//! in other keys or files; string metadata rides in the safetensors header.
//!
//! Reading accepts what PyTorch's `load_state_dict(strict=True)` accepts for these networks: f32,
//! f64, f16 and bf16 tensors (converted to f32), batch-norm counters as 0-dim or 1-element integer
//! tensors, and absent counters (loaded as 0). PyTorch's pickled `.pth`/`.pt` files are converted
//! first by `scripts/pth_to_safetensors.py`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::nn::{Module, TensorKind};

/// Writes `bytes` to `path` through a temporary file in the same folder, flushed to disk and
/// renamed over the target, so a crash leaves either the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Tensors and metadata read from a safetensors file.
#[derive(Clone, Debug, Default)]
pub struct Checkpoint {
    /// Each tensor's shape and f32 values, by name.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// The header's string metadata.
    pub metadata: HashMap<String, String>,
}

/// Eight little-endian bytes from a chunk of exactly eight.
fn le8(b: &[u8]) -> [u8; 8] {
    let mut a = [0; 8];
    a.copy_from_slice(b);
    a
}

fn is_counter(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

/// Two little-endian bytes from a chunk of exactly two.
fn le2(b: &[u8]) -> [u8; 2] {
    [b[0], b[1]]
}

/// The values of tensor `name` stored as `dtype` in `data`, as f32: floating tensors of any width,
/// and integer ones only for counters (PyTorch stores `num_batches_tracked` as i64).
fn decode(name: &str, dtype: Dtype, data: &[u8]) -> std::result::Result<Vec<f32>, String> {
    let le4 = |b: &[u8]| [b[0], b[1], b[2], b[3]];
    Ok(match dtype {
        Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes(le4(b))).collect(),
        Dtype::F64 => data.chunks_exact(8).map(|b| f64::from_le_bytes(le8(b)) as f32).collect(),
        Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes(le2(b)).to_f32()).collect(),
        Dtype::BF16 => data.chunks_exact(2).map(|b| half::bf16::from_le_bytes(le2(b)).to_f32()).collect(),
        Dtype::I64 if is_counter(name) => {
            data.chunks_exact(8).map(|b| i64::from_le_bytes(le8(b)) as f32).collect()
        }
        Dtype::I32 if is_counter(name) => {
            data.chunks_exact(4).map(|b| i32::from_le_bytes(le4(b)) as f32).collect()
        }
        other => {
            let expected = if is_counter(name) { "an integer or float" } else { "f32, f64, f16 or bf16" };
            return Err(format!("tensor {name} has dtype {other:?}, expected {expected}"));
        }
    })
}

/// Whether `bytes` start like a PyTorch pickle: a zip archive (`torch.save` since 1.6) or the
/// legacy pickle stream.
fn is_torch_pickle(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0x80, 0x02, 0x8a, 0x0a])
}

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new() -> Self {
        Checkpoint::default()
    }

    /// Adds every parameter and buffer of `module`, named `prefix.name`.
    pub fn add_module(&mut self, prefix: &str, module: &mut dyn Module) -> Result<()> {
        let mut result = Ok(());
        module.visit(prefix, &mut |name, t, _| {
            if result.is_ok() {
                result = t.to_vec().map(|v| {
                    self.tensors.insert(name.to_string(), (t.shape().to_vec(), v));
                });
            }
        });
        result
    }

    /// Copies the tensors named `prefix.name` into `module`; every parameter and buffer must be
    /// present with the module's shape. Counters may be 0-dim or 1-element, or absent (then 0),
    /// as PyTorch's `load_state_dict` allows. Nothing is changed unless all of them fit.
    pub fn load_module(&self, prefix: &str, module: &mut dyn Module) -> Result<()> {
        let mut problems = Vec::new();
        module.visit(prefix, &mut |name, t, kind| match (self.tensors.get(name), kind) {
            (Some((_, values)), TensorKind::Counter) if values.len() == 1 => {}
            (None, TensorKind::Counter) => {}
            (Some((shape, _)), _) if shape == t.shape() => {}
            (Some((shape, _)), _) => {
                problems.push(format!("{name} has shape {shape:?}, expected {:?}", t.shape()))
            }
            (None, _) => problems.push(format!("{name} is missing")),
        });
        if let Some(first) = problems.first() {
            let more = match problems.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            return Err(Error::invalid("checkpoint", format!("does not fit the network: {first}{more}")));
        }
        let mut result = Ok(());
        module.visit(prefix, &mut |name, t, kind| {
            if result.is_err() {
                return;
            }
            result = match (self.tensors.get(name), kind) {
                (Some((_, values)), _) => t.set_values(values),
                (None, _) => t.set_values(&[0.0]),
            };
        });
        result
    }

    /// A named tensor's values.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.tensors.get(name).map(|(_, v)| v.as_slice())
    }

    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let bytes: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, (shape, values))| {
                if is_counter(name) {
                    // PyTorch's layout: a 0-dim int64.
                    let shape = if values.len() == 1 { Vec::new() } else { shape.clone() };
                    let data = values.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect();
                    (name.clone(), Dtype::I64, shape, data)
                } else {
                    (
                        name.clone(),
                        Dtype::F32,
                        shape.clone(),
                        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    )
                }
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(name, dtype, shape, data)| {
                Ok((name.as_str(), TensorView::new(*dtype, shape.clone(), data)?))
            })
            .collect::<std::result::Result<Vec<_>, safetensors::SafeTensorError>>()
            .map_err(|e| Error::invalid("checkpoint", e.to_string()))?;
        let metadata = (!self.metadata.is_empty()).then(|| self.metadata.clone());
        safetensors::serialize(views, metadata).map_err(|e| Error::invalid("checkpoint", e.to_string()))
    }

    /// Writes the checkpoint to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// Parses safetensors bytes (see the module documentation for the dtypes taken). `path` only
    /// names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
        let bad = |msg: String| Error::format(path, None, msg);
        if is_torch_pickle(bytes) {
            return Err(bad(format!(
                "a PyTorch pickle, not safetensors; convert it with `python3 scripts/pth_to_safetensors.py {} OUT.safetensors`",
                path.display()
            )));
        }
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.iter() {
            let values = decode(name, view.dtype(), view.data()).map_err(bad)?;
            tensors.insert(name.to_string(), (view.shape().to_vec(), values));
        }
        Ok(Checkpoint { tensors, metadata: header.metadata().clone().unwrap_or_default() })
    }

    /// Reads a checkpoint file.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
        Checkpoint::from_bytes(&bytes, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let mut c = Checkpoint::new();
        c.tensors.insert("conv1.weight".into(), (vec![2, 1, 1, 3], vec![1.0, -2.5, 3.25, 0.0, 1e-8, -7.0]));
        c.tensors.insert("bn1.num_batches_tracked".into(), (vec![], vec![42.0]));
        c.metadata.insert("epoch".into(), "3".into());
        c
    }

    #[test]
    fn round_trips_values_shapes_dtypes_and_metadata() {
        let c = sample();
        let bytes = c.to_bytes().unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("bn1.num_batches_tracked").unwrap().dtype(), Dtype::I64);
        assert_eq!(st.tensor("conv1.weight").unwrap().dtype(), Dtype::F32);
        let back = Checkpoint::from_bytes(&bytes, Path::new("x")).unwrap();
        assert_eq!(back.tensors, c.tensors);
        assert_eq!(back.metadata, c.metadata);
    }

    #[test]
    fn corrupt_bytes_are_an_error_naming_the_file() {
        let bytes = sample().to_bytes().unwrap();
        for bad in [&bytes[..bytes.len() - 3], &bytes[..5], b"\xff\xff\xff\xff\xff\xff\xff\x7f{}".as_slice()]
        {
            let err = Checkpoint::from_bytes(bad, Path::new("ckpt.safetensors")).unwrap_err().to_string();
            assert!(err.starts_with("ckpt.safetensors"), "{err}");
        }
    }

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temporaries() {
        let dir = std::env::temp_dir().join(format!("iekd-atomic-{}", std::process::id()));
        let path = dir.join("f.bin");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        // A target that cannot be replaced (a folder) fails and keeps nothing half-written.
        fs::create_dir_all(dir.join("sub")).unwrap();
        assert!(write_atomic(&dir.join("sub"), b"x").is_err());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod pytorch_layout_tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::nn::{Arch, Network};

    fn resnet8(seed: u64) -> Box<dyn Network> {
        "resnet8".parse::<Arch>().unwrap().build(1, 10, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap()
    }

    /// A state dict as `safetensors.torch.save_file` writes it: weights as `dtype` (counters as
    /// 0-dim int64), leaving out the tensors `skip` names.
    fn torch_file(net: &mut dyn Network, dtype: Dtype, skip: &dyn Fn(&str) -> bool) -> Vec<u8> {
        let mut c = Checkpoint::new();
        c.add_module("", net).unwrap();
        let tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = c
            .tensors
            .iter()
            .filter(|(name, _)| !skip(name))
            .map(|(name, (shape, v))| match (is_counter(name), dtype) {
                (true, _) => (name.clone(), Dtype::I64, vec![], (v[0] as i64 + 7).to_le_bytes().to_vec()),
                (false, Dtype::BF16) => (
                    name.clone(),
                    dtype,
                    shape.clone(),
                    v.iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect(),
                ),
                (false, Dtype::F16) => (
                    name.clone(),
                    dtype,
                    shape.clone(),
                    v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect(),
                ),
                (false, Dtype::F64) => (
                    name.clone(),
                    dtype,
                    shape.clone(),
                    v.iter().flat_map(|&x| f64::from(x).to_le_bytes()).collect(),
                ),
                (false, _) => (
                    name.clone(),
                    dtype,
                    shape.clone(),
                    v.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect(),
                ),
            })
            .collect();
        let views: Vec<_> = tensors
            .iter()
            .map(|(n, d, s, b)| (n.as_str(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn values(net: &mut dyn Network) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
        let mut c = Checkpoint::new();
        c.add_module("", net).unwrap();
        c.tensors
    }

    #[test]
    fn pytorch_state_dicts_load_with_0_dim_or_absent_counters_and_any_float_width() {
        let path = Path::new("torch.safetensors");
        let mut source = resnet8(1);
        let expected = values(source.as_mut());
        for (dtype, tolerance) in [(Dtype::F64, 0.0), (Dtype::F16, 1e-3), (Dtype::BF16, 8e-3)] {
            let bytes = torch_file(source.as_mut(), dtype, &|_| false);
            let mut net = resnet8(2);
            Checkpoint::from_bytes(&bytes, path).unwrap().load_module("", net.as_mut()).unwrap();
            for (name, (shape, v)) in values(net.as_mut()) {
                assert_eq!(shape, expected[&name].0, "{name}");
                let want = &expected[&name].1;
                let want: Vec<f32> = if is_counter(&name) { vec![want[0] + 7.0] } else { want.clone() };
                for (a, b) in v.iter().zip(&want) {
                    assert!((a - b).abs() <= tolerance * b.abs().max(1.0), "{dtype:?} {name}: {a} vs {b}");
                }
            }
        }
        // Absent counters load as 0, as PyTorch's loader allows.
        let bytes = torch_file(source.as_mut(), Dtype::F64, &|name| is_counter(name));
        let mut net = resnet8(2);
        Checkpoint::from_bytes(&bytes, path).unwrap().load_module("", net.as_mut()).unwrap();
        let loaded = values(net.as_mut());
        assert_eq!(loaded["bn1.num_batches_tracked"].1, [0.0]);
        assert_eq!(loaded["fc.weight"].1, expected["fc.weight"].1);
    }

    #[test]
    fn other_dtypes_shapes_and_missing_weights_are_one_line_naming_the_key() {
        let path = Path::new("torch.safetensors");
        let mut source = resnet8(1);
        let err = Checkpoint::from_bytes(&torch_file(source.as_mut(), Dtype::I32, &|_| false), path)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("torch.safetensors") && err.contains("has dtype I32, expected f32"), "{err}");
        let bytes = torch_file(source.as_mut(), Dtype::F64, &|name| name == "layer1.0.conv2.weight");
        let err =
            Checkpoint::from_bytes(&bytes, path).unwrap().load_module("", resnet8(2).as_mut()).unwrap_err();
        assert_eq!(err.to_string(), "checkpoint: does not fit the network: layer1.0.conv2.weight is missing");
        let mut c = Checkpoint::from_bytes(&bytes, path).unwrap();
        c.tensors.insert("layer1.0.conv2.weight".into(), (vec![16, 16, 3], vec![0.0; 768]));
        c.tensors.insert("bn1.num_batches_tracked".into(), (vec![2], vec![1.0, 2.0]));
        let err = c.load_module("", resnet8(2).as_mut()).unwrap_err().to_string();
        assert!(err.contains("bn1.num_batches_tracked has shape [2], expected [1] (and 1 more)"), "{err}");
        assert!(!err.contains('\n'));
        for pickle in [&b"PK\x03\x04rest"[..], &[0x80, 0x02, 0x8a, 0x0a, 0x6c]] {
            let err = Checkpoint::from_bytes(pickle, Path::new("model.pth")).unwrap_err().to_string();
            assert!(
                err.contains("PyTorch pickle") && err.contains("pth_to_safetensors.py model.pth"),
                "{err}"
            );
        }
    }

    #[test]
    fn model_files_store_counters_as_pytorch_does() {
        let mut c = Checkpoint::new();
        c.add_module("", resnet8(1).as_mut()).unwrap();
        let bytes = c.to_bytes().unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let counter = st.tensor("bn1.num_batches_tracked").unwrap();
        assert_eq!((counter.dtype(), counter.shape()), (Dtype::I64, &[][..]));
        let mut net = resnet8(2);
        Checkpoint::from_bytes(&bytes, Path::new("x")).unwrap().load_module("", net.as_mut()).unwrap();
        assert_eq!(values(net.as_mut()), c.tensors);
    }
}
