//! Writes `uarch/data/<model>.tsv`: what each instruction form found in the given ELF
//! files (and each form the translator emits) costs on a microarchitecture, as LLVM's
//! scheduling model for it says, read through llvm-mca.
//!
//! Run by developers when the inputs or LLVM change, not in CI:
//!
//! ```text
//! cargo run --release -p uarch --bin gen-uarch-tables -- [--out uarch/data] \
//!     [--llvm-mca /usr/bin/llvm-mca] [--copyright /usr/share/doc/llvm-MAJOR/copyright] \
//!     ELF-OR-DIRECTORY...
//! ```
//!
//! It writes the tables of the LLVM release the given llvm-mca belongs to (`RELEASES`):
//! znver3 and skylake-server from LLVM 14 (`/usr/bin/llvm-mca` here), znver4 and
//! sapphirerapids from LLVM 19 (`--llvm-mca /usr/bin/llvm-mca-19`). The licence is read
//! from that release's Debian copyright file unless `--copyright` names another.
//!
//! The committed tables were made from `corpora/build` (the corpus programs and busybox)
//! and this machine's libc, libm, ld.so and libstdc++; the exact command is in each file's
//! header.

mod collect;
mod mca;
mod ring0;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use iced_x86::{Code, Formatter, GasFormatter};
use uarch::Form;

use crate::collect::Forms;

/// A microarchitecture to write a table for.
struct Model {
    /// The table's name (`uarch::by_name`).
    name: &'static str,
    mcpu: &'static str,
    description: &'static str,
    /// The file in LLVM's tree that holds the model.
    scheduling_model: &'static str,
    /// Cycles a mispredicted branch costs: the model's `MispredictPenalty`, which llvm-mca
    /// does not print, copied from `scheduling_model` at the release.
    mispredict_penalty: u32,
    /// Cycles after a load-op instruction starts that it reads its register operands (the
    /// model's `ReadAdvance<ReadAfterLd, ...>`, which llvm-mca does not print either), and
    /// the same for vector operands (`ReadAfterVecXLd`).
    load_read_advance: u32,
    vector_load_read_advance: u32,
    stand_ins: &'static [StandIn],
}

/// A form LLVM cannot price, priced as another instruction that costs the same on this
/// core, for the reason given.
struct StandIn {
    code: Code,
    form: Form,
    priced_as: &'static str,
    why: &'static str,
}

/// The translator's sandbox check (`bndcu bnd0, reg`, ring0.rs), MPX, which LLVM no longer
/// assembles: every model prices it by a stand-in.
const fn sandbox_check(priced_as: &'static str, why: &'static str) -> StandIn {
    StandIn {
        code: Code::Bndcu_bnd_rm64,
        form: Form::Registers,
        priced_as,
        why,
    }
}

/// An LLVM release the tables come from: the models read through its llvm-mca, and the
/// options that llvm-mca needs.
struct Release {
    major: u32,
    /// llvm-mca options besides `mca::arguments`'s.
    mca_options: &'static [&'static str],
    models: &'static [Model],
}

/// A table is written from the release whose llvm-mca is given, so each keeps the LLVM it
/// was made from: a newer one would change the older tables' figures.
const RELEASES: [Release; 2] = [
    Release {
        major: 14,
        mca_options: &[],
        models: &[
            Model {
                name: "znver3",
                mcpu: "znver3",
                description: "AMD Zen 3 (family 19h: EPYC 7003, Ryzen 5000)",
                scheduling_model: "llvm/lib/Target/X86/X86ScheduleZnver3.td",
                mispredict_penalty: 13,
                load_read_advance: 4,
                vector_load_read_advance: 7,
                stand_ins: &[sandbox_check(
                    "nopl %eax",
                    "LLVM 14 no longer assembles MPX. Zen 3 has no MPX: F2 0F 1A is in the \
                     hint-NOP space (0F 19-1F, AMD APM vol. 3), so bndcu costs what a \
                     multi-byte NOP with a register operand costs",
                )],
            },
            Model {
                name: "skylake-server",
                mcpu: "skylake-avx512",
                description: "Intel Skylake server (Skylake-SP/X, Xeon Scalable 1st generation)",
                scheduling_model: "llvm/lib/Target/X86/X86SchedSkylakeServer.td",
                mispredict_penalty: 14,
                load_read_advance: 5,
                vector_load_read_advance: 6,
                stand_ins: &[sandbox_check(
                    "cmpq %rax, %rcx",
                    "LLVM 14 no longer assembles MPX. uops.info measures BNDCU (BND, R64) \
                     on Skylake-X as one uop; it is priced as one simple integer uop (a \
                     register compare: any of ports 0, 1, 5, 6, latency 1). The port \
                     binding is an assumption, not a measurement",
                )],
            },
        ],
    },
    Release {
        major: 19,
        // LLVM 19's llvm-mca stops at a line it cannot assemble unless told to skip it;
        // 14's skipped it and said so.
        mca_options: &["-skip-unsupported-instructions=parse-failure"],
        models: &[
            Model {
                name: "znver4",
                mcpu: "znver4",
                description: "AMD Zen 4 (family 19h: EPYC 9004, Ryzen 7000)",
                scheduling_model: "llvm/lib/Target/X86/X86ScheduleZnver4.td",
                mispredict_penalty: 13,
                load_read_advance: 4,
                vector_load_read_advance: 7,
                stand_ins: &[sandbox_check(
                    "nopl %eax",
                    "LLVM 19 does not assemble MPX. Zen 4 has no MPX: F2 0F 1A is in the \
                     hint-NOP space (0F 19-1F, AMD APM vol. 3), so bndcu costs what a \
                     multi-byte NOP with a register operand costs",
                )],
            },
            Model {
                name: "sapphirerapids",
                mcpu: "sapphirerapids",
                description: "Intel Sapphire Rapids (Golden Cove server cores: Xeon Scalable \
                              4th generation)",
                scheduling_model: "llvm/lib/Target/X86/X86SchedSapphireRapids.td",
                mispredict_penalty: 14,
                load_read_advance: 5,
                vector_load_read_advance: 6,
                stand_ins: &[sandbox_check(
                    "nopl %eax",
                    "LLVM 19 does not assemble MPX. Sapphire Rapids has no MPX (Intel \
                     dropped it from Ice Lake on: CPUID.(EAX=07H,ECX=0):EBX[14] is 0), \
                     and without MPX its encodings, F2 0F 1A among them, run as NOPs, \
                     which is why MPX code runs on such cores (Intel SDM vol. 1, ch. 17). \
                     So bndcu costs what a multi-byte NOP with a register operand costs: \
                     nothing, as LLVM's model gives a NOP no uop",
                )],
            },
        ],
    },
];

struct Arguments {
    out: PathBuf,
    llvm_mca: PathBuf,
    /// None: the release's own, `/usr/share/doc/llvm-MAJOR/copyright`.
    copyright: Option<PathBuf>,
    inputs: Vec<PathBuf>,
    /// The command line, for the files' headers.
    command: String,
}

fn arguments() -> Result<Arguments> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let mut parsed = Arguments {
        out: PathBuf::from("uarch/data"),
        llvm_mca: PathBuf::from("/usr/bin/llvm-mca"),
        copyright: None,
        inputs: Vec::new(),
        command: format!(
            "cargo run --release -p uarch --bin gen-uarch-tables -- {}",
            raw.join(" ")
        ),
    };
    let mut raw = raw.into_iter();
    while let Some(argument) = raw.next() {
        let mut value = |flag: &str| {
            raw.next()
                .map(PathBuf::from)
                .with_context(|| format!("{flag} needs a value"))
        };
        match argument.as_str() {
            "--out" => parsed.out = value("--out")?,
            "--llvm-mca" => parsed.llvm_mca = value("--llvm-mca")?,
            "--copyright" => parsed.copyright = Some(value("--copyright")?),
            flag if flag.starts_with("--") => bail!("unknown option {flag}"),
            _ => parsed.inputs.push(PathBuf::from(argument)),
        }
    }
    anyhow::ensure!(!parsed.inputs.is_empty(), "no ELF files given");
    Ok(parsed)
}

fn main() -> Result<()> {
    let arguments = arguments()?;
    let mut forms = Forms::default();
    for instruction in ring0::forms() {
        forms.add(instruction);
    }
    for input in elf_files(&arguments.inputs)? {
        let decoded = forms.add_elf(&input)?;
        eprintln!("{}: {decoded} instructions", input.display());
    }
    eprintln!("{} instruction forms", forms.len());
    let mut formatter = GasFormatter::new();
    let lines: Vec<String> = forms
        .iter()
        .map(|(_, _, instruction)| {
            let mut line = String::new();
            formatter.format(instruction, &mut line);
            line
        })
        .collect();
    let version = llvm_version(&arguments.llvm_mca)?;
    let major = major_version(&version)?;
    let release = RELEASES
        .iter()
        .find(|release| release.major == major)
        .with_context(|| {
            let known: Vec<u32> = RELEASES.iter().map(|release| release.major).collect();
            format!("no table comes from LLVM {major} ({version}); RELEASES has {known:?}")
        })?;
    let copyright = arguments
        .copyright
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/usr/share/doc/llvm-{major}/copyright")));
    let licence = Licence::read(&copyright)?;
    let llvm_mca = mca::LlvmMca {
        path: &arguments.llvm_mca,
        options: release.mca_options,
    };
    for model in release.models {
        let mut to_price = lines.clone();
        to_price.extend(model.stand_ins.iter().map(|s| s.priced_as.to_string()));
        let pricing = llvm_mca.price(model.mcpu, &to_price)?;
        let table = Table {
            model,
            major,
            llvm_mca: &llvm_mca,
            forms: &forms,
            lines: &lines,
            pricing: &pricing,
            licence: &licence,
            version: &version,
            command: &arguments.command,
        };
        let path = arguments.out.join(format!("{}.tsv", model.name));
        std::fs::write(&path, table.render()?)
            .with_context(|| format!("writing {}", path.display()))?;
        let failed = pricing.results.iter().filter(|r| r.is_err()).count();
        eprintln!(
            "{}: {} priced, {failed} not",
            path.display(),
            pricing.results.len() - failed
        );
    }
    Ok(())
}

/// The ELF files among `inputs` and, for a directory, among the files under it, sorted
/// (representatives are the first met, so the order is part of the output).
fn elf_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("listing {}", input.display()))?
                .map(|entry| entry.map(|entry| entry.path()))
                .collect::<std::io::Result<_>>()?;
            entries.sort();
            files.extend(elf_files(&entries)?);
        } else if is_elf(input)? {
            files.push(input.clone());
        }
    }
    Ok(files)
}

fn is_elf(path: &Path) -> Result<bool> {
    let mut magic = [0; 4];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(std::io::Read::read_exact(&mut file, &mut magic).is_ok() && magic == *b"\x7fELF")
}

/// The licence of LLVM's sources, as the Debian package's copyright file states it.
struct Licence {
    spdx: &'static str,
    /// Its `Files: *` stanza, verbatim.
    stanza: Vec<String>,
    path: PathBuf,
}

impl Licence {
    fn read(path: &Path) -> Result<Licence> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut stanza: Vec<String> = text
            .lines()
            .skip_while(|line| *line != "Files: *")
            .enumerate()
            .take_while(|(index, line)| *index == 0 || !line.starts_with("Files:"))
            .map(|(_, line)| line.to_string())
            .collect();
        while stanza.last().is_some_and(|line| line.trim().is_empty()) {
            stanza.pop();
        }
        // Another licence means a person reads it before the tables ship.
        anyhow::ensure!(
            stanza
                .iter()
                .any(|line| line == "License: APACHE-2-LLVM-EXCEPTIONS"),
            "{}: the Files: * stanza is not APACHE-2-LLVM-EXCEPTIONS",
            path.display()
        );
        Ok(Licence {
            spdx: "Apache-2.0 WITH LLVM-exception",
            stanza,
            path: path.to_path_buf(),
        })
    }
}

/// llvm-mca's `--version` line that names LLVM's version.
fn llvm_version(llvm_mca: &Path) -> Result<String> {
    let output = Command::new(llvm_mca).arg("--version").output()?;
    String::from_utf8(output.stdout)?
        .lines()
        .map(str::trim)
        .find(|line| line.contains("LLVM version"))
        .map(str::to_string)
        .context("llvm-mca --version names no LLVM version")
}

/// The major number of an LLVM version line (`Debian LLVM version 19.1.7`: 19).
fn major_version(version: &str) -> Result<u32> {
    let (_, number) = version
        .split_once("LLVM version ")
        .with_context(|| format!("{version:?} names no LLVM version"))?;
    let major = number.split('.').next().unwrap_or_default();
    major
        .parse()
        .with_context(|| format!("{version:?}: {major:?} is not a major version"))
}

/// One microarchitecture's data file.
struct Table<'a> {
    model: &'a Model,
    /// The LLVM release the model is from.
    major: u32,
    llvm_mca: &'a mca::LlvmMca<'a>,
    forms: &'a Forms,
    /// The representatives as given to llvm-mca, in `forms` order.
    lines: &'a [String],
    /// llvm-mca's results for `lines`, then for the stand-ins.
    pricing: &'a mca::Pricing,
    licence: &'a Licence,
    version: &'a str,
    command: &'a str,
}

impl Table<'_> {
    fn render(&self) -> Result<String> {
        let Table { model, pricing, .. } = self;
        let mut out = String::new();
        writeln!(out, "# ringsim instruction costs: {}", model.name)?;
        writeln!(
            out,
            "# Generated; do not edit: regenerate with the command below."
        )?;
        writeln!(out, "# name: {}", model.name)?;
        writeln!(out, "# description: {}", model.description)?;
        writeln!(
            out,
            "# source: LLVM {}'s scheduling model for -mcpu={} ({}), read through llvm-mca ({})",
            self.major, model.mcpu, model.scheduling_model, self.version
        )?;
        writeln!(out, "# licence: {}", self.licence.spdx)?;
        writeln!(
            out,
            "# licence-text: {}, its \"Files: *\" stanza (lines starting #|):",
            self.licence.path.display()
        )?;
        for line in &self.licence.stanza {
            writeln!(out, "#| {line}")?;
        }
        writeln!(out, "# generated-by: {}", self.command)?;
        writeln!(
            out,
            "# llvm-mca: llvm-mca {} < one code region per instruction",
            self.llvm_mca.arguments(model.mcpu).join(" ")
        )?;
        writeln!(out, "# dispatch-width: {}", pricing.dispatch_width)?;
        writeln!(
            out,
            "# mispredict-penalty: {} (MispredictPenalty in {}: llvm-mca does not print it)",
            model.mispredict_penalty, model.scheduling_model
        )?;
        writeln!(
            out,
            "# load-read-advance: {} (ReadAdvance<ReadAfterLd, ...> in {}: a load-op instruction reads its \
             register operands that many cycles after it starts, once its load is under way)",
            model.load_read_advance, model.scheduling_model
        )?;
        writeln!(
            out,
            "# vector-load-read-advance: {} (ReadAdvance<ReadAfterVecXLd, ...> in {}: the same for vector \
             register operands)",
            model.vector_load_read_advance, model.scheduling_model
        )?;
        writeln!(out, "# ports: {}", pricing.ports.join(" "))?;
        for stand_in in model.stand_ins {
            writeln!(
                out,
                "# stand-in: {:?} {} is priced as `{}`: {}",
                stand_in.code,
                stand_in.form.name(),
                stand_in.priced_as,
                stand_in.why
            )?;
        }
        writeln!(
            out,
            "# Rows: iced Code, form (uarch::Form), uops, latency (cycles), reciprocal \
             throughput (cycles), cycles per execution on each port used, the instruction \
             as llvm-mca read it."
        )?;
        let (representatives, stand_ins) = pricing.results.split_at(self.lines.len());
        let mut rows: Vec<(String, Form, &mca::Priced, String)> = Vec::new();
        let mut refused = Vec::new();
        for ((name, form, _), (line, result)) in self
            .forms
            .iter()
            .zip(self.lines.iter().zip(representatives))
        {
            let stood_in = model
                .stand_ins
                .iter()
                .any(|s| (format!("{:?}", s.code).as_str(), s.form) == (name, form));
            match result {
                Err(_) if stood_in => {}
                Ok(priced) => rows.push((name.to_string(), form, priced, priced.echo.clone())),
                Err(complaint) => {
                    refused.push(format!("{name} {} `{line}`: {complaint}", form.name()))
                }
            }
        }
        for (stand_in, result) in model.stand_ins.iter().zip(stand_ins) {
            let priced = result.as_ref().map_err(|complaint| {
                anyhow::anyhow!("stand-in {}: {complaint}", stand_in.priced_as)
            })?;
            let name = format!("{:?}", stand_in.code);
            rows.retain(|(code, form, _, _)| (code, *form) != (&name, stand_in.form));
            let example = format!("(stand-in) {}", priced.echo);
            rows.push((name, stand_in.form, priced, example));
        }
        rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        for (name, form, priced, example) in &rows {
            let ports: Vec<String> = priced
                .pressure
                .iter()
                .map(|(port, cycles)| format!("{}:{cycles}", pricing.ports[*port]))
                .collect();
            writeln!(
                out,
                "{name}\t{}\t{}\t{}\t{}\t{}\t{example}",
                form.name(),
                priced.uops,
                priced.latency,
                priced.rthroughput,
                if ports.is_empty() {
                    "-".to_string()
                } else {
                    ports.join(",")
                },
            )?;
        }
        writeln!(
            out,
            "# Not priced: llvm-mca refused these for -mcpu={}.",
            model.mcpu
        )?;
        for line in refused {
            writeln!(out, "# not-priced: {line}")?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_is_read_from_the_version_line() {
        assert_eq!(major_version("Debian LLVM version 19.1.7").ok(), Some(19));
        assert_eq!(major_version("LLVM version 14.0.6").ok(), Some(14));
        assert!(major_version("Ubuntu clang version 19.1.7").is_err());
    }

    #[test]
    fn each_table_comes_from_one_release() {
        let mut names: Vec<&str> = RELEASES
            .iter()
            .flat_map(|release| release.models.iter().map(|model| model.name))
            .collect();
        let listed = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), listed, "{names:?}");
    }
}
