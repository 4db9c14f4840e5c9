//! Bugs of Unicorn 2.1.5 that the fuzzer found and that are still there. A finding that is
//! one of them is reported as known, not as new, so that campaigns and the test budget go
//! on looking for new ones; each has minimized cases in `corpora/regressions/` that check,
//! with nothing masked, that it is still there. (Flag-only bugs are masked more precisely,
//! in `flags::UNICORN_FLAG_BUGS`; `phaddd x, x` is not generated at all, see `forms`.)
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
    Mnemonic::Dpps,
    Mnemonic::Roundps,
];

/// One known bug: its name, what it is, and which findings are it.
pub struct KnownBug {
    pub name: &'static str,
    pub about: &'static str,
    matches: fn(&Finding) -> bool,
}

pub const KNOWN_BUGS: &[KnownBug] = &[KnownBug {
    name: "unicorn-sse-nan",
    about: "Unicorn's SSE floating point (QEMU softfloat) gives NaN results that differ from \
            the host's: the default NaN of 0/0 is positive where x86's is negative, and of two \
            NaN operands it passes on another. A native-vs-ring3 disagreement in a sequence \
            that does SSE floating-point arithmetic is taken to be this \
            (regressions unicorn-sse-nan-*.json).",
    matches: |finding| {
        finding.pair == "native vs ring3"
            && Decoder::new(64, &finding.case.code(), DecoderOptions::NONE)
                .into_iter()
                .any(|i| NAN_ARITHMETIC.contains(&i.mnemonic()))
    },
}];

/// The known bug `finding` is, if any.
pub fn classify(finding: &Finding) -> Option<&'static str> {
    KNOWN_BUGS
        .iter()
        .find(|bug| (bug.matches)(finding))
        .map(|bug| bug.name)
}
