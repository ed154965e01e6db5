//! Reading several one-element tensors back to the host at once: on a device they are gathered
//! into one buffer and copied back in one transfer, so a training step waits for the device once.

use super::Tensor;
use super::dispatch::gpu_of;
use crate::cuda::exec::Exec;
use crate::error::{Error, Result};

/// The values of the one-element `tensors`, in order. Values already known on the host (a backward
/// seed, a host tensor) are read directly; those on a device are copied into one buffer there and
/// read back together, after everything queued before them.
pub fn read_scalars(tensors: &[&Tensor]) -> Result<Vec<f32>> {
    if let Some(t) = tensors.iter().find(|t| t.numel() != 1) {
        return Err(Error::shape("read_scalars", format!("expected one element, got shape {:?}", t.shape())));
    }
    let on_device: Vec<&Tensor> = tensors.iter().copied().filter(|t| t.gpu().is_some()).collect();
    let mut device_values = match gpu_of("read_scalars", &on_device)? {
        Some(gpu) => {
            let mut packed = gpu.alloc::<f32>(on_device.len())?;
            for (i, t) in on_device.iter().enumerate() {
                gpu.copy_into(t.gpu_buf()?, &mut packed, i)?;
            }
            gpu.download(&packed)?
        }
        None => Vec::new(),
    }
    .into_iter();
    tensors
        .iter()
        .map(|t| match (t.known_scalar(), t.gpu()) {
            (Some(v), _) => Ok(v),
            (None, Some(_)) => {
                device_values.next().ok_or_else(|| Error::Device("read_scalars: lost a value".into()))
            }
            (None, None) => Ok(t.host()?[0]),
        })
        .collect()
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
