//! Constraints of tiled convolutions against the same layer in one step: what tiling
//! costs. For each ResNet-20 convolution shape (CIFAR-size input) and a fold budget, the
//! whole-layer step is synthesized, the layer is tiled as `prove` would tile it, and the
//! tiles' total is compared.
//!
//! `cargo run --release --example tile_overhead [BUDGET...]` (default: 262144 524288).

use fold_ml::prove::plan::tile_rows;
use fold_ml_circuits::cost::StepCost;
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
use fold_ml_circuits::layer::{BlockSpec, LayerSpec};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::tile::TileSpec;

fn main() {
    let budgets: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let budgets = if budgets.is_empty() { vec![1 << 18, 1 << 19] } else { budgets };
    let rq = RequantSpec::new(8, 24).expect("valid");
    let shapes = [
        ("stem 3→16, 32×32", ConvShape::same(3, 16, 32, 32, 3)),
        ("stage 1 16→16, 32×32", ConvShape::same(16, 16, 32, 32, 3)),
        ("stage 2 in 16→32 stride 2", ConvShape { stride: [2, 2], ..ConvShape::same(16, 32, 32, 32, 3) }),
        ("stage 2 32→32, 16×16", ConvShape::same(32, 32, 16, 16, 3)),
        ("stage 3 64→64, 8×8", ConvShape::same(64, 64, 8, 8, 3)),
    ];
    println!("| layer | MACs | one step | budget | rows/tile | tiles | per tile | all tiles | tiled / whole |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, conv) in shapes {
        let layer = LayerSpec::new(LinearShape::Conv(conv), rq);
        let block = BlockSpec::layer(layer);
        let whole = StepCost::of_step(&block, 1);
        for &budget in &budgets {
            let Some(rows) = tile_rows(&block, whole.constraints, budget) else {
                println!(
                    "| {name} | {} | {} | {budget} | - | 1 | - | - | 1.00 (fits) |",
                    whole.macs, whole.constraints
                );
                continue;
            };
            let tile = StepCost::of_tile(&TileSpec { layer, rows }).expect("a planned tiling is valid");
            let tiles = conv.out_size().0 / rows;
            let all = tile.constraints * tiles;
            println!(
                "| {name} | {} | {} | {budget} | {rows} | {tiles} | {} | {all} | {:.3} |",
                whole.macs,
                whole.constraints,
                tile.constraints,
                all as f64 / whole.constraints as f64
            );
        }
    }
}
