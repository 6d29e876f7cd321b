//! Focal and GIoU losses against torchvision's own functions on seeded
//! random inputs (fixtures/losses.json, made by fixtures/make_loss_fixtures.py).

use candle_core::{Device, Tensor};
use isdet_detector::loss::{FOCAL_ALPHA, FOCAL_GAMMA, focal_loss, giou_loss};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/losses.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn boxes(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().flat_map(floats).collect()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-5 + 1e-4 * w.abs();
        assert!((g - w).abs() <= tol, "{what}[{i}]: {g} vs torchvision {w}");
    }
}

#[test]
fn focal_loss_matches_torchvision() {
    let f = &fixture()["focal"];
    let dev = Device::Cpu;
    let x = Tensor::new(floats(&f["logits"]), &dev).unwrap();
    let t = Tensor::new(floats(&f["targets"]), &dev).unwrap();
    let got = focal_loss(&x, &t, FOCAL_ALPHA, FOCAL_GAMMA)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_close(&got, &floats(&f["loss"]), "focal");
}

#[test]
fn giou_loss_matches_torchvision() {
    let g = &fixture()["giou"];
    let dev = Device::Cpu;
    let p = boxes(&g["pred"]);
    let n = p.len() / 4;
    let pred = Tensor::from_vec(p, (n, 4), &dev).unwrap();
    let target = Tensor::from_vec(boxes(&g["target"]), (n, 4), &dev).unwrap();
    let got = giou_loss(&pred, &target).unwrap().to_vec1::<f32>().unwrap();
    assert_close(&got, &floats(&g["loss"]), "giou");
}
