//! The f64 reference: naive, written for clarity, not speed.

/// The number of rows of `z: [N, K]` whose first largest entry is at the row's label.
pub fn count_correct(z: &[f64], k: usize, labels: &[usize]) -> f64 {
    let mut hits = 0.0;
    for (row, &y) in z.chunks(k).zip(labels) {
        let mut best = 0;
        for (i, &v) in row.iter().enumerate() {
            if v > row[best] {
                best = i;
            }
        }
        if best == y {
            hits += 1.0;
        }
    }
    hits
}
