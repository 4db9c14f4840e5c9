//! Bugs of Unicorn 2.1.5 that the fuzzer found and that are still there. A finding that is
//! one of them is reported as known, not as new, so that campaigns and the test budget go
//! on looking for new ones; each has minimized cases in `corpora/regressions/` that check,
//! with nothing masked, that it is still there. (Flag-only bugs are masked more precisely,
//! in `flags::UNICORN_FLAG_BUGS`; `phaddd x, x` and RIP-relative `shld`/`shrd` are not
//! generated at all, see `forms`.)
//! The translator's pair, ring 3 vs ring 0, has no known bugs: both run on Unicorn, so its
//! bugs cancel out there, and any disagreement is new.

use iced_x86::{Decoder, DecoderOptions, Mnemonic};

use super::Finding;

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

/// One known bug: its name, what it is, and which findings are it.
pub struct KnownBug {
    pub name: &'static str,
    pub about: &'static str,
    matches: fn(&Finding) -> bool,
}

/// Whether `finding`'s case has an instruction in `mnemonics` that passes `test`.
fn has(
    finding: &Finding,
    mnemonics: &[Mnemonic],
    test: fn(&iced_x86::Instruction) -> bool,
) -> bool {
    finding.case.items.iter().any(|item| {
        let bytes = super::unhex(&item.code);
        Decoder::new(64, &bytes, DecoderOptions::NONE)
            .into_iter()
            .any(|i| mnemonics.contains(&i.mnemonic()) && test(&i))
    })
}

const UNICORN: &str = "native vs ring3";

pub const KNOWN_BUGS: &[KnownBug] = &[
    KnownBug {
        name: "unicorn-pcmpistri-equal-ordered",
        about: "pcmpistri in its equal-ordered (substring search) mode gives another index in \
                Unicorn than on the host (regression unicorn-pcmpistri-equal-ordered.json).",
        matches: |finding| {
            finding.pair == UNICORN
                && has(finding, &[Mnemonic::Pcmpistri], |i| {
                    i.immediate8() & 0x0c == 0x0c
                })
        },
    },
    KnownBug {
        name: "unicorn-dpps",
        about: "dpps rounds differently in Unicorn (it rounds each product, the host rounds as \
                the instruction defines) and gives other NaNs (regressions \
                unicorn-dpps-*.json).",
        matches: |finding| finding.pair == UNICORN && has(finding, &[Mnemonic::Dpps], |_| true),
    },
    KnownBug {
        name: "unicorn-sse-nan",
        about: "Unicorn's SSE floating point (QEMU softfloat) gives NaN results that differ \
                from the host's: the default NaN of 0/0 is positive where x86's is negative, \
                and of two NaN operands it passes on another. A native-vs-ring3 disagreement \
                in a sequence that does SSE floating-point arithmetic is taken to be this \
                (regressions unicorn-sse-nan-*.json).",
        matches: |finding| finding.pair == UNICORN && has(finding, NAN_ARITHMETIC, |_| true),
    },
];

/// The known bug `finding` is, if any.
pub fn classify(finding: &Finding) -> Option<&'static str> {
    KNOWN_BUGS
        .iter()
        .find(|bug| (bug.matches)(finding))
        .map(|bug| bug.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::{Case, Item};

    fn finding(pair: &str, code: &str) -> Finding {
        Finding {
            pair: pair.into(),
            difference: String::new(),
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

    #[test]
    fn a_known_bug_is_known_only_in_unicorns_pair() {
        let dpps = "660f3a40f3b8";
        assert_eq!(classify(&finding(UNICORN, dpps)), Some("unicorn-dpps"));
        assert_eq!(classify(&finding("ring3 vs ring0", dpps)), None);
    }

    #[test]
    fn pcmpistri_is_known_only_in_its_equal_ordered_mode() {
        assert_eq!(
            classify(&finding(UNICORN, "660f3a63eb2c")),
            Some("unicorn-pcmpistri-equal-ordered")
        );
        assert_eq!(classify(&finding(UNICORN, "660f3a63eb00")), None);
    }
}
