//! Running llvm-mca and reading its views: each instruction in a code region of its own,
//! repeated, so that a resource group's use is spread over its units as the model's
//! scheduler spreads it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Iterations of each region: a multiple of 2, 3, 4, 5 and 6, so that a use spread
/// round-robin over a group of that many units comes out even.
pub const ITERATIONS: u32 = 120;
/// Regions per llvm-mca run.
const BATCH: usize = 200;
/// How long a run may take. A batch takes about 0.1 s here; LLVM 19's llvm-mca never
/// finishes some instructions on some models (rdmsr and xsave on sapphirerapids).
const TIME_LIMIT: Duration = Duration::from_secs(20);
/// Lines of input per region: its opening marker, the instruction, its closing marker.
const LINES_PER_REGION: usize = 3;

/// What the model says of one instruction.
#[derive(Clone, Debug, PartialEq)]
pub struct Priced {
    pub uops: u32,
    pub latency: u32,
    pub rthroughput: f64,
    /// (index into `Pricing::ports`, cycles per execution), in port order, nonzero only.
    pub pressure: Vec<(usize, f64)>,
    /// The instruction as llvm-mca printed it back.
    pub echo: String,
}

/// llvm-mca's verdict on each line given to `price`, and the model's machine.
pub struct Pricing {
    pub dispatch_width: u32,
    /// Resource units, named as llvm-mca names them; a resource with several units
    /// gets `.0`, `.1`… as llvm-mca numbers them.
    pub ports: Vec<String>,
    /// Per line: its pricing, or llvm-mca's complaint.
    pub results: Vec<Result<Priced, String>>,
}

/// An llvm-mca to run, and the options its release needs.
pub struct LlvmMca<'a> {
    pub path: &'a Path,
    pub options: &'a [&'a str],
}

impl LlvmMca<'_> {
    /// The arguments every run gets, besides the input.
    pub fn arguments(&self, mcpu: &str) -> Vec<String> {
        let mut arguments = vec![
            format!("-mcpu={mcpu}"),
            format!("-iterations={ITERATIONS}"),
            "-instruction-info".into(),
            "-resource-pressure".into(),
        ];
        arguments.extend(self.options.iter().map(|option| option.to_string()));
        arguments
    }

    /// Prices each of `lines` (AT&T assembly, one instruction each) on `mcpu`, in
    /// batches. llvm-mca skips a line it cannot assemble and says which; it stops at the
    /// first instruction the model cannot schedule, and the rest of the batch runs again
    /// after it. A batch it does not finish runs again a line at a time, and a line it
    /// does not finish alone is refused.
    pub fn price(&self, mcpu: &str, lines: &[String]) -> Result<Pricing> {
        let mut verdicts = Verdicts {
            machine: None,
            results: vec![None; lines.len()],
        };
        let all: Vec<usize> = (0..lines.len()).collect();
        for batch in all.chunks(BATCH) {
            if self.price_batch(mcpu, lines, batch, &mut verdicts)? {
                continue;
            }
            for &line in batch {
                if !self.price_batch(mcpu, lines, &[line], &mut verdicts)? {
                    verdicts.results[line] = Some(Err(format!(
                        "llvm-mca did not finish within {} s",
                        TIME_LIMIT.as_secs()
                    )));
                }
            }
        }
        let Some((dispatch_width, ports)) = verdicts.machine else {
            bail!("llvm-mca priced nothing for -mcpu={mcpu}");
        };
        Ok(Pricing {
            dispatch_width,
            ports,
            results: verdicts
                .results
                .into_iter()
                .map(|result| result.expect("every line decided"))
                .collect(),
        })
    }

    /// Decides the lines of `batch` (indexes into `lines`). False if a run did not finish
    /// in time; what the runs before it decided stands.
    fn price_batch(
        &self,
        mcpu: &str,
        lines: &[String],
        batch: &[usize],
        verdicts: &mut Verdicts,
    ) -> Result<bool> {
        let mut todo = batch.to_vec();
        while !todo.is_empty() {
            let input: Vec<&str> = todo.iter().map(|&line| lines[line].as_str()).collect();
            let Some(run) = run(self, mcpu, &input)? else {
                return Ok(false);
            };
            if let Some(report) = &run.report {
                report.check_machine(&mut verdicts.machine)?;
            }
            for (&line, verdict) in todo.iter().zip(run.verdicts()) {
                verdicts.results[line] = verdict;
            }
            let undecided: Vec<usize> = todo
                .iter()
                .copied()
                .filter(|&line| verdicts.results[line].is_none())
                .collect();
            let Some(complaint) = run.aborted else {
                anyhow::ensure!(
                    undecided.is_empty(),
                    "llvm-mca neither priced nor refused {:?}",
                    undecided.iter().map(|&l| &lines[l]).collect::<Vec<_>>()
                );
                break;
            };
            // Every line refused: it fails for having nothing to analyse.
            if undecided.is_empty() && !run.refused.is_empty() {
                break;
            }
            // The first instruction it did not reach is the one it stopped at.
            let (&stopped_at, rest) = undecided
                .split_first()
                .with_context(|| format!("llvm-mca failed with nothing left: {complaint}"))?;
            verdicts.results[stopped_at] = Some(Err(complaint));
            todo = rest.to_vec();
        }
        Ok(true)
    }
}

/// What the runs of one model have decided so far.
struct Verdicts {
    /// (dispatch width, resource units), once a run has described them.
    machine: Option<(u32, Vec<String>)>,
    /// Per line, once decided.
    results: Vec<Option<Result<Priced, String>>>,
}

/// One run's views.
struct Report {
    dispatch_width: u32,
    ports: Vec<String>,
    /// By region number.
    priced: BTreeMap<usize, Priced>,
}

impl Report {
    /// Every run of one model must describe the same machine.
    fn check_machine(&self, machine: &mut Option<(u32, Vec<String>)>) -> Result<()> {
        let this = (self.dispatch_width, self.ports.clone());
        match machine {
            Some(known) if *known != this => bail!("llvm-mca described two different machines"),
            Some(_) => Ok(()),
            None => {
                *machine = Some(this);
                Ok(())
            }
        }
    }
}

/// What one llvm-mca run made of its regions.
struct Run {
    /// Absent when llvm-mca analysed nothing.
    report: Option<Report>,
    /// Regions it could not assemble, with its complaint.
    refused: BTreeMap<usize, String>,
    /// Why it stopped early, if it did.
    aborted: Option<String>,
    regions: usize,
}

impl Run {
    /// Per region: priced, refused, or not reached (None).
    fn verdicts(&self) -> impl Iterator<Item = Option<Result<Priced, String>>> + '_ {
        (0..self.regions).map(|region| {
            if let Some(complaint) = self.refused.get(&region) {
                return Some(Err(complaint.clone()));
            }
            let priced = self.report.as_ref()?.priced.get(&region)?;
            Some(Ok(priced.clone()))
        })
    }
}

/// Runs llvm-mca on `lines`, one region each. None if it did not finish within
/// `TIME_LIMIT` (it is killed).
fn run(llvm_mca: &LlvmMca, mcpu: &str, lines: &[&str]) -> Result<Option<Run>> {
    let mut input = String::new();
    for (index, line) in lines.iter().enumerate() {
        input += &format!("# LLVM-MCA-BEGIN r{index}\n{line}\n# LLVM-MCA-END\n");
    }
    let mut child = Command::new(llvm_mca.path)
        .args(llvm_mca.arguments(mcpu))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", llvm_mca.path.display()))?;
    let stdout = drain(child.stdout.take().expect("stdout is piped"));
    let stderr = drain(child.stderr.take().expect("stderr is piped"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())?;
    let deadline = Instant::now() + TIME_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            child.kill()?;
            child.wait()?;
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (joined(stdout)?, joined(stderr)?);
    let Some(status) = status else {
        return Ok(None);
    };
    read(
        &String::from_utf8(stdout)?,
        &String::from_utf8_lossy(&stderr),
        status.success(),
        lines.len(),
    )
    .map(Some)
    .with_context(|| format!("reading llvm-mca's output for {lines:?}"))
}

/// Reads `pipe` to its end on a thread of its own, so that the child never waits on a
/// full pipe.
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<std::io::Result<Vec<u8>>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).map(|_| bytes)
    })
}

fn joined(reader: thread::JoinHandle<std::io::Result<Vec<u8>>>) -> Result<Vec<u8>> {
    let bytes = reader
        .join()
        .map_err(|_| anyhow::anyhow!("a pipe reader panicked"))??;
    Ok(bytes)
}

/// Reads what llvm-mca made of `regions` regions from its output.
fn read(stdout: &str, stderr: &str, success: bool, regions: usize) -> Result<Run> {
    // `<stdin>:LINE:COLUMN: error: WHAT`, LINE counted from 1.
    let mut refused = BTreeMap::new();
    for line in stderr.lines() {
        let Some(located) = line.strip_prefix("<stdin>:") else {
            continue;
        };
        let mut parts = located.splitn(3, ':');
        let (Some(number), Some(_), Some(what)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let number: usize = number.parse()?;
        refused.insert((number - 1) / LINES_PER_REGION, what.trim().to_string());
    }
    let aborted = (!success).then(|| {
        stderr
            .lines()
            .filter(|line| line.starts_with("error:") || line.starts_with("note: instruction"))
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(" / ")
    });
    let report = if stdout.contains("Code Region") {
        Some(parse(stdout)?)
    } else {
        None
    };
    Ok(Run {
        report,
        refused,
        aborted,
        regions,
    })
}

/// Reads the summary, instruction info, resources and per-instruction resource pressure
/// of every region.
fn parse(output: &str) -> Result<Report> {
    let mut dispatch_width = None;
    let mut ports: Option<Vec<String>> = None;
    let mut priced = BTreeMap::new();
    let mut region = None;
    let mut info: Option<(u32, u32, f64, String)> = None;
    let mut lines = output.lines();
    while let Some(line) = lines.next() {
        if let Some((_, name)) = line.split_once("] Code Region - r") {
            region = Some(name.parse::<usize>()?);
        } else if let Some(width) = line.strip_prefix("Dispatch Width:") {
            dispatch_width = Some(width.trim().parse()?);
        } else if line.starts_with("[1]") && line.ends_with("Instructions:") {
            let column = line.find("Instructions:").expect("just matched");
            let row = lines.next().context("instruction info without a row")?;
            let (numbers, echo) = split_at_column(row, column)?;
            let mut numbers = numbers.split_whitespace();
            let mut next = || numbers.next().context("short instruction info row");
            let (uops, latency, rthroughput) =
                (next()?.parse()?, next()?.parse()?, next()?.parse()?);
            info = Some((uops, latency, rthroughput, echo));
        } else if line == "Resources:" {
            let mut names = Vec::new();
            for resource in lines.by_ref().take_while(|line| !line.is_empty()) {
                let (index, name) = resource
                    .split_once(" - ")
                    .context("a resource line without ' - '")?;
                let index = index.trim().trim_start_matches('[').trim_end_matches(']');
                names.push(match index.split_once('.') {
                    Some((_, unit)) => format!("{}.{unit}", name.trim()),
                    None => name.trim().to_string(),
                });
            }
            match &ports {
                Some(known) if *known != names => bail!("regions name different resources"),
                _ => ports = Some(names),
            }
        } else if line == "Resource pressure by instruction:" {
            let header = lines.next().context("pressure view without a header")?;
            let column = header
                .find("Instructions:")
                .context("pressure header without an instruction column")?;
            let row = lines.next().context("pressure view without a row")?;
            let (cells, _) = split_at_column(row, column)?;
            let known = ports.as_ref().context("pressure before resources")?.len();
            anyhow::ensure!(
                cells.split_whitespace().count() == known,
                "a pressure row for other than {known} resources: {row:?}"
            );
            let mut pressure = Vec::new();
            for (port, cell) in cells.split_whitespace().enumerate() {
                if cell != "-" {
                    pressure.push((port, cell.parse::<f64>()?));
                }
            }
            let (uops, latency, rthroughput, echo) =
                info.take().context("pressure before instruction info")?;
            let region = region.take().context("a region without its name")?;
            priced.insert(
                region,
                Priced {
                    uops,
                    latency,
                    rthroughput,
                    pressure,
                    echo,
                },
            );
        }
    }
    Ok(Report {
        dispatch_width: dispatch_width.context("no dispatch width")?,
        ports: ports.context("no resources")?,
        priced,
    })
}

/// A row cut where its header's instruction column starts: (the cells, the instruction).
fn split_at_column(row: &str, column: usize) -> Result<(&str, String)> {
    anyhow::ensure!(
        row.is_char_boundary(column) && row.len() > column,
        "row shorter than its header: {row:?}"
    );
    let (cells, instruction) = row.split_at(column);
    Ok((cells, instruction.replace('\t', " ").trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded with Debian's llvm-mca 14.0.6: `llvm-mca ARGUMENTS < fixtures/regions.s`
    // (three regions, the second one MPX, which LLVM 14 does not assemble) with
    // -mcpu=skylake-avx512, and `< fixtures/region.s` with -mcpu=znver3.
    const SKYLAKE_OUT: &str = include_str!("fixtures/skylake-avx512.out");
    const SKYLAKE_ERR: &str = include_str!("fixtures/skylake-avx512.err");
    const ZNVER3_OUT: &str = include_str!("fixtures/znver3.out");
    // Recorded with Debian's llvm-mca 19.1.7, with its release's option
    // -skip-unsupported-instructions=parse-failure: `< fixtures/regions.s` with
    // -mcpu=sapphirerapids (it reports the refused line twice), and `< fixtures/region.s`
    // with -mcpu=znver4.
    const SAPPHIRERAPIDS_OUT: &str = include_str!("fixtures/sapphirerapids.out");
    const SAPPHIRERAPIDS_ERR: &str = include_str!("fixtures/sapphirerapids.err");
    const ZNVER4_OUT: &str = include_str!("fixtures/znver4.out");

    /// A run of regions.s: the add's and the store's uses of the model's resources (by
    /// index), its dispatch width, and two of its resources from the third on.
    struct Regions {
        stdout: &'static str,
        stderr: &'static str,
        add: (u32, u32, f64, &'static [(usize, f64)]),
        store: &'static [(usize, f64)],
        dispatch_width: u32,
        ports_from_2: [&'static str; 2],
    }

    const REGIONS: [Regions; 2] = [
        Regions {
            stdout: SKYLAKE_OUT,
            stderr: SKYLAKE_ERR,
            add: (1, 1, 0.25, &[(2, 0.25), (3, 0.25), (7, 0.25), (8, 0.25)]),
            store: &[(4, 0.33), (5, 0.33), (6, 1.0), (9, 0.33)],
            dispatch_width: 6,
            ports_from_2: ["SKXPort0", "SKXPort1"],
        },
        Regions {
            stdout: SAPPHIRERAPIDS_OUT,
            stderr: SAPPHIRERAPIDS_ERR,
            add: (
                1,
                1,
                0.2,
                &[(0, 0.2), (1, 0.2), (5, 0.2), (6, 0.2), (10, 0.2)],
            ),
            store: &[(4, 0.5), (7, 0.5), (8, 0.5), (9, 0.5)],
            dispatch_width: 6,
            ports_from_2: ["SPRPort02", "SPRPort03"],
        },
    ];

    #[test]
    fn a_refused_line_is_its_region_and_the_others_are_priced() {
        for regions in REGIONS {
            let run = read(regions.stdout, regions.stderr, true, 3).expect("reads");
            assert!(run.aborted.is_none());
            let verdicts: Vec<_> = run.verdicts().collect();
            let Some(Ok(add)) = &verdicts[0] else {
                panic!("r0 priced: {verdicts:?}");
            };
            let (uops, latency, rthroughput, pressure) = regions.add;
            assert_eq!(
                (add.uops, add.latency, add.rthroughput),
                (uops, latency, rthroughput)
            );
            assert_eq!(add.echo, "addq %rbx, %rax");
            assert_eq!(add.pressure, pressure);
            assert_eq!(
                verdicts[1],
                Some(Err("error: invalid register name".to_string()))
            );
            let Some(Ok(store)) = &verdicts[2] else {
                panic!("r2 priced: {verdicts:?}");
            };
            assert_eq!(store.pressure, regions.store);
            let report = run.report.expect("a report");
            assert_eq!(report.dispatch_width, regions.dispatch_width);
            assert_eq!(report.ports[2..4], regions.ports_from_2);
        }
    }

    #[test]
    fn units_of_one_resource_are_numbered() {
        for (stdout, prefix) in [(ZNVER3_OUT, "Zn3FPP45"), (ZNVER4_OUT, "Zn4FP45")] {
            let run = read(stdout, "", true, 1).expect("reads");
            let report = run.report.expect("a report");
            assert_eq!(report.ports.len(), 23);
            let units = [format!("{prefix}.0"), format!("{prefix}.1")];
            assert_eq!(report.ports[12..14], units);
            let pxor = &report.priced[&0];
            assert_eq!((pxor.uops, pxor.latency, pxor.rthroughput), (1, 8, 0.5));
            let ports: Vec<&str> = pxor
                .pressure
                .iter()
                .map(|(port, _)| report.ports[*port].as_str())
                .collect();
            assert!(
                ports.contains(&units[0].as_str())
                    && ports.iter().any(|port| port.ends_with("Load.2")),
                "{ports:?}"
            );
        }
    }

    #[test]
    fn a_run_that_stops_says_why() {
        let stderr = "error: found an unsupported instruction in the input assembly sequence.\n\
                      note: instruction: \tvpcmpeqb\t%zmm2, %zmm0, %k0\n";
        let run = read("", stderr, false, 2).expect("reads");
        assert!(run.report.is_none());
        assert!(run.verdicts().all(|verdict| verdict.is_none()));
        assert!(run.aborted.expect("aborted").contains("vpcmpeqb"));
    }
}
