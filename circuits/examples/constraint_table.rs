//! Prints the constraint table of the crate README:
//! `cargo run --release -p fold-ml-circuits --example constraint_table`
use fold_ml_circuits::{cost::StepCost, synthetic::SyntheticModel};
use fold_ml_circuits::{
    gadgets::dense::DenseShape, gadgets::linear::LinearShape, layer::LayerSpec, quant::RequantSpec,
};

fn main() {
    println!("| layer | MACs | constraints | variables | products/MAC | requant/output | input range | weight range | Poseidon+counter | constraints/MAC |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut rows = vec![("conv 2×28×28, 3×3 (Zator body)".to_string(), SyntheticModel::zator(1, 0).spec())];
    for w in [16, 32, 64] {
        let spec = LayerSpec::new(
            LinearShape::Dense(DenseShape { inputs: w, outputs: w }),
            RequantSpec::new(8, 24).expect("valid"),
        );
        rows.push((format!("dense W={w}"), spec));
    }
    for (name, spec) in rows {
        let c = StepCost::of(&spec);
        println!(
            "| {name} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {:.2} |",
            c.macs,
            c.constraints,
            c.variables,
            c.products as f64 / c.macs as f64,
            c.requant / spec.shape.num_outputs(),
            c.input_range,
            c.weight_range,
            c.hashing,
            c.per_mac()
        );
    }
}
