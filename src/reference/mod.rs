//! Naive f64 reference forwards of every op, written for clarity, not speed. Gradient checks
//! differentiate them numerically; the fast paths are compared against them.
