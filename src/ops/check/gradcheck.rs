//! Gradient-check cases: one configuration of one op, with the op on f32 tensors (the path under
//! test) and on f64 values (its reference), the inputs to draw and the tolerances.

use crate::error::Result;
use crate::tensor::Tensor;

/// How an input's elements are drawn.
#[derive(Clone, Debug)]
pub enum Init {
    /// N(0, std^2).
    Normal(f64),
    /// U(lo, hi).
    Uniform(f64, f64),
}

/// One input of a case.
#[derive(Clone, Debug)]
pub struct Input {
    /// Its name in the report (`x`, `weight`, ...).
    pub name: &'static str,
    /// Its shape.
    pub shape: Vec<usize>,
    /// How its elements are drawn.
    pub init: Init,
    /// Whether its gradient is checked.
    pub differentiable: bool,
}

impl Input {
    /// A differentiable input drawn from N(0, 1).
    pub fn normal(name: &'static str, shape: &[usize]) -> Input {
        Input { name, shape: shape.to_vec(), init: Init::Normal(1.0), differentiable: true }
    }

    /// A differentiable input drawn from `init`.
    pub fn with_init(name: &'static str, shape: &[usize], init: Init) -> Input {
        Input { name, shape: shape.to_vec(), init, differentiable: true }
    }

    /// The same input, excluded from the gradient check.
    pub fn constant(self) -> Input {
        Input { differentiable: false, ..self }
    }
}

/// The fast path of a case: the op applied to its input tensors.
pub type FastFn = Box<dyn Fn(&[Tensor]) -> Result<Tensor>>;
/// The reference of a case: the op applied to its f64 inputs.
pub type ReferenceFn = Box<dyn Fn(&[Vec<f64>]) -> Vec<f64>>;

/// One checked configuration of one op.
pub struct Case {
    /// The op's name, as `iekd gradcheck --op` matches it.
    pub op: &'static str,
    /// The configuration: shapes, strides, options.
    pub detail: String,
    /// The inputs.
    pub inputs: Vec<Input>,
    /// The op on f32 tensors (the path under test).
    pub fast: FastFn,
    /// The op on f64 values (the reference).
    pub reference: ReferenceFn,
    /// Bound on the normwise relative gradient error.
    pub grad_bound: f64,
    /// Forward tolerance: absolute part.
    pub atol: f64,
    /// Forward tolerance: relative part.
    pub rtol: f64,
}

impl Case {
    /// A case with the default tolerances (gradient 1e-4; forward 1e-5 + 1e-4 * |ref|).
    pub fn new(
        op: &'static str,
        detail: impl Into<String>,
        inputs: Vec<Input>,
        fast: FastFn,
        reference: ReferenceFn,
    ) -> Case {
        Case { op, detail: detail.into(), inputs, fast, reference, grad_bound: 1e-4, atol: 1e-5, rtol: 1e-4 }
    }

    /// A case of one N(0, 1) input `x` of shape `x`, its configuration `x[shape] detail`.
    pub fn unary(
        op: &'static str,
        detail: String,
        x: &[usize],
        fast: FastFn,
        reference: ReferenceFn,
    ) -> Case {
        Case::new(op, format!("x{x:?} {detail}"), vec![Input::normal("x", x)], fast, reference)
    }

    /// The same case with another gradient bound.
    pub fn grad_bound(self, bound: f64) -> Case {
        Case { grad_bound: bound, ..self }
    }
}
