//! The GPU through cudarc (driver API, loaded dynamically): one context and one stream, kernel
//! modules loaded on first use and cached, and [`CudaBackend::probe`], which says in words why no
//! GPU can be used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaGraph, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, result, sys,
};
use cudarc::nvrtc::Ptx;

use super::exec::{Arg, Call, Elem, Exec, Grid, check_copy};
use super::params::KernelParams;
use super::raw::RawOp;
use super::staging::{PINNED_FROM_BYTES, Staging};
use super::{nvrtc, sources};
use crate::error::{Error, Result};

fn device_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Device(format!("cuda: {what}: {e:?}"))
}

/// Set to `1`, synchronises after every launch and reports a fault under the kernel's name
/// (slow; for finding which kernel faulted).
pub const SYNC_EACH_LAUNCH: &str = "IEKD_SYNC_EACH_LAUNCH";

/// One GPU with its stream and the kernel functions loaded so far.
pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    functions: Mutex<HashMap<&'static str, CudaFunction>>,
    /// The dynamic shared memory each kernel was allowed beyond the default.
    shared_allowed: Mutex<HashMap<&'static str, u32>>,
    /// Pinned buffers that batches are uploaded through.
    staging: Staging,
    poison: bool,
    sync_each_launch: bool,
}

impl CudaBackend {
    /// The first GPU, or an [`Error::Device`] saying why there is none: no driver library, the
    /// driver failing to start, no device, a device older than compute capability 9.0, or no way
    /// to get the kernels (not compiled at build time and no libnvrtc now).
    pub fn probe() -> Result<CudaBackend> {
        // SAFETY: only tries to open the library; cudarc panics on calls into a missing one.
        if !unsafe { sys::is_culib_present() } {
            return Err(Error::Device("no NVIDIA driver: libcuda.so cannot be loaded".into()));
        }
        let count = CudaContext::device_count().map_err(|e| device_err("the driver did not start", e))?;
        if count < 1 {
            return Err(Error::Device("the NVIDIA driver sees no GPU".into()));
        }
        CudaBackend::new(0)
    }

    /// GPU `ordinal` (see [`CudaBackend::probe`] for the checks).
    pub fn new(ordinal: usize) -> Result<CudaBackend> {
        let ctx = CudaContext::new(ordinal).map_err(|e| device_err("creating a context", e))?;
        let (major, minor) = ctx.compute_capability().map_err(|e| device_err("compute capability", e))?;
        if major < 9 {
            return Err(Error::Device(format!(
                "GPU {ordinal} has compute capability {major}.{minor}; the kernels are built for 9.0 (Hopper)"
            )));
        }
        if sources::MODULES.iter().any(|m| m.ptx.is_none()) && !nvrtc::available() {
            return Err(Error::Device(
                "the kernels were not compiled at build time and libnvrtc cannot be loaded now".into(),
            ));
        }
        // SAFETY: every buffer of this backend is allocated, used and freed on its one stream,
        // so there is no use on another stream for cudarc's per-buffer events to order; they
        // would only cost two event creations per allocation.
        unsafe { ctx.disable_event_tracking() };
        let pools = ctx.attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED);
        if pools.map_err(|e| device_err("device attributes", e))? == 1 {
            keep_freed_memory(&ctx)?;
        }
        // A created stream: the legacy default stream cannot be captured into a graph.
        let stream = ctx.new_stream().map_err(|e| device_err("creating a stream", e))?;
        let sync_each_launch = std::env::var(SYNC_EACH_LAUNCH).is_ok_and(|v| v == "1");
        Ok(CudaBackend {
            staging: Staging::new(&ctx),
            ctx,
            stream,
            functions: Mutex::new(HashMap::new()),
            shared_allowed: Mutex::new(HashMap::new()),
            poison: false,
            sync_each_launch,
        })
    }

    /// Fills every buffer from [`Exec::alloc`] with NaN bytes (0xFF) first, so an element a
    /// kernel forgets to write shows up in a check; off by default.
    pub fn poison_allocations(mut self, on: bool) -> Self {
        self.poison = on;
        self
    }

    /// The device's name.
    pub fn name(&self) -> Result<String> {
        self.ctx.name().map_err(|e| device_err("device name", e))
    }

    /// Waits for every launched kernel and copy.
    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(|e| device_err("synchronize", e))
    }

    /// Device-to-device copy bandwidth in GB/s (bytes read plus bytes written), the median of
    /// `runs` copies of `bytes` bytes: the memory ceiling of the bandwidth-bound kernels.
    pub fn copy_gbps(&self, bytes: usize, runs: usize) -> Result<f64> {
        let len = bytes / 4;
        let src = self.stream.alloc_zeros::<f32>(len).map_err(|e| device_err("allocation", e))?;
        let mut dst = self.stream.alloc_zeros::<f32>(len).map_err(|e| device_err("allocation", e))?;
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            self.synchronize()?;
            let start = std::time::Instant::now();
            self.stream.memcpy_dtod(&src, &mut dst).map_err(|e| device_err("copy", e))?;
            self.synchronize()?;
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        Ok(2.0 * (len * 4) as f64 / times[times.len() / 2] * 1e-9)
    }

    /// The function `kernel`, loading its module (build-time PTX, or NVRTC now) on first use.
    fn function(&self, kernel: &'static str) -> Result<CudaFunction> {
        let mut functions =
            self.functions.lock().map_err(|_| Error::Device("kernel cache poisoned".into()))?;
        if let Some(f) = functions.get(kernel) {
            return Ok(f.clone());
        }
        let module =
            sources::module_of(kernel).ok_or_else(|| Error::Device(format!("no kernel named {kernel}")))?;
        let ptx = match module.ptx {
            Some(ptx) => ptx.to_string(),
            None => nvrtc::compile_ptx(module.name, sources::COMMON, module.source).map_err(Error::Device)?,
        };
        let loaded = self.ctx.load_module(Ptx::from_src(ptx)).map_err(|e| device_err(module.name, e))?;
        for &name in module.kernels {
            let f = loaded.load_function(name).map_err(|e| device_err(name, e))?;
            functions.insert(name, f);
        }
        functions
            .get(kernel)
            .cloned()
            .ok_or_else(|| Error::Device(format!("{kernel} missing from its module")))
    }
}

/// Keeps memory freed to the device's default pool (where stream-ordered allocations come from)
/// instead of returning it to the driver at each synchronisation, so a training step reuses the
/// previous step's buffers rather than mapping new memory.
fn keep_freed_memory(ctx: &CudaContext) -> Result<()> {
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    let mut threshold = u64::MAX;
    // SAFETY: `pool` receives the default pool of this context's device; the attribute takes a
    // pointer to a u64, which outlives the call.
    unsafe {
        sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device())
            .result()
            .and_then(|()| {
                sys::cuMemPoolSetAttribute(
                    pool,
                    sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                    (&mut threshold as *mut u64).cast(),
                )
                .result()
            })
            .map_err(|e| device_err("keeping freed memory in the pool", e))
    }
}

/// The thin unsafe core that [`super::gpu::Gpu`] drives: work by address.
impl CudaBackend {
    /// Fresh device memory of `bytes` bytes (at least one), unset, with its address.
    pub(crate) fn alloc_raw(&self, bytes: usize) -> Result<(CudaSlice<u8>, u64)> {
        // SAFETY: the contents are left unset, as `Exec::alloc` specifies for every buffer.
        let slice =
            unsafe { self.stream.alloc::<u8>(bytes.max(1)) }.map_err(|e| device_err("allocation", e))?;
        let addr = slice.device_ptr(&self.stream).0;
        Ok((slice, addr))
    }

    /// Runs `op` on the stream (a launch, or a copy between addresses).
    ///
    /// # Safety
    /// A launch's parameters must match its kernel, and every address must point at live device
    /// memory holding what the kernel or copy touches.
    pub(crate) unsafe fn execute(&self, op: &RawOp) -> Result<()> {
        let (call, sync) = match op {
            RawOp::Copy { src, dst, bytes } => {
                // SAFETY: the caller guarantees both ranges are live device memory.
                unsafe { result::memcpy_dtod_async(*dst, *src, *bytes, self.stream.cu_stream()) }
                    .map_err(|e| device_err("copy on the device", e))?;
                return Ok(());
            }
            RawOp::Launch { call, .. } => (*call, self.sync_each_launch && !self.capturing()),
        };
        let f = self.function(call.kernel)?;
        self.allow_shared(call, &f)?;
        let Grid { blocks, threads } = call.grid;
        let launched = op.with_kernel_params(|params| {
            // SAFETY: the caller guarantees the parameters and addresses match the kernel.
            unsafe {
                result::launch_kernel(
                    f.cu_function(),
                    (blocks[0], blocks[1], blocks[2]),
                    (threads[0], threads[1], threads[2]),
                    call.shared_bytes,
                    self.stream.cu_stream(),
                    params,
                )
            }
        });
        launched.unwrap_or(Ok(())).map_err(|e| device_err(call.kernel, e))?;
        if sync {
            self.stream.synchronize().map_err(|e| device_err(&format!("{} faulted", call.kernel), e))?;
        }
        Ok(())
    }

    /// Copies `host` to address `dst`, ordered on the stream; the host slice may be dropped on
    /// return (large copies go through pinned staging buffers, small ones are staged by the
    /// driver before the call returns).
    ///
    /// # Safety
    /// `dst` must point at live device memory of at least `size_of_val(host)` bytes.
    pub(crate) unsafe fn write_raw<T: Elem>(&self, dst: u64, host: &[T]) -> Result<()> {
        let bytes: &[u8] = bytemuck::cast_slice(host);
        if bytes.len() >= PINNED_FROM_BYTES {
            // SAFETY: as the caller guarantees.
            return unsafe { self.staging.upload(&self.stream, dst, bytes) };
        }
        // SAFETY: as the caller guarantees.
        unsafe { result::memcpy_htod_async(dst, bytes, self.stream.cu_stream()) }
            .map_err(|e| device_err("copy to the device", e))
    }

    /// Copies from address `src` into `host` after the work queued before, and waits for it.
    ///
    /// # Safety
    /// `src` must point at live device memory of at least `size_of_val(host)` bytes.
    pub(crate) unsafe fn read_raw<T: Elem>(&self, src: u64, host: &mut [T]) -> Result<()> {
        // SAFETY: as the caller guarantees; `host` outlives the copy, which the synchronisation
        // below completes.
        unsafe { result::memcpy_dtoh_async(host, src, self.stream.cu_stream()) }
            .map_err(|e| device_err("copy to the host", e))?;
        self.synchronize()
    }

    /// Lets `f` take `call.shared_bytes` of dynamic shared memory: above the default 48 KiB a
    /// kernel must opt in (a function attribute, set once per kernel and size).
    fn allow_shared(&self, call: Call, f: &CudaFunction) -> Result<()> {
        const DEFAULT_LIMIT: u32 = 48 * 1024;
        if call.shared_bytes <= DEFAULT_LIMIT {
            return Ok(());
        }
        let mut allowed =
            self.shared_allowed.lock().map_err(|_| Error::Device("kernel cache poisoned".into()))?;
        if allowed.get(call.kernel).is_some_and(|&b| b >= call.shared_bytes) {
            return Ok(());
        }
        let attribute = sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
        f.set_attribute(attribute, call.shared_bytes as i32).map_err(|e| device_err(call.kernel, e))?;
        allowed.insert(call.kernel, call.shared_bytes);
        Ok(())
    }

    fn capturing(&self) -> bool {
        self.stream
            .capture_status()
            .is_ok_and(|s| s != sys::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE)
    }

    /// `ops` captured into a CUDA graph (nothing runs until it is launched).
    ///
    /// # Safety
    /// As for [`CudaBackend::execute`], for every op, whenever the graph is launched.
    pub(crate) unsafe fn capture(&self, ops: &[RawOp]) -> Result<CudaGraph> {
        let mode = sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL;
        self.stream.begin_capture(mode).map_err(|e| device_err("beginning a graph capture", e))?;
        // SAFETY: as the caller guarantees.
        let recorded = ops.iter().try_for_each(|op| unsafe { self.execute(op) });
        let flags = sys::CUgraphInstantiate_flags(0);
        let graph = self.stream.end_capture(flags).map_err(|e| device_err("capturing a graph", e));
        recorded?;
        graph?.ok_or_else(|| Error::Device("cuda: the captured graph is empty".into()))
    }

    /// Launches a captured graph on the stream.
    pub(crate) fn replay(&self, graph: &CudaGraph) -> Result<()> {
        graph.launch().map_err(|e| device_err("launching a graph", e))?;
        if self.sync_each_launch {
            self.synchronize()?;
        }
        Ok(())
    }
}

impl Exec for CudaBackend {
    type Buf<T: Elem> = CudaSlice<T>;

    fn len<T: Elem>(&self, buf: &CudaSlice<T>) -> usize {
        buf.len()
    }

    fn upload<T: Elem>(&self, host: &[T]) -> Result<CudaSlice<T>> {
        self.stream.clone_htod(host).map_err(|e| device_err("copy to the device", e))
    }

    fn addr<T: Elem>(&self, buf: &CudaSlice<T>) -> u64 {
        buf.device_ptr(&self.stream).0
    }

    fn download<T: Elem>(&self, buf: &CudaSlice<T>) -> Result<Vec<T>> {
        let host = self.stream.clone_dtoh(buf).map_err(|e| device_err("copy to the host", e))?;
        // The copy is ordered on the stream; the values are the host's once the stream is done.
        self.synchronize()?;
        Ok(host)
    }

    fn alloc<T: Elem>(&self, len: usize) -> Result<CudaSlice<T>> {
        if !self.poison {
            // SAFETY: the contents are left unset, as `Exec::alloc` specifies: every launcher
            // hands a fresh buffer to kernels that write each element before anything reads it,
            // which the parity checks verify with poisoned buffers.
            return unsafe { self.stream.alloc::<T>(len) }.map_err(|e| device_err("allocation", e));
        }
        let mut buf = self.stream.alloc_zeros::<T>(len).map_err(|e| device_err("allocation", e))?;
        {
            let bytes = buf.num_bytes();
            let (ptr, _sync) = buf.device_ptr_mut(&self.stream);
            // SAFETY: sets the `bytes` bytes of this allocation, ordered on its stream.
            unsafe { result::memset_d8_async(ptr, 0xFF, bytes, self.stream.cu_stream()) }
                .map_err(|e| device_err("poisoning an allocation", e))?;
        }
        Ok(buf)
    }

    fn copy_into<T: Elem>(&self, src: &CudaSlice<T>, dst: &mut CudaSlice<T>, offset: usize) -> Result<()> {
        check_copy(src.len(), dst.len(), offset)?;
        let mut view = dst.slice_mut(offset..offset + src.len());
        self.stream.memcpy_dtod(src, &mut view).map_err(|e| device_err("copy on the device", e))
    }

    unsafe fn launch<P: KernelParams>(&self, call: Call, p: &P, args: &mut [Arg<'_, Self>]) -> Result<()> {
        let ptrs = args
            .iter()
            .map(|a| match a {
                Arg::In(b) => b.device_ptr(&self.stream).0,
                Arg::Index(b) => b.device_ptr(&self.stream).0,
                Arg::Addresses(b) => b.device_ptr(&self.stream).0,
                Arg::Out(b) => b.device_ptr(&self.stream).0,
                Arg::IndexOut(b) => b.device_ptr(&self.stream).0,
                Arg::Null => 0,
            })
            .collect();
        // SAFETY: the caller guarantees that the parameters match the kernel and that the buffers
        // are large enough; the addresses are those of the caller's live buffers.
        unsafe { self.execute(&RawOp::launch(call, p, ptrs)) }
    }
}
