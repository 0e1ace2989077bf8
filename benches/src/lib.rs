//! Criterion benchmarks for CSSF live in `benches/`; run them with
//! `scripts/bench`. Each figure is measured beside its peer or its floor in
//! the same run and reported as a ratio.
