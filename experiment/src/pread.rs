//! Userspace Bypass's pread microbenchmark (Zhou et al., "Userspace Bypass: Accelerating
//! Syscall-intensive Applications", OSDI 2023): preads of one block size in a loop from a
//! cached file, block sizes 64 B to 64 KiB. The throughput gain translated at ring 0 over
//! ring 3 is ring 3's cycles over ring 0's, less one: for the whole run (start-up and the
//! one-time translation included) and in the steady state (the difference of a run of N and
//! one of 2N preads, in which they cancel), next to the paper's band.

use crate::plot::{self, Band, Curve};
use crate::provenance::{Model, Provenance};
use crate::runner::{field, per_unit, Mode, Run, Runner};
use crate::Error;

/// The paper's gain for pread of 1 KiB in a loop in a KVM guest with KPTI on, percent: the
/// band its measurements span.
pub const PAPER_BAND: (f64, f64) = (30.3, 88.3);
/// The block size the band was measured at.
pub const PAPER_BLOCK: u64 = 1024;

/// The cached file every pread reads, 256 KiB, in the staged corpus.
const FILE: &str = "inputs/data.bin";

/// Block sizes: powers of two from 64 B to 64 KiB.
pub fn default_sizes() -> Vec<u64> {
    (6..=16).map(|bits| 1u64 << bits).collect()
}

/// The model for Userspace Bypass's setting, shipped in the repository, and `host` beside it.
pub fn default_models() -> Result<Vec<Model>, Error> {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../cost-models/kvm-kpti.toml");
    Ok(vec![
        Model::resolve("host")?,
        Model::resolve_at("cost-models/kvm-kpti.toml", std::path::Path::new(shipped))?,
    ])
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub models: Vec<Model>,
    pub sizes: Vec<u64>,
    /// Preads in the whole run; the steady state also runs twice as many.
    pub preads: u64,
}

impl Settings {
    pub fn command(&self) -> String {
        let models: Vec<&str> = self.models.iter().map(|m| m.spec.as_str()).collect();
        let sizes: Vec<String> = self.sizes.iter().map(u64::to_string).collect();
        format!(
            "experiment pread --models {} --sizes {} --preads {}",
            models.join(","),
            sizes.join(","),
            self.preads
        )
    }

    pub fn provenance(&self) -> Provenance {
        Provenance::of(self.command(), &self.models)
    }
}

/// One block size under one model.
#[derive(Clone, Debug)]
pub struct Point {
    pub model: String,
    pub size: u64,
    /// The whole run of `preads` preads.
    pub guest_instructions: f64,
    pub syscalls: f64,
    pub whole_ring3: f64,
    pub whole_ring0: f64,
    /// Per pread in the steady state.
    pub steady_ring3: f64,
    pub steady_ring0: f64,
}

impl Point {
    /// Throughput gain, percent.
    pub fn whole_gain(&self) -> f64 {
        (self.whole_ring3 / self.whole_ring0 - 1.0) * 100.0
    }

    pub fn steady_gain(&self) -> f64 {
        (self.steady_ring3 / self.steady_ring0 - 1.0) * 100.0
    }
}

pub fn measure(runner: &Runner, model: &Model, size: u64, preads: u64) -> Result<Point, Error> {
    let [whole, double] = [preads, 2 * preads].map(|n| {
        let args = vec![n.to_string(), FILE.to_string(), size.to_string()];
        runner.report(&Run::new("pread_loop", args, &model.argument, Mode::Ring0))
    });
    let (whole, double) = (whole?, double?);
    let d = |path: &[&str]| per_unit(&whole, &double, preads as f64, path);
    Ok(Point {
        model: model.spec.clone(),
        size,
        guest_instructions: field(&whole, &["guest_instructions"])?,
        syscalls: field(&whole, &["syscalls", "total"])?,
        whole_ring3: field(&whole, &["ring3", "cycles"])?,
        whole_ring0: field(&whole, &["ring0", "cycles"])?,
        steady_ring3: d(&["ring3", "cycles"])?,
        steady_ring0: d(&["ring0", "cycles"])?,
    })
}

pub fn measure_all(runner: &Runner, settings: &Settings) -> Result<Vec<Point>, Error> {
    let mut points = Vec::new();
    for model in &settings.models {
        for &size in &settings.sizes {
            points.push(measure(runner, model, size, settings.preads)?);
        }
    }
    Ok(points)
}

pub fn to_csv(points: &[Point]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            "model",
            "block_bytes",
            "guest_instructions",
            "syscalls",
            "ring3_cycles",
            "ring0_cycles",
            "whole_run_gain_percent",
            "steady_ring3_cycles_per_pread",
            "steady_ring0_cycles_per_pread",
            "steady_state_gain_percent",
        ])
        .expect("to memory");
    for p in points {
        writer
            .write_record([
                p.model.clone(),
                p.size.to_string(),
                format!("{:.0}", p.guest_instructions),
                format!("{:.0}", p.syscalls),
                format!("{:.0}", p.whole_ring3),
                format!("{:.0}", p.whole_ring0),
                format!("{:.2}", p.whole_gain()),
                format!("{:.1}", p.steady_ring3),
                format!("{:.1}", p.steady_ring0),
                format!("{:.2}", p.steady_gain()),
            ])
            .expect("to memory");
    }
    String::from_utf8(writer.into_inner().expect("to memory")).expect("ASCII")
}

fn bytes(size: u64) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

pub fn to_markdown(points: &[Point], settings: &Settings, provenance: &Provenance) -> String {
    let (low, high) = PAPER_BAND;
    let mut text = format!(
        "# Userspace Bypass's pread, simulated\n\n\
         Throughput gain of `pread_loop N {FILE} SIZE` ({} preads of one block size at \
         offset 0 of a cached 256 KiB file) translated at ring 0 over ring 3: ring 3's \
         cycles over ring 0's, less one. The whole run counts start-up and the one-time \
         translation; the steady state is the difference of runs of N and 2N preads. \
         Userspace Bypass (OSDI 2023) measured +{low} % to +{high} % for {} blocks in KVM \
         guests with KPTI on.\n\n\
         | model | block | syscalls per 1,000 instructions | whole run | steady state | the paper |\n\
         |---|---:|---:|---:|---:|---|\n",
        settings.preads,
        bytes(PAPER_BLOCK)
    );
    for p in points {
        let verdict = |gain: f64| {
            if (low..=high).contains(&gain) {
                "within"
            } else if gain < low {
                "below"
            } else {
                "above"
            }
        };
        let paper = if p.size == PAPER_BLOCK {
            format!(
                "+{low}–{high} %: whole run {}, steady state {}",
                verdict(p.whole_gain()),
                verdict(p.steady_gain())
            )
        } else {
            String::new()
        };
        text += &format!(
            "| {} | {} | {:.2} | {:+.1} % | {:+.1} % | {paper} |\n",
            p.model,
            bytes(p.size),
            1000.0 * p.syscalls / p.guest_instructions,
            p.whole_gain(),
            p.steady_gain()
        );
    }
    text += "\nWhere ringsim and the paper differ, and why: the gain falls with the block \
             size because the copy's kernel work grows with it while the crossing saved \
             stays one per call; the paper translates only the hot path between syscalls \
             and pays its own entry checks, where whole-program translation pays the \
             sandbox's checks on every memory access and translates everything once \
             (the whole-run column); and the crossing's price is the model's, so the gain \
             follows what the model says a crossing costs with KPTI (see its sources \
             below).\n\n";
    text + &provenance.to_markdown()
}

pub fn to_svg(points: &[Point], settings: &Settings, provenance: &Provenance) -> String {
    let mut curves = Vec::new();
    for model in &settings.models {
        let name = &model.costs.name;
        let of = |gain: fn(&Point) -> f64| -> Vec<(f64, f64)> {
            points
                .iter()
                .filter(|p| &p.model == name)
                .map(|p| (p.size as f64, gain(p)))
                .collect()
        };
        curves.push(Curve {
            name: format!("{name}, steady state"),
            points: of(Point::steady_gain),
        });
        curves.push(Curve {
            name: format!("{name}, whole run"),
            points: of(Point::whole_gain),
        });
    }
    let band = Band {
        x: PAPER_BLOCK as f64,
        low: PAPER_BAND.0,
        high: PAPER_BAND.1,
        label: format!(
            "Userspace Bypass, {} pread: +{}–{} %",
            bytes(PAPER_BLOCK),
            PAPER_BAND.0,
            PAPER_BAND.1
        ),
    };
    plot::LineChart {
        title: "pread throughput gain translated at ring 0, by block size",
        x_label: "block size (bytes)",
        y_label: "throughput gain (%)",
        footer: &provenance.footer(),
        y: plot::YAxis::Percent,
        curves: &curves,
        marks: &[],
        band: Some(&band),
    }
    .to_svg()
}
