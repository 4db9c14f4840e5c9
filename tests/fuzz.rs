//! The instruction-level differential fuzzer, on a fixed budget: seeded sequences run
//! natively, at ring 3 and translated at ring 0 must agree (known Unicorn bugs aside, each
//! kept in `corpora/regressions/`); every regression case still shows what it recorded; and
//! a translator bug planted on purpose is found.

mod common;

use std::path::PathBuf;

use oracle::fuzz::{self, FuzzConfig, Regression, Simulator};

fn config(sequences: usize, flags: &[&str]) -> FuzzConfig {
    FuzzConfig {
        simulator: Simulator {
            path: PathBuf::from(common::SIMULATE),
            flags: flags.iter().map(|f| f.to_string()).collect(),
        },
        seed: 1,
        sequences,
        batch: 250,
        max_items: 12,
    }
}

fn describe(findings: &[fuzz::Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            let forms: Vec<&str> = f.case.items.iter().map(|i| i.form.as_str()).collect();
            format!("{}: {}: [{}]", f.pair, f.difference(), forms.join("; "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn two_thousand_sequences_agree() {
    let campaign = fuzz::fuzz(&config(2000, &[])).unwrap();
    assert!(campaign.new.is_empty(), "{}", describe(&campaign.new));
}

#[test]
fn every_regression_case_still_shows_what_it_expects() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpora/regressions");
    let simulator = config(0, &[]).simulator;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let regression: Regression =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let now = fuzz::replay(&simulator, &regression).unwrap();
        assert_eq!(
            now.as_ref().map(|f| &f.pair),
            regression.expect.as_ref(),
            "{}: {now:?}",
            file.display()
        );
        if let (Some(now), Some(then)) = (&now, &regression.difference) {
            assert_eq!(&now.difference(), then, "{}", file.display());
        }
    }
}

/// The fuzzer can fail: with the translator planting a bug (a spilled scratch register not
/// given back), sequences with indexed operands disagree between ring 3 and ring 0.
#[test]
fn a_planted_translator_bug_is_found() {
    let campaign = fuzz::fuzz(&config(250, &["--plant-bug", "spill-not-restored"])).unwrap();
    assert!(!campaign.new.is_empty());
    assert!(
        campaign.new.iter().all(|f| f.pair == "ring3 vs ring0"),
        "{}",
        describe(&campaign.new)
    );
}
