//! Reading several one-element tensors back to the host at once: on a device they are gathered
//! into one buffer and copied back in one transfer, so a training step waits for the device once.

use std::sync::Arc;

use super::Tensor;
use super::dispatch::gpu_of;
use crate::cuda::exec::Exec;
use crate::cuda::gpu::{Gpu, GpuBuf};
use crate::error::{Error, Result};

/// One-element tensors gathered for reading: the values known on the host, and the others copied
/// into one device buffer (by device work queued like any other, so it can be part of a step
/// replayed as a graph).
pub struct Scalars {
    /// Each value in order: known on the host, or `None` for the next value of `packed`.
    known: Vec<Option<f32>>,
    packed: Option<(GpuBuf<f32>, Arc<Gpu>)>,
}

/// Gathers the one-element `tensors` for [`Scalars::read`]. Values known on the host (a backward
/// seed, a host tensor) are taken now; those on a device are copied into one buffer there.
pub fn pack_scalars(tensors: &[&Tensor]) -> Result<Scalars> {
    if let Some(t) = tensors.iter().find(|t| t.numel() != 1) {
        return Err(Error::shape("read_scalars", format!("expected one element, got shape {:?}", t.shape())));
    }
    let on_device: Vec<&Tensor> =
        tensors.iter().copied().filter(|t| t.known_scalar().is_none() && t.gpu().is_some()).collect();
    let packed = match gpu_of("read_scalars", &on_device)? {
        Some(gpu) => {
            let mut packed = gpu.alloc::<f32>(on_device.len())?;
            for (i, t) in on_device.iter().enumerate() {
                gpu.copy_into(t.gpu_buf()?, &mut packed, i)?;
            }
            Some((packed, gpu))
        }
        None => None,
    };
    let known = tensors
        .iter()
        .map(|t| match (t.known_scalar(), t.gpu()) {
            (Some(v), _) => Ok(Some(v)),
            (None, Some(_)) => Ok(None),
            (None, None) => Ok(Some(t.host()?[0])),
        })
        .collect::<Result<_>>()?;
    Ok(Scalars { known, packed })
}

impl Scalars {
    /// The values, in order: one copy back from the device (waiting for the work before it).
    pub fn read(self) -> Result<Vec<f32>> {
        let mut device_values = match &self.packed {
            Some((buf, gpu)) => gpu.download(buf)?,
            None => Vec::new(),
        }
        .into_iter();
        self.known
            .into_iter()
            .map(|v| {
                v.or_else(|| device_values.next())
                    .ok_or_else(|| Error::Device("read_scalars: lost a value".into()))
            })
            .collect()
    }
}

/// The values of the one-element `tensors`, in order ([`pack_scalars`], then [`Scalars::read`]).
pub fn read_scalars(tensors: &[&Tensor]) -> Result<Vec<f32>> {
    pack_scalars(tensors)?.read()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_host_values_in_order_and_rejects_larger_tensors() {
        let a = Tensor::from_vec(vec![1.5], &[1]).unwrap();
        let b = Tensor::from_vec(vec![-2.0], &[1, 1]).unwrap();
        assert_eq!(read_scalars(&[&a, &b, &a]).unwrap(), [1.5, -2.0, 1.5]);
        let big = Tensor::zeros(&[2]);
        assert!(read_scalars(&[&a, &big]).unwrap_err().to_string().contains("[2]"));
    }
}
