//! The device the device-taking tests run on.

use candle_core::Device;

/// The variable that names the test device: `cpu` (the default), `cuda`
/// or `cuda:N`. A GPU needs a `--features cuda` build; scripts/gpu-check.sh
/// runs these tests with `ISDET_TEST_DEVICE=cuda`.
pub const TEST_DEVICE: &str = "ISDET_TEST_DEVICE";

/// The device named by `ISDET_TEST_DEVICE`; a name that is not a device,
/// or a GPU that cannot be opened, fails the test with both named (a
/// check asked for on a GPU must never quietly run on the CPU).
pub fn test_device() -> Device {
    let name = std::env::var(TEST_DEVICE).unwrap_or_else(|_| "cpu".into());
    let device = match name.as_str() {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Device::new_cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => Device::new_cuda(n),
            _ => panic!("{TEST_DEVICE}={name}: expected cpu, cuda or cuda:N"),
        },
    };
    device.unwrap_or_else(|e| panic!("{TEST_DEVICE}={name}: cannot open the device: {e}"))
}

/// The relative tolerance of a comparison with the fast CPU path, as a
/// share of the reference's largest magnitude: 1e-4 on the CPU (the same
/// sums in another order), 1e-3 on a GPU (cuBLAS and candle's CUDA kernels
/// reduce in other orders and fuse multiply-adds; f32 throughout, no TF32).
pub fn tolerance(device: &Device) -> f32 {
    if device.is_cpu() { 1e-4 } else { 1e-3 }
}
