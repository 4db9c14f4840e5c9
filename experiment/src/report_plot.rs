//! `simulate --plot`: where a run's cycles went, ring 3 beside ring 0, stacked by term.

use sim::report::Report;

use crate::plot::{self, Stacks};
use crate::provenance::VERSION;

/// The report's cycles by term, a bar for ring 3 and, translated, one for ring 0; `command`
/// is the footer's.
pub fn to_svg(report: &Report, command: &str) -> String {
    let ring3 = &report.ring3;
    let mut bars = vec!["ring 3".to_string()];
    // Each term's ring-3 and ring-0 share; a term one ring does not have is 0 there.
    let mut terms: Vec<(&str, [u64; 2])> = vec![
        ("instructions", [ring3.user_instruction_cycles, 0]),
        (
            "crossings (ring 3) / calls (ring 0)",
            [ring3.crossing_cycles, 0],
        ),
        ("switches", [ring3.switch_cycles, 0]),
        ("kernel work", [ring3.kernel_work_cycles, 0]),
        ("translation", [0, 0]),
        ("indirect lookups", [0, 0]),
    ];
    if let Some(ring0) = &report.ring0 {
        bars.push("ring 0, translated".to_string());
        let shares = [
            ring0.translated_instruction_cycles,
            ring0.call_cycles,
            ring0.switch_cycles,
            ring0.kernel_work_cycles,
            ring0.translation_cycles,
            ring0.indirect_lookup_cycles,
        ];
        for ((_, values), share) in terms.iter_mut().zip(shares) {
            values[1] = share;
        }
    }
    let stacks = Stacks {
        series: terms
            .into_iter()
            .map(|(name, values)| {
                let values = values[..bars.len()].iter().map(|&v| v as f64).collect();
                (name.to_string(), values)
            })
            .collect(),
        bars,
    };
    let speedup = report
        .speedup
        .map_or(String::new(), |s| format!(", speedup {s:.2}×"));
    let title = format!(
        "{}: cycles under {}{speedup}",
        report.argv.join(" "),
        report.cost_model.name
    );
    plot::stacked_bars(
        &title,
        "cycles",
        &format!("ringsim {VERSION} · {command}"),
        &stacks,
    )
}
