//! Optimiser state: detached from the graph (or memory grows every step),
//! and saved/restored so that a resumed run continues exactly.

use candle_core::{Device, Tensor};
use isdet_detector::{AdamW, Optimizer, ParamKind, ParamStore, Sgd};

/// A store with one decayed weight and one bias, and a loss whose
/// gradient reaches both through the graph of a forward pass.
fn setup() -> (ParamStore, Tensor) {
    let mut ps = ParamStore::new(7, &Device::Cpu);
    ps.normal("w", &[4, 3], 0.5).unwrap();
    ps.constant("b", &[4], 0.1, ParamKind::Bias).unwrap();
    let x = Tensor::new(&[[1.0f32, -2.0, 0.5], [0.3, 0.2, -1.0]], &Device::Cpu).unwrap();
    (ps, x)
}

fn loss(ps: &ParamStore, x: &Tensor) -> Tensor {
    let w = ps.find("w").unwrap().var.as_tensor();
    let b = ps.find("b").unwrap().var.as_tensor();
    let y = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(b).unwrap();
    y.relu().unwrap().sqr().unwrap().sum_all().unwrap()
}

fn optimisers(ps: &ParamStore) -> Vec<(&'static str, Box<dyn Optimizer>)> {
    vec![
        (
            "sgd",
            Box::new(Sgd::new(ps.trainable(), 0.01, 0.9, true, 1e-2).unwrap()),
        ),
        (
            "adamw",
            Box::new(AdamW::new(ps.trainable(), 0.01, 1e-2).unwrap()),
        ),
    ]
}

#[test]
fn optimiser_state_holds_no_graph() {
    let (ps, x) = setup();
    for (name, mut opt) in optimisers(&ps) {
        for _ in 0..3 {
            opt.step(&loss(&ps, &x).backward().unwrap()).unwrap();
        }
        let state = opt.state().unwrap();
        assert!(!state.is_empty(), "{name}");
        for (key, t) in &state {
            // A tensor that tracks an op keeps its inputs — here the step's
            // activations — alive as long as the state lives.
            assert!(!t.track_op(), "{name}: {key} is attached to a graph");
        }
    }
}

#[test]
fn restored_state_continues_exactly() {
    for k in 0..2 {
        let (ps_a, x) = setup();
        let (ps_b, _) = setup();
        let mut a = optimisers(&ps_a).remove(k).1;
        let mut b = optimisers(&ps_b).remove(k).1;
        for _ in 0..3 {
            a.step(&loss(&ps_a, &x).backward().unwrap()).unwrap();
            b.step(&loss(&ps_b, &x).backward().unwrap()).unwrap();
        }
        // A fresh optimiser over b's parameters, given a's state.
        let mut c = optimisers(&ps_b).remove(k).1;
        c.load_state(&a.state().unwrap()).unwrap();
        for _ in 0..2 {
            a.step(&loss(&ps_a, &x).backward().unwrap()).unwrap();
            c.step(&loss(&ps_b, &x).backward().unwrap()).unwrap();
        }
        for name in ["w", "b"] {
            let va = ps_a
                .find(name)
                .unwrap()
                .var
                .as_tensor()
                .flatten_all()
                .unwrap();
            let vb = ps_b
                .find(name)
                .unwrap()
                .var
                .as_tensor()
                .flatten_all()
                .unwrap();
            assert_eq!(
                va.to_vec1::<f32>().unwrap(),
                vb.to_vec1::<f32>().unwrap(),
                "optimiser {k}, {name}"
            );
        }
    }
}

#[test]
fn state_of_another_shape_is_refused() {
    let (ps, x) = setup();
    let mut opt = AdamW::new(ps.trainable(), 0.01, 0.0).unwrap();
    opt.step(&loss(&ps, &x).backward().unwrap()).unwrap();
    let mut state = opt.state().unwrap();
    state.insert(
        "m.w".into(),
        Tensor::zeros((2, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let err = opt.load_state(&state).unwrap_err().to_string();
    assert!(
        err.contains("m.w") && err.contains("[2, 2]") && err.contains("[4, 3]"),
        "{err}"
    );
}
