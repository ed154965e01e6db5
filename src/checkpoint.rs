//! Checkpoints in safetensors with PyTorch-style names, written atomically.
//!
//! A model file holds exactly a network's `state_dict` (parameters and buffers, f32, with
//! `num_batches_tracked` as i64 as PyTorch stores it), so PyTorch's `load_state_dict` takes it
//! after `safetensors.torch.load_file`. Training state (momentum buffers, progress) lives in other
//! keys or files; string metadata rides in the safetensors header.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::nn::Module;

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

    /// Copies the tensors named `prefix.name` into `module`; every one must be present with the
    /// module's shape. Nothing is changed unless all of them fit.
    pub fn load_module(&self, prefix: &str, module: &mut dyn Module) -> Result<()> {
        let mut missing = Vec::new();
        module.visit(prefix, &mut |name, t, _| match self.tensors.get(name) {
            Some((shape, _)) if shape == t.shape() => {}
            Some((shape, _)) => missing.push(format!("{name} has shape {shape:?}, expected {:?}", t.shape())),
            None => missing.push(format!("{name} is missing")),
        });
        if !missing.is_empty() {
            return Err(Error::invalid(
                "checkpoint",
                format!("does not fit the network: {}", missing.join("; ")),
            ));
        }
        let mut result = Ok(());
        module.visit(prefix, &mut |name, t, _| {
            if let (Ok(()), Some((_, values))) = (&result, self.tensors.get(name)) {
                result = t.set_values(values);
            }
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
                    let data = values.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect();
                    (name.clone(), Dtype::I64, shape.clone(), data)
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

    /// Parses safetensors bytes (f32, f64, i64 and i32 tensors; others are an error). `path` only
    /// names the source in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
        let bad = |msg: String| Error::format(path, None, msg);
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.iter() {
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => {
                    data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
                }
                Dtype::F64 => data.chunks_exact(8).map(|b| f64::from_le_bytes(le8(b)) as f32).collect(),
                Dtype::I64 => data.chunks_exact(8).map(|b| i64::from_le_bytes(le8(b)) as f32).collect(),
                Dtype::I32 => data
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
                    .collect(),
                other => return Err(bad(format!("tensor {name} has unsupported dtype {other:?}"))),
            };
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
