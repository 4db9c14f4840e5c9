//! What the fuzzer already knows about: bugs of Unicorn 2.1.5 that it found and that are
//! still there, and differences between CPU vendors (the native run is the host's CPU; the
//! simulated one follows Unicorn's Intel core). A finding that is one of them is reported as
//! known, not as new, so that campaigns and the test budget go on looking for new ones; each
//! has minimized cases in `corpora/regressions/` that check, with nothing masked, that it is
//! still there. (Flag-only bugs are masked more precisely, in `flags::UNICORN_FLAG_BUGS`;
//! `phaddd x, x` and RIP-relative `shld`/`shrd` are not generated at all, see `forms`.)
//! The translator's pair, ring 3 vs ring 0, has no known bugs: both run on Unicorn, so its
//! bugs cancel out there, and any disagreement is new.

use iced_x86::{Decoder, DecoderOptions, Mnemonic};

use super::record::{Field, FieldDifference};
use super::{Case, Finding, UNICORN_PAIR as UNICORN};

/// SSE floating-point instructions that can make or pass on a NaN.
const NAN_ARITHMETIC: &[Mnemonic] = &[
    Mnemonic::Addps,
    Mnemonic::Mulpd,
    Mnemonic::Divps,
    Mnemonic::Sqrtsd,
    Mnemonic::Minps,
    Mnemonic::Maxsd,
    Mnemonic::Haddps,
    Mnemonic::Roundps,
];

/// Whose a known difference is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Unicorn's (or the simulator's): ring 3 is wrong on every host.
    UnicornBug,
    /// The host's: CPUs of different vendors disagree, and ring 3 gives one vendor's
    /// answer; it shows only on a host of another vendor.
    VendorDifference,
}

/// One known bug or vendor difference: its name, what it is, and which differences it
/// explains.
pub struct KnownBug {
    pub name: &'static str,
    pub kind: Kind,
    /// The vendor (`translator::cpu` name) of the only hosts where it can show; `None`: any.
    pub host: Option<&'static str>,
    pub about: &'static str,
    /// Whether the bug explains this difference of a native-vs-ring3 finding on `case`.
    explains: fn(&Case, &FieldDifference) -> bool,
}

/// Whether `case` has an instruction in `mnemonics` that passes `test`.
fn has(case: &Case, mnemonics: &[Mnemonic], test: fn(&iced_x86::Instruction) -> bool) -> bool {
    case.items.iter().any(|item| {
        let bytes = super::unhex(&item.code);
        Decoder::new(64, &bytes, DecoderOptions::NONE)
            .into_iter()
            .any(|i| mnemonics.contains(&i.mnemonic()) && test(&i))
    })
}

/// Whether every 32-bit lane that differs is a NaN on both sides.
fn only_nan_lanes(d: &FieldDifference) -> bool {
    let nan = |lane: &[u8]| f32::from_le_bytes(lane.try_into().expect("4 bytes")).is_nan();
    d.left
        .chunks(4)
        .zip(d.right.chunks(4))
        .all(|(l, r)| l == r || (nan(l) && nan(r)))
}

fn is_xmm(d: &FieldDifference) -> bool {
    matches!(d.field, Field::Xmm(_))
}

pub const KNOWN_BUGS: &[KnownBug] = &[
    KnownBug {
        name: "unicorn-pcmpistri-equal-ordered",
        kind: Kind::UnicornBug,
        host: None,
        about: "pcmpistri in its equal-ordered (substring search) mode gives another index in \
                ECX, and other flags, in Unicorn than on the host (regression \
                unicorn-pcmpistri-equal-ordered.json).",
        explains: |case, d| {
            matches!(d.field, Field::Gpr(1) | Field::Flags)
                && has(case, &[Mnemonic::Pcmpistri], |i| {
                    i.immediate8() & 0x0c == 0x0c
                })
        },
    },
    // Before `unicorn-dpps`, which also explains its differences: on an AMD host a dpps
    // NaN difference may be either, and this is the one that host adds.
    KnownBug {
        name: "vendor-dpps-nan",
        kind: Kind::VendorDifference,
        host: Some("amd"),
        about: "Which NaN dpps passes on when it adds NaN products differs between AMD and \
                Intel CPUs; Unicorn gives Intel's (regression vendor-dpps-nan.json, recorded \
                on AMD; on Intel, native and ring 3 agree on it): an xmm difference whose \
                differing lanes are all NaNs on both sides, in a sequence with dpps, on an AMD \
                host.",
        explains: |case, d| {
            is_xmm(d) && only_nan_lanes(d) && has(case, &[Mnemonic::Dpps], |_| true)
        },
    },
    KnownBug {
        name: "unicorn-dpps",
        kind: Kind::UnicornBug,
        host: None,
        about: "dpps rounds differently in Unicorn (one unit in the last place) and passes on \
                another NaN than CPUs of either vendor (regressions unicorn-dpps-*.json): an \
                xmm difference in a sequence with dpps.",
        explains: |case, d| is_xmm(d) && has(case, &[Mnemonic::Dpps], |_| true),
    },
    KnownBug {
        name: "unicorn-sse-nan",
        kind: Kind::UnicornBug,
        host: None,
        about: "Unicorn's SSE floating point (QEMU softfloat) gives NaN results that differ \
                from the host's: the default NaN of 0/0 is positive where x86's is negative, \
                and of two NaN operands it passes on another (regressions \
                unicorn-sse-nan-*.json): an xmm difference whose differing lanes are all NaNs \
                on both sides, in a sequence with SSE floating-point arithmetic.",
        explains: |case, d| is_xmm(d) && only_nan_lanes(d) && has(case, NAN_ARITHMETIC, |_| true),
    },
];

/// The known bug that explains difference `d` of `finding`, made on a host of vendor
/// `host`, if any: only in the pair that runs Unicorn against the host.
fn explaining(finding: &Finding, d: &FieldDifference, host: &str) -> Option<&'static KnownBug> {
    (finding.pair == UNICORN)
        .then(|| {
            KNOWN_BUGS.iter().find(|bug| {
                bug.host.is_none_or(|vendor| vendor == host) && (bug.explains)(&finding.case, d)
            })
        })
        .flatten()
}

/// The first field of `finding`, made on a host of vendor `host`, that no known bug
/// explains.
pub fn unexplained(finding: &Finding, host: &str) -> Option<Field> {
    finding
        .differences
        .iter()
        .find(|d| explaining(finding, d, host).is_none())
        .map(|d| d.field)
}

/// The known bug `finding`, made on a host of vendor `host`, is, when known bugs explain
/// every one of its differences.
pub fn classify(finding: &Finding, host: &str) -> Option<&'static KnownBug> {
    if unexplained(finding, host).is_some() {
        return None;
    }
    let first = finding.differences.first()?;
    explaining(finding, first, host)
}

impl Kind {
    /// What a finding of this kind is called.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::UnicornBug => "known Unicorn bug",
            Kind::VendorDifference => "known vendor difference",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::Item;

    fn finding(pair: &str, code: &str, field: Field, left: &[u8], right: &[u8]) -> Finding {
        Finding {
            pair: pair.into(),
            differences: vec![FieldDifference {
                field,
                left: left.to_vec(),
                right: right.to_vec(),
                note: String::new(),
            }],
            case: Case {
                items: vec![Item {
                    form: String::new(),
                    code: code.into(),
                }],
                gprs: [0; 16],
                flags: 0,
                xmm: Vec::new(),
                buffer: String::new(),
            },
        }
    }

    /// The known bug's name, on an Intel host.
    fn name(finding: &Finding) -> Option<&'static str> {
        classify(finding, "intel").map(|bug| bug.name)
    }

    const X: [u8; 16] = [1; 16];
    const Y: [u8; 16] = [2; 16];

    #[test]
    fn a_known_bug_is_known_only_in_unicorns_pair() {
        let dpps = "660f3a40f3b8";
        let xmm = Field::Xmm(6);
        assert_eq!(
            name(&finding(UNICORN, dpps, xmm, &X, &Y)),
            Some("unicorn-dpps")
        );
        assert_eq!(name(&finding("ring3 vs ring0", dpps, xmm, &X, &Y)), None);
    }

    #[test]
    fn a_known_bug_explains_only_its_fields() {
        let dpps = "660f3a40f3b8";
        assert_eq!(name(&finding(UNICORN, dpps, Field::Gpr(0), &X, &Y)), None);
        let pcmpistri = "660f3a63eb2c";
        assert_eq!(
            name(&finding(UNICORN, pcmpistri, Field::Gpr(1), &X, &Y)),
            Some("unicorn-pcmpistri-equal-ordered")
        );
        assert_eq!(
            name(&finding(UNICORN, "660f3a63eb00", Field::Gpr(1), &X, &Y)),
            None
        );
    }

    fn nan(sign: u32) -> [u8; 16] {
        let mut v = [0u8; 16];
        v[..4].copy_from_slice(&(0x7fc0_0000u32 | sign).to_le_bytes());
        v
    }

    #[test]
    fn nan_results_are_known_only_where_both_lanes_are_nan() {
        let divps = "0f5ed1";
        let xmm = Field::Xmm(2);
        assert_eq!(
            name(&finding(UNICORN, divps, xmm, &nan(1 << 31), &nan(0))),
            Some("unicorn-sse-nan")
        );
        assert_eq!(name(&finding(UNICORN, divps, xmm, &X, &Y)), None);
    }

    #[test]
    fn a_vendor_difference_is_known_only_on_its_vendors_hosts() {
        let dpps = finding(
            UNICORN,
            "660f3a40f4f4",
            Field::Xmm(6),
            &nan(1 << 31),
            &nan(1),
        );
        let on = |host| classify(&dpps, host).map(|bug| (bug.name, bug.kind));
        assert_eq!(on("amd"), Some(("vendor-dpps-nan", Kind::VendorDifference)));
        assert_eq!(on("intel"), Some(("unicorn-dpps", Kind::UnicornBug)));
        let rounding = finding(UNICORN, "660f3a40f4f4", Field::Xmm(6), &X, &Y);
        assert_eq!(
            classify(&rounding, "amd").map(|bug| bug.name),
            Some("unicorn-dpps")
        );
    }
}
