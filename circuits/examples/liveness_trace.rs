//! Prints how the synthetic 512-layer model's activations evolve (non-zero, saturated, mean):
//! `cargo run --release -p fold-ml-circuits --example liveness_trace`
use fold_ml_circuits::{layer::BlockSpec, reference::run_native, synthetic::SyntheticModel};
fn main() {
    let m = SyntheticModel::zator(512, 0);
    let mut a = m.default_input();
    for (i, p) in m.iter().enumerate() {
        a = run_native(&BlockSpec::layer(m.spec()), &a, [&p]).unwrap();
        if i % 32 == 31 || i < 4 {
            let nz = a.iter().filter(|&&x| x > 0).count();
            let sat = a.iter().filter(|&&x| x == 127).count();
            let mean: f64 = a.iter().map(|&x| x as f64).sum::<f64>() / a.len() as f64;
            println!("layer {:4} nonzero {:4} sat {:4} mean {:.1}", i + 1, nz, sat, mean);
        }
    }
}
