//! Page-locked (pinned) host buffers that large uploads (batches of images) pass through, so the
//! copy to the device is a true asynchronous DMA instead of the driver's staged copy from pageable
//! memory. Two buffers alternate; before one is refilled, the copy out of it (issued two large
//! uploads ago, a training step earlier, whose read back has since waited for the stream) must be
//! complete, which its event says.

use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaContext, CudaEvent, CudaStream, result};

use crate::error::{Error, Result};

/// Uploads at least this large go through pinned memory; smaller ones are copied directly.
pub(crate) const PINNED_FROM_BYTES: usize = 64 * 1024;

/// One pinned buffer and the event recorded after the last copy out of it.
struct Pinned {
    ptr: *mut u8,
    bytes: usize,
    done: CudaEvent,
}

// SAFETY: the buffer is plain host memory owned by this value; it is only written under the
// staging's mutex after its event says the device has finished reading it.
unsafe impl Send for Pinned {}

impl Drop for Pinned {
    fn drop(&mut self) {
        // The device may still be reading: wait, then free. Errors cannot be reported from a drop.
        let _ = self.done.synchronize();
        // SAFETY: `ptr` came from `malloc_host` and is freed once.
        let _ = unsafe { result::free_host(self.ptr.cast()) };
    }
}

/// The alternating pinned buffers of one stream.
pub(crate) struct Staging {
    ctx: Arc<CudaContext>,
    buffers: Mutex<([Option<Pinned>; 2], usize)>,
}

fn staging_err(e: impl std::fmt::Debug) -> Error {
    Error::Device(format!("cuda: pinned staging: {e:?}"))
}

impl Staging {
    /// No buffers yet: they are allocated at the first large upload (and grown as needed).
    pub(crate) fn new(ctx: &Arc<CudaContext>) -> Staging {
        Staging { ctx: Arc::clone(ctx), buffers: Mutex::new(([None, None], 0)) }
    }

    /// Copies `bytes` to device address `dst` through the next pinned buffer, ordered on `stream`.
    ///
    /// # Safety
    /// `dst` must point at live device memory of at least `bytes.len()` bytes.
    pub(crate) unsafe fn upload(&self, stream: &CudaStream, dst: u64, bytes: &[u8]) -> Result<()> {
        let mut guard = self.buffers.lock().map_err(|_| Error::Device("pinned staging poisoned".into()))?;
        let (buffers, next) = &mut *guard;
        let slot = &mut buffers[*next];
        *next = 1 - *next;
        if slot.as_ref().is_none_or(|p| p.bytes < bytes.len()) {
            *slot = None;
            // SAFETY: a plain page-locked allocation of this size; freed by `Pinned`'s drop.
            let ptr = unsafe { result::malloc_host(bytes.len(), 0) }.map_err(staging_err)?;
            let done = self.ctx.new_event(None).map_err(staging_err)?;
            *slot = Some(Pinned { ptr: ptr.cast(), bytes: bytes.len(), done });
        }
        let pinned = slot.as_mut().expect("allocated above");
        // The copy out of this buffer two large uploads ago must be over before it is refilled.
        pinned.done.synchronize().map_err(staging_err)?;
        // SAFETY: `pinned.ptr` holds at least `bytes.len()` bytes that no copy is reading (the
        // event above), and cannot overlap the caller's slice.
        let host = unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), pinned.ptr, bytes.len());
            std::slice::from_raw_parts(pinned.ptr, bytes.len())
        };
        // SAFETY: `dst` is as the caller guarantees; `host` stays allocated until the event
        // recorded next says the copy is over.
        unsafe { result::memcpy_htod_async(dst, host, stream.cu_stream()) }.map_err(staging_err)?;
        pinned.done.record(stream).map_err(staging_err)
    }
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Staging")
    }
}
