//! The crossing curve: what translation gains against how often a program crosses into the
//! kernel. `work_between ITERS CALLS` makes a getppid call after every 5 + 5 × ITERS
//! instructions of user work (loads, adds and stores, which the translated code sandboxes),
//! or, with ITERS 0, after 1 + 2/64 (calls unrolled 64 to a loop: the densest case);
//! swept over ITERS, each point is the steady state per call (two runs of CALLS and 2 ×
//! CALLS calls, their difference: start-up and the one-time translation cancel). The
//! break-even density is where the ring-0 estimate stops beating ring 3. Programs of the
//! corpus are placed on the same axes by their own density and steady-state speedup.

use sim::costs::builtin;

use crate::plot::{self, Curve, Marks};
use crate::provenance::{Model, Provenance};
use crate::runner::{field, per_unit, Mode, Run, Runner};
use crate::Error;

/// Calls in the smaller of the two runs of a point: a multiple of 64 (ITERS 0 unrolls the
/// calls 64 to a loop), and with as many digits as twice it, so that the two runs print
/// and parse numbers of one length.
const CALLS: u64 = 128;

/// User instructions between two calls for `iters` iterations of work.
pub fn work(iters: u64) -> f64 {
    if iters == 0 {
        1.0 + 2.0 / 64.0
    } else {
        5.0 + 5.0 * iters as f64
    }
}

/// ITERS values for instructions between calls log-spaced from 0 (the unrolled calls, about
/// one instruction apart) to `max`, `per_decade` a decade, without repeats.
pub fn iterations(per_decade: u32, max: u64) -> Vec<u64> {
    let mut values = vec![0];
    let mut k = 0;
    loop {
        let instructions = 10f64.powf(f64::from(k) / f64::from(per_decade));
        let iters = ((instructions - 5.0) / 5.0).round().max(0.0) as u64;
        if work(iters) > max as f64 {
            break;
        }
        if values.last() != Some(&iters) {
            values.push(iters);
        }
        k += 1;
    }
    values
}

/// One point of a model's curve, per call in the steady state.
#[derive(Clone, Debug)]
pub struct Point {
    pub model: String,
    pub iters: u64,
    /// Guest instructions per call, the `syscall` included: 6 + 5 × ITERS.
    pub instructions: f64,
    pub ring3: f64,
    pub ring0: f64,
}

impl Point {
    pub fn density(&self) -> f64 {
        1000.0 / self.instructions
    }

    pub fn speedup(&self) -> f64 {
        self.ring3 / self.ring0
    }
}

/// A program of the corpus, run whole under a model.
#[derive(Clone, Debug)]
pub struct Placed {
    pub model: String,
    pub name: &'static str,
    pub guest_instructions: f64,
    pub syscalls: f64,
    pub speedup: f64,
    pub steady_state_speedup: f64,
}

impl Placed {
    pub fn density(&self) -> f64 {
        1000.0 * self.syscalls / self.guest_instructions
    }
}

/// The programs placed on the curve: their name, program and arguments in the corpus.
pub const PROGRAMS: &[(&str, &str, &[&str])] = &[
    ("getppid_loop", "getppid_loop", &["20000"]),
    ("write_loop", "write_loop", &["20000"]),
    ("pread_loop", "pread_loop", &["20000"]),
    ("psr", "psr", &["2000"]),
    ("cpu_bound", "cpu_bound", &[]),
    (
        "busybox sha256sum",
        "busybox",
        &["sha256sum", "inputs/data.bin"],
    ),
    ("busybox sort", "busybox", &["sort", "inputs/text.txt"]),
    (
        "busybox gzip",
        "busybox",
        &["gzip", "-c", "inputs/text.txt"],
    ),
    ("busybox wc", "busybox", &["wc", "inputs/text.txt"]),
];

/// Instructions between calls: whole numbers grouped, the unrolled case to two decimals.
fn work_text(work: f64) -> String {
    if work.fract() == 0.0 {
        plot::grouped(work)
    } else {
        format!("{work:.2}")
    }
}

/// The point for `iters` under `model`.
pub fn measure(runner: &Runner, model: &Model, iters: u64) -> Result<Point, Error> {
    let [small, large] = [CALLS, 2 * CALLS].map(|calls| {
        let args = vec![iters.to_string(), calls.to_string()];
        runner.report(&Run::new(
            "work_between",
            args,
            &model.argument,
            Mode::Ring0,
        ))
    });
    let (small, large) = (small?, large?);
    let d = |path: &[&str]| per_unit(&small, &large, CALLS as f64, path);
    Ok(Point {
        model: model.spec.clone(),
        iters,
        instructions: d(&["guest_instructions"])?,
        ring3: d(&["ring3", "cycles"])?,
        ring0: d(&["ring0", "cycles"])?,
    })
}

/// Every program of `PROGRAMS` under `model`.
pub fn place(runner: &Runner, model: &Model) -> Result<Vec<Placed>, Error> {
    PROGRAMS
        .iter()
        .map(|(name, program, args)| {
            let args = args.iter().map(|a| a.to_string()).collect();
            let report = runner.report(&Run::new(program, args, &model.argument, Mode::Ring0))?;
            Ok(Placed {
                model: model.spec.clone(),
                name,
                guest_instructions: field(&report, &["guest_instructions"])?,
                syscalls: field(&report, &["syscalls", "total"])?,
                speedup: field(&report, &["speedup"])?,
                steady_state_speedup: field(&report, &["steady_state_speedup"])?,
            })
        })
        .collect()
}

/// The experiment's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub models: Vec<Model>,
    pub per_decade: u32,
    /// The most user instructions between two calls.
    pub max_work: u64,
    /// Place the corpus programs on the curve.
    pub programs: bool,
}

impl Settings {
    pub fn command(&self) -> String {
        format!(
            "experiment crossing-curve --models {} --per-decade {} --max-work {}{}",
            self.specs().join(","),
            self.per_decade,
            self.max_work,
            if self.programs { "" } else { " --no-programs" }
        )
    }

    pub fn provenance(&self) -> Provenance {
        Provenance::of(self.command(), &self.models)
    }

    /// The models as given, in order.
    pub fn specs(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.spec.as_str()).collect()
    }
}

/// The curves and the placed programs.
#[derive(Debug)]
pub struct Results {
    pub points: Vec<Point>,
    pub placed: Vec<Placed>,
}

pub fn measure_all(runner: &Runner, settings: &Settings) -> Result<Results, Error> {
    let mut results = Results {
        points: Vec::new(),
        placed: Vec::new(),
    };
    for model in &settings.models {
        for iters in iterations(settings.per_decade, settings.max_work) {
            results.points.push(measure(runner, model, iters)?);
        }
        if settings.programs {
            results.placed.extend(place(runner, model)?);
        }
    }
    Ok(results)
}

/// Where `model`'s curve crosses a speedup of 1: the density at which ring 0 costs what
/// ring 3 does. Both costs per call are linear in the work between calls (a fixed part and
/// a part per instruction), so their difference is interpolated linearly in instructions
/// between the two points around the crossing, which is exact under a `cpi` model. `None`
/// if the curve does not cross within the sweep.
pub fn break_even(points: &[Point], model: &str) -> Option<f64> {
    let curve: Vec<&Point> = points.iter().filter(|p| p.model == model).collect();
    curve.windows(2).find_map(|pair| {
        let (a, b) = (pair[0], pair[1]);
        let (gain_a, gain_b) = (a.ring3 - a.ring0, b.ring3 - b.ring0);
        if gain_a <= 0.0 || gain_b > 0.0 {
            return None;
        }
        let t = gain_a / (gain_a - gain_b);
        let instructions = a.instructions + t * (b.instructions - a.instructions);
        Some(1000.0 / instructions)
    })
}

fn break_even_text(points: &[Point], model: &str) -> String {
    if let Some(density) = break_even(points, model) {
        return format!("{density:.3}");
    }
    let mut curve = points.iter().filter(|p| p.model == model);
    if curve.clone().all(|p| p.ring3 > p.ring0) {
        "none: translation pays at every density swept".to_string()
    } else if curve.all(|p| p.ring3 <= p.ring0) {
        "none: translation pays at no density swept".to_string()
    } else {
        "none: the curve only crosses upward (translation pays at the sparse end)".to_string()
    }
}

/// One row per point and per placed program.
pub fn to_csv(results: &Results) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            "kind",
            "model",
            "program",
            "work_instructions",
            "instructions_per_call",
            "ring3_cycles_per_call",
            "ring0_cycles_per_call",
            "guest_instructions",
            "syscalls",
            "syscalls_per_1000_instructions",
            "steady_state_speedup",
            "whole_run_speedup",
        ])
        .expect("to memory");
    for p in &results.points {
        writer
            .write_record([
                "curve".to_string(),
                p.model.clone(),
                "work_between".to_string(),
                format!("{:.5}", work(p.iters)),
                format!("{:.0}", p.instructions),
                format!("{:.1}", p.ring3),
                format!("{:.1}", p.ring0),
                String::new(),
                String::new(),
                format!("{:.6}", p.density()),
                format!("{:.4}", p.speedup()),
                String::new(),
            ])
            .expect("to memory");
    }
    for p in &results.placed {
        writer
            .write_record([
                "program".to_string(),
                p.model.clone(),
                p.name.to_string(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                format!("{:.0}", p.guest_instructions),
                format!("{:.0}", p.syscalls),
                format!("{:.6}", p.density()),
                format!("{:.4}", p.steady_state_speedup),
                format!("{:.4}", p.speedup),
            ])
            .expect("to memory");
    }
    String::from_utf8(writer.into_inner().expect("to memory")).expect("ASCII")
}

pub fn to_markdown(results: &Results, settings: &Settings, provenance: &Provenance) -> String {
    let mut text = String::from(
        "# The crossing curve\n\n\
         Steady-state speedup of the translated program at ring 0 over ring 3 against \
         syscall density, for `work_between`: a getppid call after every 5 + 5 × ITERS \
         instructions of user work (an iteration loads, adds and stores), or after 1 + 2/64 \
         with ITERS 0 (the calls unrolled), each point the difference of two runs so that \
         start-up and translation cancel.\n\n\
         ## Break-even\n\n\
         | model | break-even density (syscalls per 1,000 instructions) |\n|---|---|\n",
    );
    for model in settings.specs() {
        text += &format!(
            "| {model} | {} |\n",
            break_even_text(&results.points, model)
        );
    }
    text += "\nBelow the break-even density translation costs more than the crossings it \
             saves: the sandbox's checks on the work's memory accesses outweigh them.\n\n\
             ## The curve\n\n| instructions between calls | syscalls per 1,000 instructions |";
    for model in settings.specs() {
        text += &format!(" {model} |");
    }
    text += "\n|---:|---:|";
    text += &"---:|".repeat(settings.models.len());
    text += "\n";
    for iters in iterations(settings.per_decade, settings.max_work) {
        let row: Vec<&Point> = settings
            .specs()
            .into_iter()
            .filter_map(|m| {
                results
                    .points
                    .iter()
                    .find(|p| p.model == m && p.iters == iters)
            })
            .collect();
        let Some(first) = row.first() else { continue };
        text += &format!("| {} | {:.3} |", work_text(work(iters)), first.density());
        for p in &row {
            text += &format!(" {:.3}× |", p.speedup());
        }
        text += "\n";
    }
    if !results.placed.is_empty() {
        text += "\n## Programs of the corpus on the curve\n\n\
                 | model | program | guest instructions | syscalls | syscalls per 1,000 instructions | steady-state speedup | whole run |\n\
                 |---|---|---:|---:|---:|---:|---:|\n";
        for p in &results.placed {
            text += &format!(
                "| {} | {} | {} | {} | {:.3} | {:.3}× | {:.3}× |\n",
                p.model,
                p.name,
                plot::grouped(p.guest_instructions),
                plot::grouped(p.syscalls),
                p.density(),
                p.steady_state_speedup,
                p.speedup
            );
        }
        text += "\nA program's steady state leaves out its one-time translation, as the \
                 curve's points do; its whole run counts it.\n";
    }
    text + "\n" + &provenance.to_markdown()
}

/// Speedup against density on logarithmic axes: a curve per model, the programs as marks
/// in their model's colour.
pub fn to_svg(results: &Results, settings: &Settings, provenance: &Provenance) -> String {
    let curves: Vec<Curve> = settings
        .specs()
        .into_iter()
        .map(|model| Curve {
            name: model.to_string(),
            points: results
                .points
                .iter()
                .filter(|p| p.model == model)
                .map(|p| (p.density(), p.speedup()))
                .collect(),
        })
        .collect();
    let marks: Vec<Marks> = settings
        .specs()
        .into_iter()
        .enumerate()
        .map(|(i, model)| Marks {
            series: i,
            // Named once, under the first model, not to crowd the plot.
            points: results
                .placed
                .iter()
                .filter(|p| p.model == model)
                .map(|p| {
                    let name = if i == 0 {
                        p.name.to_string()
                    } else {
                        String::new()
                    };
                    (p.density(), p.steady_state_speedup, name)
                })
                .collect(),
        })
        .collect();
    plot::LineChart {
        title: "Speedup translated at ring 0 against syscall density",
        x_label: "syscalls per 1,000 guest instructions",
        y_label: "speedup (ring 3 cycles / ring 0 cycles, steady state)",
        footer: &provenance.footer(),
        y: plot::YAxis::Ratio,
        curves: &curves,
        marks: &marks,
        band: None,
    }
    .to_svg()
}

/// Every built-in model, for the default curves.
pub fn default_models() -> Result<Vec<Model>, Error> {
    builtin::names().into_iter().map(Model::resolve).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(instructions: f64, ring3: f64, ring0: f64) -> Point {
        Point {
            model: "m".to_string(),
            iters: 0,
            instructions,
            ring3,
            ring0,
        }
    }

    #[test]
    fn iterations_start_at_the_densest_case_and_stop_at_the_most_work() {
        let iters = iterations(4, 1000);
        assert_eq!(iters[..3], [0, 1, 3]);
        assert!(iters.windows(2).all(|w| w[0] < w[1]));
        assert!(work(*iters.last().unwrap()) <= 1000.0);
        assert_eq!(work(0), 1.03125);
        assert_eq!(work(3), 20.0);
    }

    #[test]
    fn break_even_is_exact_for_costs_linear_in_the_work() {
        // Ring 3: 400 a call + 1 an instruction; ring 0: 10 + 1.2 an instruction, so they
        // meet at 1,950 instructions a call, density 1000 / 1950.
        let at = |w: f64| point(w, 400.0 + w, 10.0 + 1.2 * w);
        let points = [at(10.0), at(1000.0), at(10_000.0)];
        let density = break_even(&points, "m").unwrap();
        assert!((density - 1000.0 / 1950.0).abs() < 1e-12, "{density}");
        assert_eq!(break_even(&points[..2], "m"), None);
        assert_eq!(
            break_even_text(&points[..2], "m"),
            "none: translation pays at every density swept"
        );
        let never = [at(10_000.0), at(20_000.0)];
        assert_eq!(
            break_even_text(&never, "m"),
            "none: translation pays at no density swept"
        );
    }
}
