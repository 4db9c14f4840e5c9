//! Sweeps: programs × cost models × modes × seeds from a spec (TOML or JSON), a row per run
//! with every field of its report, in JSON lines or CSV.
//!
//! Runs go `--jobs` at a time, each a `simulate` child. Every finished row is appended to a
//! hidden journal beside the output, so that an interrupted sweep resumes where it stopped
//! (rows already there are not run again); only a complete sweep writes the output, its rows
//! in the spec's order. `--shard I/N` runs the runs whose index is I modulo N, so that a
//! batch system spreads one spec over many machines with no coordinator, and `merge` joins
//! the shards' outputs, checking that every run of the spec is there once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::provenance::Model;
use crate::runner::{Mode, Run, Runner};
use crate::Error;

/// The spec as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    programs: Vec<ProgramSpec>,
    models: Vec<String>,
    #[serde(default = "both_modes")]
    modes: Vec<Mode>,
    #[serde(default = "seed_zero")]
    seeds: Vec<u64>,
    /// Each run stops after about this many guest instructions (status 124 in its row), so
    /// that a program that never ends cannot hold the sweep.
    #[serde(default)]
    max_instructions: Option<u64>,
}

fn both_modes() -> Vec<Mode> {
    vec![Mode::Ring3, Mode::Ring0]
}

fn seed_zero() -> Vec<u64> {
    vec![0]
}

/// A program to run: a name for the rows, its path (in the corpus, or absolute) and its
/// arguments.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    pub name: String,
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
}

/// A run's key: `name|model|mode|seed`.
fn run_id(program: &str, model: &str, mode: Mode, seed: u64) -> String {
    format!("{program}|{model}|{}|{seed}", mode.name())
}

impl SpecFile {
    /// Reads `path` (JSON if it ends in .json, else TOML) and checks that every list has
    /// something and nothing twice, so that every run has a key of its own.
    fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| Error::Setup(format!("{}: {err}", path.display())))?;
        let bad = |message: String| Error::Setup(format!("{}: {message}", path.display()));
        let file: SpecFile = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|err| bad(err.to_string()))?
        } else {
            toml::from_str(&text).map_err(|err| bad(err.message().to_string()))?
        };
        let names: Vec<String> = file.programs.iter().map(|p| p.name.clone()).collect();
        let modes: Vec<String> = file.modes.iter().map(|m| m.name().to_string()).collect();
        let seeds: Vec<String> = file.seeds.iter().map(u64::to_string).collect();
        for (what, list) in [
            ("programs", &names),
            ("models", &file.models),
            ("modes", &modes),
            ("seeds", &seeds),
        ] {
            if list.is_empty() {
                return Err(bad(format!("no {what}")));
            }
            let mut seen = std::collections::BTreeSet::new();
            if let Some(twice) = list.iter().find(|item| !seen.insert(*item)) {
                return Err(bad(format!("{what}: {twice} twice")));
            }
            if let Some(item) = list.iter().find(|item| item.contains('|')) {
                return Err(bad(format!(
                    "{what}: {item}: a '|' (it separates a run's key)"
                )));
            }
        }
        Ok(file)
    }

    /// Every run's key, in the spec's order: programs, then models, modes and seeds.
    fn ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for program in &self.programs {
            for model in &self.models {
                for &mode in &self.modes {
                    for &seed in &self.seeds {
                        ids.push(run_id(&program.name, model, mode, seed));
                    }
                }
            }
        }
        ids
    }
}

/// A spec, checked: every program found, every model resolved.
#[derive(Debug)]
pub struct Spec {
    file: SpecFile,
    models: Vec<Model>,
}

/// One run of the sweep: its place in the spec's order and its key.
#[derive(Clone, Debug)]
pub struct Planned {
    pub index: usize,
    pub id: String,
    pub program: String,
    pub run: Run,
    /// The run's `simulate` command, with the model as the spec names it.
    pub command: String,
    /// The model as the spec names it, for the row (`simulate` is given a file's absolute
    /// path, which its report would name it by).
    pub cost_model: Value,
}

impl Spec {
    /// Reads `path` (see `SpecFile::read`). Model files are relative to the spec's
    /// directory; programs to the corpus, unless absolute.
    pub fn read(path: &Path, corpus: &Path) -> Result<Self, Error> {
        let file = SpecFile::read(path)?;
        for program in &file.programs {
            if !corpus.join(&program.program).is_file() {
                return Err(Error::Setup(format!(
                    "{}: program {} ({}): not found (relative paths are in the corpus, {})",
                    path.display(),
                    program.name,
                    program.program,
                    corpus.display()
                )));
            }
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let models = file
            .models
            .iter()
            .map(|spec| Model::resolve_at(spec, &base.join(spec)))
            .collect::<Result<_, _>>()?;
        Ok(Spec { file, models })
    }

    /// Every run, in the spec's order: programs, then models, then modes, then seeds.
    pub fn plan(&self) -> Vec<Planned> {
        let mut runs = Vec::new();
        for program in &self.file.programs {
            for model in &self.models {
                let cost_model = serde_json::to_value(&model.costs).expect("models serialize");
                for &mode in &self.file.modes {
                    for &seed in &self.file.seeds {
                        let mut run =
                            Run::new(&program.program, program.args.clone(), &model.spec, mode);
                        run.seed = seed;
                        run.max_instructions = self.file.max_instructions;
                        let command = run.command_line();
                        run.model = model.argument.clone();
                        runs.push(Planned {
                            index: runs.len(),
                            id: run_id(&program.name, &model.spec, mode, seed),
                            program: program.name.clone(),
                            run,
                            command,
                            cost_model: cost_model.clone(),
                        });
                    }
                }
            }
        }
        runs
    }
}

/// `I/N`: this machine runs the runs whose index is I modulo N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (index, count) = text.split_once('/').ok_or("expected I/N")?;
        let number = |part: &str| {
            part.parse::<usize>()
                .map_err(|_| format!("{part:?} is not a number"))
        };
        let (index, count) = (number(index)?, number(count)?);
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: I must be 0 to N-1"));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    fn holds(self, run: &Planned) -> bool {
        run.index % self.count == self.index
    }
}

/// How rows are written: by the output's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
}

impl Format {
    pub fn of(path: &Path) -> Result<Self, Error> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl") => Ok(Format::JsonLines),
            Some("csv") => Ok(Format::Csv),
            _ => Err(Error::Setup(format!(
                "{}: the output must end in .jsonl or .csv",
                path.display()
            ))),
        }
    }
}

/// One row: the run's key and place, the ringsim that ran it and the command, and its
/// report's fields, its cost model as the spec names it.
fn row(planned: &Planned, mut report: Value) -> Value {
    let mut row = Map::new();
    row.insert("index".into(), planned.index.into());
    row.insert("id".into(), planned.id.clone().into());
    row.insert("name".into(), planned.program.clone().into());
    row.insert("ringsim".into(), crate::provenance::VERSION.into());
    row.insert("command".into(), planned.command.clone().into());
    report["cost_model"] = planned.cost_model.clone();
    row.insert("report".into(), report);
    Value::Object(row)
}

/// The journal's rows, by id (a later row for an id replaces an earlier one), and whether it
/// ends in a line cut short by an interruption, which is left out.
fn read_journal(path: &Path) -> Result<(BTreeMap<String, Value>, bool), Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok((BTreeMap::new(), false))
        }
        Err(err) => return Err(Error::Setup(format!("{}: {err}", path.display()))),
    };
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let Ok(row) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(id) = row["id"].as_str() {
            rows.insert(id.to_string(), row);
        }
    }
    Ok((rows, !text.is_empty() && !text.ends_with('\n')))
}

/// Whether the journal's `row` is `planned`'s run as this build would make it: the same
/// command, by the same ringsim. A row from an edited spec or another build is run again.
fn is_current(row: &Value, planned: &Planned) -> bool {
    row["command"] == planned.command.as_str() && row["ringsim"] == crate::provenance::VERSION
}

/// A row's fields as dotted names, arrays as their JSON text; an empty field (null, "") is
/// left out, so that a column no row fills is not there, in a whole sweep's CSV as in
/// merged shards'.
fn flatten(prefix: &str, value: &Value, into: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, value, into);
            }
        }
        Value::Null => {}
        Value::String(text) if text.is_empty() => {}
        Value::String(text) => {
            into.insert(prefix.to_string(), text.clone());
        }
        other => {
            into.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// The rows in the spec's order, as the output's format has them.
fn render(rows: &[&Value], format: Format) -> String {
    match format {
        Format::JsonLines => rows.iter().map(|row| format!("{row}\n")).collect(),
        Format::Csv => {
            let flat: Vec<BTreeMap<String, String>> = rows
                .iter()
                .map(|row| {
                    let mut fields = BTreeMap::new();
                    flatten("", row, &mut fields);
                    fields
                })
                .collect();
            // Every field any row has, in name order after the run's own.
            let mut names: Vec<String> = vec!["index".into(), "id".into(), "name".into()];
            let rest: std::collections::BTreeSet<&String> = flat
                .iter()
                .flat_map(|f| f.keys())
                .filter(|k| !names.contains(k))
                .collect();
            names.extend(rest.into_iter().cloned());
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(&names).expect("to memory");
            for fields in &flat {
                let record = names
                    .iter()
                    .map(|n| fields.get(n).map_or("", String::as_str));
                writer.write_record(record).expect("to memory");
            }
            String::from_utf8(writer.into_inner().expect("to memory")).expect("UTF-8")
        }
    }
}

/// The hidden journal beside `output`, which a resumed sweep reads.
fn journal(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    output.with_file_name(format!(".{name}.journal"))
}

/// Writes `text` to `output` whole: to a partial file first, then renamed.
fn write_whole(output: &Path, text: &str) -> Result<(), Error> {
    let name = output
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let partial = output.with_file_name(format!(".{name}.partial.{}", std::process::id()));
    let failed = |source| Error::Output {
        path: output.display().to_string(),
        source,
    };
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::rename(&partial, output))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
        .map_err(failed)
}

/// What the workers of a sweep share: the runs left, the journal and the rows done, or the
/// first failure, after which no run starts.
struct Workers<'a> {
    journal: std::fs::File,
    todo: std::vec::IntoIter<&'a Planned>,
    done: Vec<Value>,
    failure: Option<Error>,
}

impl<'a> Workers<'a> {
    fn next(&mut self) -> Option<&'a Planned> {
        if self.failure.is_some() {
            return None;
        }
        self.todo.next()
    }

    /// Appends `row` to the journal in one write, so that an interrupted sweep keeps it
    /// (or, cut short, loses only it).
    fn record(&mut self, row: Value) -> std::io::Result<()> {
        self.journal.write_all(format!("{row}\n").as_bytes())?;
        self.done.push(row);
        Ok(())
    }
}

/// What a sweep did.
#[derive(Debug, PartialEq, Eq)]
pub struct Done {
    pub ran: usize,
    pub resumed: usize,
}

/// Runs `shard` of `spec` into `output`, `jobs` at a time.
pub fn run(
    runner: &Runner,
    spec: &Spec,
    shard: Shard,
    jobs: usize,
    output: &Path,
) -> Result<Done, Error> {
    let format = Format::of(output)?;
    let journal = journal(output);
    let planned: Vec<Planned> = spec.plan().into_iter().filter(|r| shard.holds(r)).collect();
    let (mut rows, torn) = read_journal(&journal)?;
    rows.retain(|id, row| planned.iter().any(|p| &p.id == id && is_current(row, p)));
    let resumed = rows.len();
    let todo: Vec<&Planned> = planned
        .iter()
        .filter(|p| !rows.contains_key(&p.id))
        .collect();
    let failed = |source| Error::Output {
        path: journal.display().to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&journal)
        .map_err(failed)?;
    if torn {
        // The next row starts on a line of its own.
        file.write_all(b"\n").map_err(failed)?;
    }
    let shared = Mutex::new(Workers {
        journal: file,
        todo: todo.into_iter(),
        done: Vec::new(),
        failure: None,
    });
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    // Taken in a statement of its own: the lock must not be held for the run.
                    let next = shared.lock().expect("no worker panics").next();
                    let Some(planned) = next else { break };
                    let result = runner.report_any(&planned.run).and_then(|report| {
                        shared
                            .lock()
                            .expect("no worker panics")
                            .record(row(planned, report))
                            .map_err(|source| Error::Output {
                                path: journal.display().to_string(),
                                source,
                            })
                    });
                    if let Err(err) = result {
                        shared
                            .lock()
                            .expect("no worker panics")
                            .failure
                            .get_or_insert(err);
                    }
                }
            });
        }
    });
    let workers = shared.into_inner().expect("no worker panics");
    if let Some(err) = workers.failure {
        return Err(err);
    }
    let new_rows = workers.done;
    let ran = new_rows.len();
    for row in new_rows {
        rows.insert(row["id"].as_str().expect("rows have ids").to_string(), row);
    }
    let ordered: Vec<&Value> = planned.iter().map(|p| &rows[&p.id]).collect();
    write_whole(output, &render(&ordered, format))?;
    let _ = std::fs::remove_file(&journal);
    Ok(Done { ran, resumed })
}

/// Reads a complete output's rows back, by id, each as its JSON text: JSON lines as they
/// are; CSV rows as flat objects of their non-empty fields (a shard's CSV has the columns
/// of its own rows only, so an empty field is the same as no field).
fn read_output(path: &Path) -> Result<Vec<(String, String)>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| Error::Setup(format!("{}: {err}", path.display())))?;
    match Format::of(path)? {
        Format::JsonLines => text
            .lines()
            .map(|line| {
                let row: Value = serde_json::from_str(line)
                    .map_err(|err| Error::Setup(format!("{}: {err}", path.display())))?;
                let id = row["id"].as_str().unwrap_or_default().to_string();
                Ok((id, line.to_string()))
            })
            .collect(),
        Format::Csv => {
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let headers = reader
                .headers()
                .map_err(|err| Error::Setup(format!("{}: {err}", path.display())))?
                .clone();
            reader
                .records()
                .map(|record| {
                    let record =
                        record.map_err(|err| Error::Setup(format!("{}: {err}", path.display())))?;
                    let fields: Map<String, Value> = headers
                        .iter()
                        .zip(record.iter())
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(h, v)| (h.to_string(), Value::String(v.to_string())))
                        .collect();
                    let id = fields
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    Ok((id, Value::Object(fields).to_string()))
                })
                .collect()
        }
    }
}

/// Joins shard outputs into `output`, in the order of the spec at `spec` (read for its
/// runs' keys only: no program or model needs to be on this machine); every run of the
/// spec must be in one of them (or the same row in several), and nothing else.
pub fn merge(spec: &Path, shards: &[PathBuf], output: &Path) -> Result<usize, Error> {
    let format = Format::of(output)?;
    let ids = SpecFile::read(spec)?.ids();
    let mut rows: BTreeMap<String, String> = BTreeMap::new();
    for shard in shards {
        if Format::of(shard)? != format {
            return Err(Error::Setup(format!(
                "{}: not the format of {}",
                shard.display(),
                output.display()
            )));
        }
        for (id, line) in read_output(shard)? {
            if !ids.contains(&id) {
                return Err(Error::Setup(format!(
                    "{}: run {id} is not in {}",
                    shard.display(),
                    spec.display()
                )));
            }
            if rows.get(&id).is_some_and(|other| *other != line) {
                return Err(Error::Setup(format!("run {id} differs between two shards")));
            }
            rows.insert(id, line);
        }
    }
    let missing: Vec<&String> = ids.iter().filter(|id| !rows.contains_key(*id)).collect();
    if let Some(first) = missing.first() {
        return Err(Error::Setup(format!(
            "{} of {} runs are in no shard, the first {first}",
            missing.len(),
            ids.len()
        )));
    }
    let values: Vec<Value> = ids
        .iter()
        .map(|id| serde_json::from_str(&rows[id]).expect("read back as JSON"))
        .collect();
    // CSV rows read back are flat, every field a string: rendered again, they get the
    // union of every shard's columns, as the whole sweep's rows would.
    write_whole(output, &render(&values.iter().collect::<Vec<_>>(), format))?;
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_is_an_index_below_its_count() {
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["3/3", "0/0", "1", "a/2", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_spec_with_anything_twice_or_a_bar_in_a_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let program = "[[programs]]\nname = \"x\"\nprogram = \"p\"\n";
        for (text, needle) in [
            (
                format!("models = [\"linux\", \"linux\"]\n{program}"),
                "models: linux twice",
            ),
            (
                format!("models = [\"linux\"]\nseeds = [1, 1]\n{program}"),
                "seeds: 1 twice",
            ),
            (
                "models = [\"linux\"]\n[[programs]]\nname = \"a|b\"\nprogram = \"p\"\n".to_string(),
                "a '|'",
            ),
            (
                "models = []\n[[programs]]\nname = \"x\"\nprogram = \"p\"\n".to_string(),
                "no models",
            ),
        ] {
            let path = dir.path().join("spec.toml");
            std::fs::write(&path, &text).unwrap();
            let err = SpecFile::read(&path).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn csv_rows_leave_out_empty_fields_and_keep_the_runs_columns_first() {
        let row = serde_json::json!({"index": 0, "id": "x|m|ring3|0", "name": "x",
            "report": {"a": null, "b": "", "c": [1, 2], "d": {"e": 3}}});
        let text = render(&[&row], Format::Csv);
        assert_eq!(
            text,
            "index,id,name,report.c,report.d.e\n0,x|m|ring3|0,x,\"[1,2]\",3\n"
        );
    }
}
