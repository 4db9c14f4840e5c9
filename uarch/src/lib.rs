//! Prices x86-64 basic blocks in cycles for a named microarchitecture.
//!
//! Each microarchitecture is a table (`data/<name>.tsv`) of what each instruction form
//! costs on it — micro-ops, latency, reciprocal throughput and the cycles it keeps each
//! execution port busy — generated from LLVM's scheduling model for the core by
//! `gen-uarch-tables` through llvm-mca, with its source and licence in its header. The
//! tables are compiled in and read once, on first use: `skylake-server` and `znver3` from
//! LLVM 14, `sapphirerapids` and `znver4` from LLVM 19.
//!
//! A block's price per execution comes from its throughput bound, max(micro-ops / dispatch
//! width, the busiest port's summed cycles, a cycle per branch) — the bound llvm-mca and
//! OSACA report for a block run repeatedly, and the one taken branch a cycle a core can do —
//! and its recurrence, the cycles per execution of the chains of latencies it carries
//! through registers and flags from one execution into the next (a loop's running sum, a
//! hash's state; none for a block that returns, which never follows itself); its critical
//! path, the longest chain within one execution, is computed too. `PRICE` says how they
//! combine. Each table also gives the core's branch misprediction penalty, which the
//! simulator charges per misprediction it counts unless the cost model measured its own.
//!
//! What the price leaves out: dependencies through memory (a store and a later load of
//! the same address), the front end (decode, the micro-op cache) and cache misses. The stack engine is assumed: push, pop, call and ret move RSP without
//! a dependency. Where LLVM's model is coarse the price is too: on znver3 and znver4 a
//! microcoded instruction (`syscall`, `rep movsb`, `cpuid`) is 100 uops and 100 cycles
//! whatever it does, skylake-server and sapphirerapids price `syscall` as one simple uop,
//! sapphirerapids gives a NOP no uop at all, and `rep` string instructions are priced
//! once, not per element.
//!
//! ```
//! use iced_x86::{Decoder, DecoderOptions};
//!
//! let znver3 = uarch::by_name("znver3").expect("a built-in table");
//! // add rax, rbx; add rcx, rdx
//! let block: Vec<_> =
//!     Decoder::new(64, b"\x48\x01\xd8\x48\x01\xd1", DecoderOptions::NONE).into_iter().collect();
//! let cost = znver3.price_block(&block);
//! assert_eq!(cost.unpriced, 0);
//! assert!(cost.cycles > 0.0);
//! ```

mod form;
mod price;
mod table;

use std::sync::OnceLock;

pub use form::Form;
pub use iced_x86::Instruction;
pub use price::{BlockCost, BlockPricer, Combine, PRICE};
pub use table::{Cost, Microarchitecture, PortUse, TableError};

/// The built-in tables, by name.
const DATA: [(&str, &str); 4] = [
    ("sapphirerapids", include_str!("../data/sapphirerapids.tsv")),
    ("skylake-server", include_str!("../data/skylake-server.tsv")),
    ("znver3", include_str!("../data/znver3.tsv")),
    ("znver4", include_str!("../data/znver4.tsv")),
];

const NAMES: [&str; DATA.len()] = {
    let mut names = [""; DATA.len()];
    let mut index = 0;
    while index < DATA.len() {
        names[index] = DATA[index].0;
        index += 1;
    }
    names
};

/// The names of the built-in microarchitectures.
pub fn names() -> &'static [&'static str] {
    &NAMES
}

/// Every built-in microarchitecture, read on first use.
pub fn all() -> &'static [Microarchitecture] {
    static TABLES: OnceLock<Vec<Microarchitecture>> = OnceLock::new();
    TABLES.get_or_init(|| {
        DATA.iter()
            .map(|(name, text)| {
                Microarchitecture::parse(text)
                    .unwrap_or_else(|error| panic!("data/{name}.tsv: {error}"))
            })
            .collect()
    })
}

/// The built-in microarchitecture called `name`.
pub fn by_name(name: &str) -> Option<&'static Microarchitecture> {
    all().iter().find(|uarch| uarch.name == name)
}
