//! `Transpose` on every backend against a scalar oracle, bit for bit, for
//! f32 (NaN payloads, -0.0, infinities, subnormals included), i32 and u32,
//! at shapes 0×n, n×0, 1×1, 1×n, n×1, 17×33, 257×129, around the 32×32
//! GPU tile and the 8×8 / 64×64 CPU blocks, and one row longer than
//! 65,535 GPU tiles (a folded 2-D dispatch).

mod common;

use common::*;
use proptest::prelude::{ProptestConfig, any, proptest};
use tandem::kernels::Transpose;
use tandem::{Backend, Buffer, Element, Error, Kernel};

fn oracle<T: Copy>(rows: usize, cols: usize, x: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(x.len());
    for c in 0..cols {
        for r in 0..rows {
            out.push(x[r * cols + c]);
        }
    }
    out
}

/// Bits of any 4-byte element, so f32 NaN payloads compare exactly.
fn bits<T: Element>(v: &[T]) -> Vec<u32> {
    bytemuck::cast_slice(v).to_vec()
}

fn run_case<T: Element>(rows: usize, cols: usize, x: Vec<T>) {
    let want = oracle(rows, cols, &x);
    let xb = Buffer::from(x);
    let k = Transpose { rows, cols };
    for (b, e) in backends() {
        let got = e.run(&k, &xb).unwrap().to_vec().unwrap();
        assert_eq!(got.len(), want.len(), "{b:?} {rows}x{cols} {}", T::TYPE);
        if bits(&got) != bits(&want) {
            let i = bits(&got)
                .iter()
                .zip(bits(&want))
                .position(|(g, w)| *g != w)
                .unwrap();
            panic!(
                "{b:?} {rows}x{cols} {}: element {i}: got {:?}, want {:?}",
                T::TYPE,
                got[i],
                want[i]
            );
        }
    }
}

/// f32 bit patterns of every kind: random bits (NaNs with payloads,
/// subnormals, infinities, -0.0 all occur).
fn any_f32s(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| match i % 7 {
            0 => f32::from_bits(0x7fc0_1234),
            1 => -0.0,
            2 => f32::from_bits(1),
            _ => f32::from_bits(rng.next_u32()),
        })
        .collect()
}

const SHAPES: &[(usize, usize)] = &[
    (0, 5),
    (5, 0),
    (0, 0),
    (1, 1),
    (1, 300),
    (300, 1),
    (17, 33),
    (257, 129),
    (31, 33),
    (32, 32),
    (33, 31),
    (63, 65),
    (64, 64),
    (65, 63),
    (8, 8),
    (9, 7),
    (130, 200),
    // Past the CPU's parallel threshold, ragged against 8 and 16.
    (300, 301),
    (256, 512),
];

#[test]
fn transpose_is_bit_exact_for_every_type_and_shape() {
    let mut rng = Rng::new(3);
    for &(r, c) in SHAPES {
        run_case(r, c, any_f32s(&mut rng, r * c));
        run_case(r, c, rng.i32s(r * c));
        run_case(r, c, rng.u32s(r * c));
    }
}

#[test]
fn transpose_row_longer_than_65535_gpu_tiles_folds_the_dispatch() {
    // 2,100,000 columns: 65,625 tiles of 32 in one dimension; both ways round.
    let mut rng = Rng::new(11);
    let x = rng.u32s(2_100_000);
    run_case(1, 2_100_000, x.clone());
    run_case(2_100_000, 1, x);
    run_case(3, 700_001, rng.u32s(2_100_003));
}

#[test]
fn transpose_twice_is_the_identity() {
    let mut rng = Rng::new(4);
    let x = rng.f32s(1000 * 77, -1.0, 1.0);
    let xb = Buffer::from(x.clone());
    for (b, e) in backends() {
        let t = e
            .run(
                &Transpose {
                    rows: 1000,
                    cols: 77,
                },
                &xb,
            )
            .unwrap();
        let back = e
            .run(
                &Transpose {
                    rows: 77,
                    cols: 1000,
                },
                &t,
            )
            .unwrap();
        assert_eq!(back.to_vec().unwrap(), x, "{b:?}");
    }
}

#[test]
fn transpose_rejects_wrong_length_and_overflow_naming_the_sizes() {
    let x = Buffer::from(vec![0u32; 12]);
    for (b, e) in backends() {
        for (k, needles) in [
            (Transpose { rows: 3, cols: 5 }, vec!["12", "3 x 5", "15"]),
            (Transpose { rows: 0, cols: 5 }, vec!["12", "0 x 5"]),
            (
                Transpose {
                    rows: usize::MAX,
                    cols: 3,
                },
                vec!["overflow"],
            ),
        ] {
            match e.run(&k, &x) {
                Err(Error::InvalidArgument { kernel, message }) => {
                    assert_eq!(kernel, "transpose", "{b:?}");
                    for n in needles {
                        assert!(message.contains(n), "{b:?}: {message:?} lacks {n:?}");
                    }
                }
                other => panic!("{b:?}: expected InvalidArgument, got {other:?}"),
            }
        }
    }
}

#[test]
fn transpose_of_nothing_dispatches_nothing() {
    let Some(e) = own_gpu_engine() else { return };
    let before = e.stats();
    let empty = Buffer::from(Vec::<f32>::new());
    for (rows, cols) in [(0, 9), (9, 0), (0, 0)] {
        assert!(e.run(&Transpose { rows, cols }, &empty).unwrap().is_empty());
    }
    assert_eq!(e.stats().since(&before).gpu_dispatches, 0);
}

#[test]
fn transpose_beyond_the_binding_limit_moves_in_blocks_on_the_gpu() {
    let Some(e) = common::small_binding_engine() else {
        return;
    };
    let gpu = e.on(Backend::Gpu);
    // 16,384 u32 per binding: shapes whose rows, columns or both cross it,
    // with ragged blocks, offsets that are not 256-byte aligned, and (2 ×
    // 16,000) rows that fit a binding only just.
    for (i, (rows, cols)) in [
        (257, 129),
        (129, 257),
        (1000, 37),
        (37, 1000),
        (600, 700),
        (2, 16_000),
        (16_000, 2),
    ]
    .into_iter()
    .enumerate()
    {
        let x = Rng::new(8 + i as u64).u32s(rows * cols);
        let xb = Buffer::from(x.clone());
        let k = Transpose { rows, cols };
        let before = gpu.stats();
        let got = gpu
            .run(&k, &xb)
            .unwrap_or_else(|e| panic!("{rows}x{cols}: {e}"));
        assert_eq!(
            got.to_vec().unwrap(),
            oracle(rows, cols, &x),
            "{rows}x{cols}"
        );
        let dispatches = gpu.stats().since(&before).gpu_dispatches;
        let crosses = (rows * cols * 4) as u64 > SMALL_BINDING;
        assert!(
            dispatches > u64::from(crosses),
            "{rows}x{cols}: {dispatches} dispatches"
        );
        let xf = Buffer::from(x.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
        if let Ok(got) = gpu.run(&k, &xf) {
            let want: Vec<f64> = oracle(rows, cols, &x).into_iter().map(f64::from).collect();
            assert_eq!(got.to_vec().unwrap(), want, "f64 {rows}x{cols}");
        }
    }
}

#[test]
fn a_row_longer_than_one_binding_is_too_large_on_gpu_and_auto_uses_cpu() {
    let Some(e) = common::small_binding_engine() else {
        return;
    };
    let (rows, cols) = (2, 20_000);
    let x = Rng::new(9).u32s(rows * cols);
    let xb = Buffer::from(x.clone());
    let k = Transpose { rows, cols };
    match e.on(Backend::Gpu).run(&k, &xb) {
        Err(Error::TooLarge { kernel, .. }) => assert_eq!(kernel, "transpose"),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(
        e.run(&k, &xb).unwrap().to_vec().unwrap(),
        oracle(rows, cols, &x)
    );
}

#[test]
fn transpose_work_is_one_read_and_one_write() {
    let x = Buffer::from(vec![0i32; 60]);
    let w = Transpose { rows: 6, cols: 10 }.work(&&x);
    assert_eq!((w.bytes_read, w.bytes_written, w.flops), (240, 240, 0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn transpose_gpu_equals_cpu_equals_oracle(
        rows in 0usize..150, cols in 0usize..150, seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        run_case(rows, cols, any_f32s(&mut rng, rows * cols));
    }
}
