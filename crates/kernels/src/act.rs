//! Fused ReLU ops for the fast CPU path.
//!
//! candle's ReLU backward is `grad · (x ≥ 0)` built from a zero tensor, a
//! comparison, a cast and a product: four passes and four allocations over
//! the activation, before the usual accumulation. Here the mask is one pass
//! over the op's own output, and a residual `relu(a + b)` is one op.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::Kernels;
use crate::par::{f32_slice, fill_parts_uninit, write_all};

/// Elements per unit of work of the element-wise ops (small enough to
/// split a layer across threads, big enough to amortise the dispatch).
const UNIT: usize = 16 * 1024;

/// `relu(a + b)` for two tensors of the same shape (the residual sum of a
/// ResNet block), as one op with a one-pass backward on the fast path.
pub fn add_relu(a: &Tensor, b: &Tensor, imp: Kernels) -> candle_core::Result<Tensor> {
    if a.dims() != b.dims() || !imp.fast_on(&[a, b]) {
        return (a + b)?.relu();
    }
    let (a, b) = (a.contiguous()?, b.contiguous()?);
    if a.track_op() || b.track_op() {
        a.apply_op2(&b, AddRelu)
    } else {
        a.apply_op2_no_bwd(&b, &AddRelu)
    }
}

/// `grad · [out > 0]`: the gradient through a ReLU whose output is `out`.
pub(crate) fn relu_grad(grad: &Tensor, out: &Tensor) -> candle_core::Result<Tensor> {
    if !Kernels::Fast.fast_on(&[grad, out]) {
        return grad * out.gt(0.0)?.to_dtype(grad.dtype())?;
    }
    grad.contiguous()?
        .apply_op2_no_bwd(&out.contiguous()?, &ReluGrad)
}

/// `f(a[i], b[i])` for every element, on candle's worker pool.
fn zip_map(
    name: &str,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    f: impl Fn(f32, f32) -> f32 + Sync,
) -> candle_core::Result<(CpuStorage, Shape)> {
    if l1.dims() != l2.dims() {
        candle_core::bail!("{name}: shapes {:?} and {:?} differ", l1.dims(), l2.dims());
    }
    let (a, b) = (f32_slice(s1, l1, name)?, f32_slice(s2, l2, name)?);
    let out = fill_parts_uninit(a.len(), a.len(), UNIT, |u, part| {
        let n = part.len();
        let (a, b) = (&a[u * UNIT..][..n], &b[u * UNIT..][..n]);
        write_all(part, a.iter().zip(b).map(|(&x, &y)| f(x, y)))
    });
    Ok((CpuStorage::F32(out), l1.shape().clone()))
}

/// The op of [`add_relu`].
struct AddRelu;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "fast-add-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        zip_map(self.name(), (s1, l1), (s2, l2), |a, b| (a + b).max(0.0))
    }

    fn bwd(
        &self,
        _a: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = relu_grad(grad, res)?;
        Ok((Some(g.clone()), Some(g)))
    }
}

/// The gradient `g` through a ReLU at an element whose output is `y`: `g`
/// where `y > 0`, else +0.
pub(crate) fn relu_grad_at(g: f32, y: f32) -> f32 {
    if y > 0.0 { g } else { 0.0 }
}

/// The op of [`relu_grad`] (no backward: it is only used inside one).
struct ReluGrad;

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "fast-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        zip_map(self.name(), (s1, l1), (s2, l2), relu_grad_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Deterministic values in [-1, 1) on a grid of 1/1000, shifted by
    /// `offset`.
    fn values(n: usize, seed: u32, offset: f32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
                (h % 2000) as f32 / 1000.0 - 1.0 + offset
            })
            .collect()
    }

    #[test]
    fn add_relu_matches_stock_forward_and_gradients() -> candle_core::Result<()> {
        // More elements than one unit, so that the work is split. The
        // offset keeps every `a + b` away from 0, where candle's mask
        // (x ≥ 0) and this one (y > 0) take different subgradients.
        let shape = (3, 5, 41, 59);
        let n = 3 * 5 * 41 * 59;
        let a = Var::from_vec(values(n, 1, 0.0), shape, &Device::Cpu)?;
        let b = Var::from_vec(values(n, 2, 1.0 / 4096.0), shape, &Device::Cpu)?;
        let up = Tensor::from_vec(values(n, 3, 0.0), shape, &Device::Cpu)?;
        let run = |imp| -> candle_core::Result<Vec<Vec<f32>>> {
            let y = add_relu(a.as_tensor(), b.as_tensor(), imp)?;
            // A second consumer of `a`: the gradients must add up.
            let loss = ((&y * &up)?.sum_all()? + a.as_tensor().sqr()?.sum_all()?)?;
            let g = loss.backward()?;
            let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
            Ok(vec![
                flat(&y)?,
                flat(g.get(a.as_tensor()).expect("grad of a"))?,
                flat(g.get(b.as_tensor()).expect("grad of b"))?,
            ])
        };
        let fast = run(Kernels::Fast)?;
        let stock = run(Kernels::Stock)?;
        assert!(fast[0].contains(&0.0) && fast[0].iter().any(|&v| v > 0.0));
        for (what, (f, s)) in ["forward", "grad a", "grad b"]
            .iter()
            .zip(fast.iter().zip(&stock))
        {
            for (i, (x, y)) in f.iter().zip(s).enumerate() {
                assert!((x - y).abs() <= 1e-6, "{what}[{i}]: {x} vs {y}");
            }
        }
        Ok(())
    }

    #[test]
    fn relu_grad_at_passes_g_where_y_is_positive_and_plus_zero_elsewhere() {
        let plus_zero = 0f32.to_bits();
        assert_eq!(relu_grad_at(-3.0, 1.0), -3.0);
        assert!(relu_grad_at(f32::NAN, 1.0).is_nan());
        for (g, y) in [
            (-3.0, 0.0),
            (5.0, -0.0),
            (5.0, -2.0),
            (f32::INFINITY, 0.0),
            (2.0, f32::NAN),
        ] {
            assert_eq!(relu_grad_at(g, y).to_bits(), plus_zero, "g {g} y {y}");
        }
    }

    #[test]
    fn relu_grad_masks_where_the_output_is_zero() -> candle_core::Result<()> {
        let grad = Tensor::new(&[1f32, 2.0, 3.0, 4.0], &Device::Cpu)?;
        let out = Tensor::new(&[0f32, 0.5, 0.0, 7.0], &Device::Cpu)?;
        let g = relu_grad(&grad, &out)?.to_vec1::<f32>()?;
        assert_eq!(g, [0.0, 2.0, 0.0, 4.0]);
        Ok(())
    }
}
