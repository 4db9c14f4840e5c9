//! The correctness oracle (issue 4): native vs ring 3 vs translated ring 0. Nothing is
//! built yet.
