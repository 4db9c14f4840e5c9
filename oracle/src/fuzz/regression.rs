//! Regression cases (`corpora/regressions/`): minimized findings kept for good, each with
//! the host it was found on and what the runs left then, and their replay. Replay checks on
//! any host that ring 3 still leaves what it left then and that ring 0 agrees with it; the
//! native run is compared only on a host of the recorded vendor, since another vendor's
//! CPU may answer otherwise (`known::Kind::VendorDifference`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::flags::{self, KnownBugs};
use super::record::{self, Field, FieldDifference, Record};
use super::{Case, Finding, FuzzError, Simulator, TRANSLATOR_PAIR, UNICORN_PAIR};

/// The machine a case was recorded on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// `intel` or `amd` (the `translator::cpu` names), `unknown` for any other: decides
    /// whether a native run elsewhere can be compared with this one's.
    pub vendor: String,
    /// The CPU's brand string, for the reader.
    pub cpu: String,
}

impl Host {
    /// This machine.
    pub fn this() -> Host {
        Host {
            vendor: sim::machine::cpuid::host_vendor()
                .map_or_else(|| UNKNOWN_VENDOR.to_string(), |vendor| vendor.to_string()),
            cpu: brand(),
        }
    }
}

/// The vendor of a host that is neither Intel's nor AMD's.
const UNKNOWN_VENDOR: &str = "unknown";

/// The host CPU's brand string (CPUID leaves 0x80000002-4), trimmed.
fn brand() -> String {
    let bytes: Vec<u8> = (0x8000_0002..=0x8000_0004)
        .flat_map(|leaf| {
            let r = std::arch::x86_64::__cpuid(leaf);
            [r.eax, r.ebx, r.ecx, r.edx]
        })
        .flat_map(u32::to_le_bytes)
        .collect();
    String::from_utf8_lossy(&bytes)
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_string()
}

/// What a native and a ring-3 run of a case left when it was saved: their records, `None`
/// for a run that did not get to its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Results {
    /// On the recorded host. Ring 0 may differ from ring 3 where it agrees with this: a
    /// Unicorn bug that translation steps around.
    pub native: Option<Record>,
    /// The golden result: the same on every host.
    pub ring3: Option<Record>,
}

/// A case kept for good: a finding, minimized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regression {
    /// What the case shows and where it came from.
    pub about: String,
    pub host: Host,
    /// The pair that disagrees on it with the known bugs exposed, as when it was found
    /// ("native vs ring3": Unicorn's bug or a vendor difference, still there); none once
    /// all three must agree (a translator bug, fixed).
    pub expect: Option<String>,
    /// The difference seen when it was saved.
    pub difference: Option<String>,
    pub case: Case,
    pub results: Results,
}

/// The three runs of one case: each one's record, or why it has none.
struct Runs {
    native: Result<Vec<u8>, String>,
    ring3: Result<Vec<u8>, String>,
    ring0: Result<Vec<u8>, String>,
}

fn run_case(simulator: &Simulator, case: &Case) -> Result<Runs, FuzzError> {
    let dir = crate::scratch::TempDir::new("fuzz").map_err(|e| FuzzError::Io(e.to_string()))?;
    let outputs = super::run_batch(simulator, &[case.sequence()], dir.path())?;
    let record = |output| super::records_of(output, 1).map(|records| records[0].to_vec());
    Ok(Runs {
        native: record(&outputs.native),
        ring3: record(&outputs.ring3),
        ring0: record(&outputs.ring0),
    })
}

impl Regression {
    /// `finding` as a regression case made on this host, with what its runs leave now.
    pub fn record(
        simulator: &Simulator,
        about: String,
        finding: &Finding,
    ) -> Result<Regression, FuzzError> {
        let runs = run_case(simulator, &finding.case)?;
        let saved = |run: &Result<Vec<u8>, String>| run.as_deref().ok().map(Record::from_bytes);
        let mut regression = Regression {
            about,
            host: Host::this(),
            expect: Some(finding.pair.clone()),
            difference: None,
            case: finding.case.clone(),
            results: Results {
                native: saved(&runs.native),
                ring3: saved(&runs.ring3),
            },
        };
        // The difference as replay sees it, with the known bugs exposed (the campaign
        // masks some).
        let now = judge(&regression, &runs, &regression.host)?;
        regression.difference = now
            .verdicts
            .iter()
            .find(|v| v.pair == finding.pair && !v.differences.is_empty())
            .map(|v| join(&v.differences));
        Ok(regression)
    }
}

/// The golden pair: ring 3 as saved vs ring 3 now.
pub const GOLDEN_PAIR: &str = "saved ring3 vs ring3";

/// One pair's verdict on a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub pair: &'static str,
    /// Every field that differs, none when the two agree.
    pub differences: Vec<FieldDifference>,
    pub as_expected: bool,
}

/// What replaying a regression shows on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// The pairs compared: ring 3 against its saved result, ring 3 against ring 0, and
    /// native against ring 3 when the host matches.
    pub verdicts: Vec<Verdict>,
    /// Why native was not compared, if it was not.
    pub skipped: Option<String>,
}

impl Replay {
    pub fn as_expected(&self) -> bool {
        self.verdicts.iter().all(|v| v.as_expected)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shows = if self.differences.is_empty() {
            "agree".to_string()
        } else {
            join(&self.differences)
        };
        let expected = if self.as_expected {
            "as expected"
        } else {
            "NOT as expected"
        };
        write!(f, "{}: {shows} ({expected})", self.pair)
    }
}

impl fmt::Display for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .verdicts
            .iter()
            .map(ToString::to_string)
            .chain(self.skipped.clone())
            .collect();
        f.write_str(&parts.join("; "))
    }
}

fn join(differences: &[FieldDifference]) -> String {
    differences
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every field in which two runs differ, flags in `undefined` aside. A run that did not get
/// to its end is compared only as that: two such runs agree.
fn compare(
    left: Result<&[u8], &str>,
    right: Result<&[u8], &str>,
    undefined: u64,
) -> Vec<FieldDifference> {
    match (left, right) {
        (Ok(l), Ok(r)) => record::differences(l, r, undefined),
        (Err(_), Err(_)) => Vec::new(),
        (l, r) => {
            let why = |run: Result<&[u8], &str>| run.err().unwrap_or("ran to its end").to_string();
            vec![FieldDifference {
                field: Field::Run,
                left: Vec::new(),
                right: Vec::new(),
                note: format!("{}; {}", why(l), why(r)),
            }]
        }
    }
}

/// A saved record as bytes: `Err` for a run that did not get to its end.
fn saved_bytes(
    saved: &Option<Record>,
    what: &'static str,
) -> Result<Result<Vec<u8>, String>, FuzzError> {
    saved
        .as_ref()
        .map(|record| record.to_bytes().ok_or(FuzzError::MalformedRecord(what)))
        .transpose()
        .map(|bytes| bytes.ok_or_else(|| format!("{what} did not run to its end when saved")))
}

/// A run's record, or why it has none.
fn run(result: &Result<Vec<u8>, String>) -> Result<&[u8], &str> {
    result.as_deref().map_err(String::as_str)
}

/// Replays `regression` on a machine of vendor `host`, with the known bugs exposed.
pub fn replay(
    simulator: &Simulator,
    regression: &Regression,
    host: &Host,
) -> Result<Replay, FuzzError> {
    let runs = run_case(simulator, &regression.case)?;
    judge(regression, &runs, host)
}

/// What `runs` of `regression`'s case show on a machine of vendor `host`.
fn judge(regression: &Regression, runs: &Runs, host: &Host) -> Result<Replay, FuzzError> {
    let golden = saved_bytes(&regression.results.ring3, "ring3")?;
    let saved_native = saved_bytes(&regression.results.native, "native")?;
    let code = regression.case.code();
    let architectural = flags::undefined_after(&code, KnownBugs::Exposed);
    let masked = flags::undefined_after(&code, KnownBugs::Masked);
    let verdict = |pair: &'static str, differences: Vec<FieldDifference>| {
        let expected = regression.expect.as_deref() == Some(pair);
        let as_expected = match (expected, differences.is_empty()) {
            (false, true) => true,
            (true, false) => regression
                .difference
                .as_ref()
                .is_none_or(|then| *then == join(&differences)),
            _ => false,
        };
        Verdict {
            pair,
            differences,
            as_expected,
        }
    };
    // Ring 0 is judged against the recorded host's native run, as campaigns judge it
    // against theirs, so that this pair's verdict is the same on every host.
    let translator = compare(run(&runs.ring3), run(&runs.ring0), masked);
    let translator = match (&saved_native, &runs.ring0) {
        (Ok(native), Ok(ring0)) => record::ring0_wrong_too(translator, native, ring0, masked),
        _ => translator,
    };
    let mut verdicts = vec![
        verdict(
            GOLDEN_PAIR,
            compare(run(&golden), run(&runs.ring3), architectural),
        ),
        verdict(TRANSLATOR_PAIR, translator),
    ];
    // An unknown vendor matches nothing, not even another unknown one.
    let known = host.vendor != UNKNOWN_VENDOR;
    let skipped = if known && host.vendor == regression.host.vendor {
        verdicts.push(verdict(
            UNICORN_PAIR,
            compare(run(&runs.native), run(&runs.ring3), architectural),
        ));
        None
    } else {
        Some(format!(
            "native comparison skipped: recorded on {}, this host is {}",
            regression.host.vendor, host.vendor
        ))
    };
    Ok(Replay { verdicts, skipped })
}
