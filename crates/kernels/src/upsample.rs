//! Nearest-neighbour upsampling by an integer factor with a cheap backward.
//!
//! candle 0.11 computes the gradient of `upsample_nearest2d` as a grouped
//! convolution (one group per channel), i.e. one small im2col and matmul
//! per channel, each of which re-reads the machine's CPU count from
//! `/proc/cpuinfo`. That took about a quarter of the detector's training
//! step. Here the gradient is a block sum.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::Kernels;
use crate::par::{f32_slice, fill_parts};

/// `x` (NCHW) upsampled to `h × w` by repeating pixels.
///
/// With [`Kernels::Fast`], f32 CPU tensors and integer factors take the
/// custom op. Other integer factors (other devices, or
/// [`Kernels::Stock`]) use a reshape–broadcast formulation, whose
/// gradient is a broadcast sum: candle 0.11's own `upsample_nearest2d`
/// backward *assigns* its gradient to the input instead of adding it, so it
/// drops the other contributions whenever the input has another consumer
/// processed first (the feature pyramid's top-down path is such a case).
/// Non-integer factors use candle's op (which has no backward then).
pub fn upsample_nearest(
    x: &Tensor,
    h: usize,
    w: usize,
    imp: Kernels,
) -> candle_core::Result<Tensor> {
    let (n, c, xh, xw) = x.dims4()?;
    if xh == 0 || xw == 0 || !h.is_multiple_of(xh) || !w.is_multiple_of(xw) {
        return x.upsample_nearest2d(h, w);
    }
    let (fh, fw) = (h / xh, w / xw);
    if !imp.fast_on(&[x]) {
        return x
            .reshape((n, c, xh, 1, xw, 1))?
            .broadcast_as((n, c, xh, fh, xw, fw))?
            .reshape((n, c, h, w));
    }
    let op = Upsample { fh, fw };
    let x = x.contiguous()?;
    if x.track_op() {
        x.apply_op1(op)
    } else {
        x.apply_op1_no_bwd(&op)
    }
}

/// Planes per unit of work (≥ 16 K output floats each).
fn planes_per_unit(out_plane: usize) -> usize {
    (16384 / out_plane.max(1)).max(1)
}

#[derive(Debug, Clone, Copy)]
struct Upsample {
    fh: usize,
    fw: usize,
}

impl CustomOp1 for Upsample {
    fn name(&self) -> &'static str {
        "fast-upsample-nearest"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l.shape().dims4()?;
        let x = f32_slice(s, l, "upsample")?;
        let (oh, ow) = (h * self.fh, w * self.fw);
        let per = planes_per_unit(oh * ow);
        let len = n * c * oh * ow;
        let y = fill_parts(len, len, per * oh * ow, |u, part| {
            for (i, out) in part.chunks_mut(oh * ow).enumerate() {
                let src = &x[(u * per + i) * h * w..][..h * w];
                for (oy, orow) in out.chunks_mut(ow).enumerate() {
                    let srow = &src[(oy / self.fh) * w..][..w];
                    for (o, v) in orow.chunks_mut(self.fw).zip(srow) {
                        o.fill(*v);
                    }
                }
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((n, c, oh, ow))))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let down = BlockSum {
            fh: self.fh,
            fw: self.fw,
        };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&down)?))
    }
}

/// The adjoint of [`Upsample`]: sums each `fh × fw` block.
#[derive(Debug, Clone, Copy)]
struct BlockSum {
    fh: usize,
    fw: usize,
}

impl CustomOp1 for BlockSum {
    fn name(&self) -> &'static str {
        "fast-upsample-nearest-backward"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, c, oh, ow) = l.shape().dims4()?;
        let g = f32_slice(s, l, "upsample")?;
        let (h, w) = (oh / self.fh, ow / self.fw);
        let per = planes_per_unit(oh * ow);
        let len = n * c * h * w;
        let dx = fill_parts(len, len, per * h * w, |u, part| {
            for (i, out) in part.chunks_mut(h * w).enumerate() {
                let src = &g[(u * per + i) * oh * ow..][..oh * ow];
                for (oy, grow) in src.chunks(ow).enumerate() {
                    let drow = &mut out[(oy / self.fh) * w..][..w];
                    for (d, block) in drow.iter_mut().zip(grow.chunks(self.fw)) {
                        *d += block.iter().sum::<f32>();
                    }
                }
            }
        });
        Ok((CpuStorage::F32(dx), Shape::from((n, c, h, w))))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::upsample_nearest;
    use crate::Kernels;

    #[test]
    fn matches_candle_with_gradients() {
        let v: Vec<f32> = (0..2 * 3 * 3 * 5)
            .map(|i| (i * 7 % 11) as f32 - 5.0)
            .collect();
        let x =
            Var::from_tensor(&Tensor::from_vec(v, (2, 3, 3, 5), &Device::Cpu).unwrap()).unwrap();
        let probe: Vec<f32> = (0..2 * 3 * 6 * 10).map(|i| (i % 13) as f32).collect();
        let probe = Tensor::from_vec(probe, (2, 3, 6, 10), &Device::Cpu).unwrap();
        let run = |imp| {
            let y = upsample_nearest(x.as_tensor(), 6, 10, imp).unwrap();
            let g = (&y * &probe)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let dx = g.get(x.as_tensor()).unwrap().flatten_all().unwrap();
            (
                y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                dx.to_vec1::<f32>().unwrap(),
            )
        };
        let fast = run(Kernels::Fast);
        assert_eq!(fast, run(Kernels::Stock));
        // candle's own op agrees on this graph (the input has one consumer).
        let y = x.as_tensor().upsample_nearest2d(6, 10).unwrap();
        let g = (&y * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let dx = g.get(x.as_tensor()).unwrap().flatten_all().unwrap();
        assert_eq!(fast.1, dx.to_vec1::<f32>().unwrap());
    }

    /// An input with two consumers: the gradients add up (candle 0.11's own
    /// `upsample_nearest2d` keeps only one of them when its backward runs
    /// last).
    #[test]
    fn gradients_accumulate_over_consumers() {
        let x = Var::from_tensor(
            &Tensor::ones((1, 1, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
        )
        .unwrap();
        for imp in [Kernels::Fast, Kernels::Stock] {
            let t = (x.as_tensor() * 1.0).unwrap();
            let up = upsample_nearest(&t, 4, 4, imp).unwrap().sum_all().unwrap();
            let direct = (&t * 3.0).unwrap().sum_all().unwrap();
            let g = (up + direct).unwrap().backward().unwrap();
            let dx = g.get(x.as_tensor()).unwrap().flatten_all().unwrap();
            assert_eq!(dx.to_vec1::<f32>().unwrap(), vec![7.0; 4], "{imp:?}");
        }
    }
}
