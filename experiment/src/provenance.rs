//! What an experiment's output came from: ringsim's version, the command, and the cost
//! models with the source of every figure used. Machine-independent: the same inputs give
//! the same text on any machine.

use sim::costs::{builtin, calibrated, CostModel};

use crate::Error;

/// The version this build records: `git describe` of its checkout (see build.rs).
pub const VERSION: &str = env!("RINGSIM_VERSION");

#[derive(Debug)]
pub struct Provenance {
    /// The experiment's command, canonical: its options as parsed, not as typed, and without
    /// where the outputs go (which does not change them).
    pub command: String,
    pub models: Vec<CostModel>,
}

impl Provenance {
    /// For `models`, each a built-in name or a TOML file (see [`Model`]).
    pub fn of(command: String, models: &[Model]) -> Self {
        let models = models.iter().map(|m| m.costs.clone()).collect();
        Provenance { command, models }
    }

    /// A Markdown section: version, command, and each model's figures with their sources.
    pub fn to_markdown(&self) -> String {
        let mut text = format!(
            "## Provenance\n\n- ringsim {VERSION}\n- command: `{}`\n- every figure above is \
             computed from `simulate`'s JSON reports, whose counts (guest instructions, \
             syscalls, switches, bytes) do not depend on the machine that ran them\n\n\
             | model | figure | value | source |\n|---|---|---:|---|\n",
            self.command
        );
        for model in &self.models {
            text += &format!(
                "| {} | instructions priced by | {} | {} |\n",
                model.name,
                model.instruction_costs.name(),
                model.basis.replace('|', "\\|")
            );
            for (figure, cost) in model.fields() {
                text += &format!(
                    "| {} | {figure} | {} | {} |\n",
                    model.name,
                    // To a tenth: a calibration's figures carry every digit of a median.
                    (cost.value * 10.0).round() / 10.0,
                    cost.source.replace('|', "\\|")
                );
            }
        }
        text
    }

    /// One line for a plot's footer.
    pub fn footer(&self) -> String {
        format!("ringsim {VERSION} · {}", self.command)
    }
}

/// A cost model as an experiment names it: a built-in name or a TOML file.
#[derive(Clone, Debug)]
pub struct Model {
    /// As given: what the experiment's command and outputs show.
    pub spec: String,
    /// What `simulate` is given: the name, or the file's absolute path (runs start in the
    /// corpus's directory).
    pub argument: String,
    pub costs: CostModel,
}

impl Model {
    pub fn resolve(spec: &str) -> Result<Self, Error> {
        if spec == sim::costs::CALIBRATED {
            // This machine's cached calibration, which simulate is then given by its path.
            let cache = calibrated::cache_path()
                .filter(|path| path.is_file())
                .ok_or_else(|| {
                    Error::Setup(
                        "calibrated: this machine is not calibrated yet: run simulate --calibrate"
                            .to_string(),
                    )
                })?;
            return Model::resolve_at(spec, &cache);
        }
        Model::resolve_at(spec, std::path::Path::new(spec))
    }

    /// `spec`, read from `path` when it is a file (a default shipped with ringsim is shown
    /// by its place in the repository, read from the checkout).
    pub fn resolve_at(spec: &str, path: &std::path::Path) -> Result<Self, Error> {
        let is_file = spec == sim::costs::CALIBRATED
            || builtin::by_name(spec).is_none() && (spec.ends_with(".toml") || spec.contains('/'));
        if !is_file {
            let costs = sim::costs::resolve(spec).map_err(|err| Error::Setup(err.to_string()))?;
            return Ok(Model {
                spec: spec.to_string(),
                argument: spec.to_string(),
                costs,
            });
        }
        let cannot = |err: std::io::Error| Error::Setup(format!("cost model {spec}: {err}"));
        let argument = std::fs::canonicalize(path)
            .map_err(cannot)?
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).map_err(cannot)?;
        // Parsed under the name it was given, not its place on this machine: a figure with
        // no source of its own names the file, and the outputs must not depend on where the
        // checkout is.
        let costs =
            sim::costs::parse_toml(&text, spec).map_err(|err| Error::Setup(err.to_string()))?;
        Ok(Model {
            spec: spec.to_string(),
            argument,
            costs,
        })
    }
}
