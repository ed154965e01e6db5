//! Every op's forward against the f64 reference and its gradient against finite differences.

use iekd::verify::gradcheck;

#[test]
fn every_op_matches_reference_and_finite_differences() {
    let reports = gradcheck::run_all(None, 20260101).expect("cases run");
    println!("{}", gradcheck::format_table(&reports));
    assert!(!reports.is_empty());
    let failed: Vec<_> = reports.iter().filter(|r| !r.passed()).collect();
    assert!(failed.is_empty(), "failed: {failed:#?}");
}
