//! The kernels' parameter structs, `#[repr(C)]` mirrors of those declared in
//! `kernels/common.cuh` (field for field, same order and types). [`layout_checks`] writes C++
//! `static_assert`s of every size, offset and field type, which the tests compile with NVRTC and
//! with g++, so a struct that drifts on either side fails to compile.

use std::fmt::Write as _;

/// A parameter struct that can be passed by value as a kernel's first argument.
///
/// # Safety
/// The type must be `#[repr(C)]`, hold only `i32` and `f32` fields, and match the struct of the
/// same name in `kernels/common.cuh`.
pub unsafe trait KernelParams: Copy + Send + Sync + cudarc::driver::DeviceRepr + 'static {
    /// The first integer field that is negative, if any (no kernel takes a negative size, index
    /// or flag).
    fn negative_field(&self) -> Option<&'static str>;
}

/// A field type: its C++ spelling, and whether a value is negative (for integers).
trait CType {
    const NAME: &'static str;
    fn is_negative_int(&self) -> bool;
}

impl CType for i32 {
    const NAME: &'static str = "int";
    fn is_negative_int(&self) -> bool {
        *self < 0
    }
}

impl CType for f32 {
    const NAME: &'static str = "float";
    fn is_negative_int(&self) -> bool {
        false
    }
}

macro_rules! kernel_params {
    ($($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident: $ty:ty),* $(,)? })*) => {
        $(
            $(#[$doc])*
            #[repr(C)]
            #[derive(Clone, Copy, Debug, Default, PartialEq)]
            pub struct $name {
                $($(#[$fdoc])* pub $field: $ty,)*
            }

            // SAFETY: `#[repr(C)]` with i32 / f32 fields only, mirrored in kernels/common.cuh
            // (checked by `layout_checks`).
            unsafe impl KernelParams for $name {
                fn negative_field(&self) -> Option<&'static str> {
                    [$((stringify!($field), self.$field.is_negative_int())),*]
                        .into_iter()
                        .find_map(|(field, negative)| negative.then_some(field))
                }
            }
            // SAFETY: plain old data, passed by value as a kernel parameter.
            unsafe impl cudarc::driver::DeviceRepr for $name {}
        )*

        /// C++ `static_assert`s that every struct of `kernels/common.cuh` has this module's size,
        /// field order and field types, and that this module's fields sit at 4-byte steps; with
        /// 4-byte fields only, these fix every offset on both sides. Compile them after the header.
        pub fn layout_checks() -> String {
            let mut s = String::from(
                "template <class A, class B> struct iekd_same { static constexpr bool value = false; };\n\
                 template <class A> struct iekd_same<A, A> { static constexpr bool value = true; };\n",
            );
            $(
                let name = stringify!($name);
                let fields: &[(&str, usize, &str)] =
                    &[$((stringify!($field), std::mem::offset_of!($name, $field), <$ty as CType>::NAME)),*];
                let positions: Vec<String> = (0..fields.len()).map(|i| i.to_string()).collect();
                writeln!(s, "static_assert(sizeof({name}) == {}, \"size of {name}\");", size_of::<$name>())
                    .expect("write to String");
                // Aggregate initialisation fills the fields in declaration order.
                writeln!(s, "constexpr {name} iekd_{name}{{{}}};", positions.join(", ")).expect("write to String");
                for (i, (field, offset, ty)) in fields.iter().enumerate() {
                    writeln!(
                        s,
                        "static_assert(iekd_{name}.{field} == {i} && {offset} == 4 * {i}, \"position of {name}::{field}\");\n\
                         static_assert(iekd_same<decltype({name}::{field}), {ty}>::value, \"type of {name}::{field}\");"
                    )
                    .expect("write to String");
                }
            )*
            s
        }
    };
}

kernel_params! {
    /// One convolution: input `[n, h, w, c_in]`, weight `[c_out, c_in, kh, kw]`, output
    /// `[n, h_out, w_out, c_out]`; `split_rows` output pixels per block of the weight gradient;
    /// `accumulate = 1` adds the data gradient into its output; the batch-norm epilogue applies a
    /// ReLU when `relu = 1` and adds `eps` to the variance.
    ConvParams { n: i32, h: i32, w: i32, c_in: i32, c_out: i32, kh: i32, kw: i32, stride: i32, pad: i32,
        h_out: i32, w_out: i32, split_rows: i32, accumulate: i32, relu: i32, eps: f32 }
    /// `c[m, n] = sum_k a[i * a_row + k * a_col] * b[k * b_row + j * b_col]`.
    GemmParams { m: i32, n: i32, k: i32, a_row: i32, a_col: i32, b_row: i32, b_col: i32 }
    /// Batch norm over `rows x c`; `split_rows` rows per block of a channel reduction.
    BnParams { rows: i32, c: i32, split_rows: i32, relu: i32, training: i32, eps: f32, momentum: f32,
        unbias: f32 }
    /// An elementwise map over `len` values with a mode and one scalar.
    MapParams { len: i32, mode: i32, a: f32 }
    /// Rows of `c` channels: channels `start..start + k`, or `k` gathered channels.
    ChannelParams { rows: i32, c: i32, start: i32, k: i32 }
    /// The option-A shortcut of `[n, h, w, c]` to `c_out` channels.
    SubsampleParams { n: i32, h: i32, w: i32, c: i32, c_out: i32 }
    /// Global average pooling of `[n, pixels, c]`.
    PoolParams { n: i32, pixels: i32, c: i32 }
    /// A per-channel window op on `[n, h, w, c]`: a `k x k` window with `stride` and zero padding
    /// `pad`, output `[n, h_out, w_out, c]`.
    WindowParams { n: i32, h: i32, w: i32, c: i32, k: i32, stride: i32, pad: i32, h_out: i32, w_out: i32 }
    /// A row-wise op on `rows x cols` values with a mode and one scalar.
    RowParams { rows: i32, cols: i32, mode: i32, a: f32 }
    /// One SGD update of `len` parameters.
    SgdParams { tensors: i32, nesterov: i32, first: i32, lr: f32, momentum: f32, weight_decay: f32 }
}
