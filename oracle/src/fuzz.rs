//! The instruction-level differential fuzzer. Seeded random straight-line sequences drawn
//! from a table of forms (`forms`) run natively on the host CPU, in the simulator at ring 3
//! (Unicorn itself) and translated at ring 0; their registers, flags and scratch buffers
//! must agree, flags left undefined excepted (`flags`). A disagreement between native and
//! ring 3 is a finding in Unicorn (or the simulator), or a difference between CPU vendors;
//! one between ring 3 and ring 0, in the translator. Findings are minimized and can be
//! saved as regression cases (`regression`).
//!
//! Many sequences share one process (`program`): a batch is one static program, so a few
//! thousand sequences cost a few dozen process runs.

pub mod flags;
pub mod forms;
pub mod known;
pub mod program;
pub mod record;
pub mod regression;

use std::path::Path;
use std::process::Command;

use iced_x86::{Decoder, DecoderOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

pub use crate::child::Simulator;
use flags::KnownBugs;
use known::KnownBug;
use program::{Sequence, State};
use record::{Field, FieldDifference};
pub use regression::{replay, Host, Regression, Replay};

/// One piece of a sequence: a form's encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub form: String,
    /// The encoding, in hex.
    pub code: String,
}

/// A sequence as generated: its items and start state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub items: Vec<Item>,
    pub gprs: [u64; 16],
    pub flags: u64,
    /// xmm0-7, hex.
    pub xmm: Vec<String>,
    /// The scratch buffer, hex.
    pub buffer: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Case {
    pub fn code(&self) -> Vec<u8> {
        self.items
            .iter()
            .flat_map(|item| unhex(&item.code))
            .collect()
    }

    pub fn sequence(&self) -> Sequence {
        let mut xmm = [[0u8; 16]; program::XMM_REGISTERS];
        for (slot, text) in xmm.iter_mut().zip(&self.xmm) {
            let bytes = unhex(text);
            slot[..bytes.len().min(16)].copy_from_slice(&bytes[..bytes.len().min(16)]);
        }
        let mut buffer = unhex(&self.buffer);
        buffer.resize(program::BUFFER_BYTES, 0);
        let mut rip_operands = Vec::new();
        let mut at = 0;
        for item in &self.items {
            let bytes = unhex(&item.code);
            rip_operands.extend(rip_operands_of(&bytes, at));
            at += bytes.len();
        }
        Sequence {
            code: self.code(),
            rip_operands,
            state: State {
                gprs: self.gprs,
                flags: self.flags,
                xmm,
                buffer,
            },
        }
    }
}

/// The RIP-relative operands of an item assembled at 0 and placed at `at` in its sequence.
fn rip_operands_of(bytes: &[u8], at: usize) -> Vec<program::RipOperand> {
    let mut decoder = Decoder::new(64, bytes, DecoderOptions::NONE);
    let mut found = Vec::new();
    while decoder.can_decode() {
        let instruction = decoder.decode();
        if instruction.is_ip_rel_memory_operand() {
            let offsets = decoder.get_constant_offsets(&instruction);
            found.push(program::RipOperand {
                displacement_at: at + instruction.ip() as usize + offsets.displacement_offset(),
                next_ip_at: at + instruction.next_ip() as usize,
                buffer_offset: instruction.ip_rel_memory_address() - forms::RIP_MARK,
            });
        }
    }
    found
}

/// A value worth trying more often than chance would.
fn interesting_u64(rng: &mut ChaCha20Rng) -> u64 {
    match rng.random_range(0..8) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => 1 << 63,
        4 => (1 << 31) - rng.random_range(0..2),
        5 => rng.random_range(0..256),
        _ => rng.random(),
    }
}

/// Floating-point bit patterns worth trying: zeros, ones, infinities, NaNs, denormals.
const SPECIAL_F32: [u32; 8] = [
    0,
    0x8000_0000,
    0x3f80_0000,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0x0000_0001,
    0x4f00_0000,
];

fn xmm_value(rng: &mut ChaCha20Rng) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    for lane in bytes.chunks_mut(4) {
        let word = match rng.random_range(0..4) {
            0 => SPECIAL_F32[rng.random_range(0..SPECIAL_F32.len())],
            1 => f32::to_bits(rng.random_range(-1000.0..1000.0)),
            _ => rng.random(),
        };
        lane.copy_from_slice(&word.to_le_bytes());
    }
    bytes
}

/// An instruction that defines all six arithmetic flags and changes nothing else.
const DEFINE_FLAGS: (&str, &[u8]) = ("cmp rax, rax (defines the flags)", &[0x48, 0x39, 0xc0]);

/// `count` random cases from `seed`, each of 1 to `max_items` forms.
pub fn generate(seed: u64, count: usize, max_items: usize) -> Vec<Case> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let n = rng.random_range(1..=max_items);
            let mut items: Vec<Item> = Vec::new();
            let mut code = Vec::new();
            for _ in 0..n {
                let form = &forms::FORMS[rng.random_range(0..forms::FORMS.len())];
                let bytes = forms::assemble(form, &mut rng);
                let joined = [code.as_slice(), &bytes].concat();
                if flags::reads_undefined(&joined) {
                    // The form reads a flag an earlier one left undefined: define them all.
                    items.push(Item {
                        form: DEFINE_FLAGS.0.to_string(),
                        code: hex(DEFINE_FLAGS.1),
                    });
                    code.extend_from_slice(DEFINE_FLAGS.1);
                }
                code.extend_from_slice(&bytes);
                items.push(Item {
                    form: form.name.to_string(),
                    code: hex(&bytes),
                });
            }
            let mut buffer = vec![0u8; program::BUFFER_BYTES];
            rng.fill(&mut buffer[..]);
            Case {
                items,
                gprs: std::array::from_fn(|_| interesting_u64(&mut rng)),
                flags: rng.random::<u64>() & program::ARITHMETIC_FLAGS,
                xmm: (0..program::XMM_REGISTERS)
                    .map(|_| hex(&xmm_value(&mut rng)))
                    .collect(),
                buffer: hex(&buffer),
            }
        })
        .collect()
}

/// Why a batch could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    #[error("fuzz: {0}")]
    Io(String),
    /// A regression file's saved record has a field of the wrong length, or not in hex.
    #[error("malformed saved {0} record")]
    MalformedRecord(&'static str),
}

/// One run of a batch program: its stdout, or why it has none to compare.
type RunOutput = Result<Vec<u8>, String>;

/// What one side made of every sequence of a batch.
struct Outputs {
    native: RunOutput,
    ring3: RunOutput,
    ring0: RunOutput,
}

/// How long one run of a batch program may take: far more than a batch needs.
const RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn run(command: &mut Command, dir: &Path) -> RunOutput {
    let output = crate::child::run(command.env_clear(), dir, RUN_TIMEOUT)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("still running after {RUN_TIMEOUT:?}, killed"))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(format!(
            "{} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Runs the batch program natively and in both modes of `simulate`.
fn run_batch(
    simulator: &Simulator,
    sequences: &[Sequence],
    dir: &Path,
) -> Result<Outputs, FuzzError> {
    let io = |e: std::io::Error| FuzzError::Io(e.to_string());
    let elf = program::build(sequences).map_err(|e| FuzzError::Io(e.to_string()))?;
    let path = dir.join("batch");
    std::fs::write(&path, elf).map_err(io)?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(io)?;
    let simulated = |mode: &str| {
        run(
            simulator
                .command()
                .args(["--mode", mode, "--clear-env", "--report-file", "/dev/null"])
                .arg(&path),
            dir,
        )
    };
    Ok(Outputs {
        native: run(&mut Command::new(&path), dir),
        ring3: simulated("ring3"),
        ring0: simulated("ring0"),
    })
}

/// A disagreement about one sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// "native vs ring3" (Unicorn or the simulator) or "ring3 vs ring0" (the translator).
    pub pair: String,
    /// Every field that differs.
    pub differences: Vec<FieldDifference>,
    pub case: Case,
}

impl Finding {
    /// Every difference, both sides.
    pub fn difference(&self) -> String {
        self.differences
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn differs_in(&self, field: Field) -> bool {
        self.differences.iter().any(|d| d.field == field)
    }
}

pub(crate) const UNICORN_PAIR: &str = "native vs ring3";
pub(crate) const TRANSLATOR_PAIR: &str = "ring3 vs ring0";

/// The records of one run of a batch, or why there are none.
fn records_of(output: &RunOutput, cases: usize) -> Result<Vec<&[u8]>, String> {
    let output = output.as_ref().map_err(Clone::clone)?;
    program::records(output, cases).ok_or_else(|| "output of the wrong length".to_string())
}

/// Compares the three runs of a batch, flags left undefined aside (and Unicorn's known
/// flag bugs, when `known` says so). Undefined flags are masked between ring 3 and ring 0
/// too: both run on Unicorn, but the values it leaves there depend on where its blocks
/// end, which translation changes, and no program can rely on them. A ring-3-vs-ring-0
/// difference in a field where ring 0 agrees exactly with the native run is left out: ring
/// 0 is right there and ring 3 wrong (a Unicorn bug that translation steps around), which
/// the first pair reports. `Err` when a run did not produce records.
fn compare_batch(
    outputs: &Outputs,
    cases: &[Case],
    known: KnownBugs,
) -> Result<Vec<Finding>, (String, String)> {
    let native = records_of(&outputs.native, cases.len());
    let ring3 = records_of(&outputs.ring3, cases.len());
    let ring0 = records_of(&outputs.ring0, cases.len());
    let (native, ring3, ring0) = match (native, ring3, ring0) {
        (Ok(n), Ok(r3), Ok(r0)) => (n, r3, r0),
        (n, r3, r0) => {
            let why = |r: Result<Vec<&[u8]>, String>| r.err().unwrap_or_else(|| "ran".into());
            let (n, r3, r0) = (why(n), why(r3), why(r0));
            // The same failure at ring 3 and ring 0 is Unicorn's, not the translator's.
            return Err(if n != r3 {
                (UNICORN_PAIR.into(), format!("native: {n}; ring3: {r3}"))
            } else {
                (TRANSLATOR_PAIR.into(), format!("ring3: {r3}; ring0: {r0}"))
            });
        }
    };
    let mut findings = Vec::new();
    for (k, case) in cases.iter().enumerate() {
        let undefined = flags::undefined_after(&case.code(), known);
        let unicorn = record::differences(native[k], ring3[k], undefined);
        if !unicorn.is_empty() {
            findings.push(Finding {
                pair: UNICORN_PAIR.into(),
                differences: unicorn,
                case: case.clone(),
            });
        }
        let masked = flags::undefined_after(&case.code(), KnownBugs::Masked);
        let translator = record::ring0_wrong_too(
            record::differences(ring3[k], ring0[k], masked),
            native[k],
            ring0[k],
            masked,
        );
        if !translator.is_empty() {
            findings.push(Finding {
                pair: TRANSLATOR_PAIR.into(),
                differences: translator,
                case: case.clone(),
            });
        }
    }
    Ok(findings)
}

/// Runs `cases` (one batch) and returns what disagrees. A batch whose program did not
/// run to the end (a crash in any of the three) is split until the culprit runs alone;
/// a case that still fails alone is a finding about the whole run.
pub fn check_cases(
    simulator: &Simulator,
    cases: &[Case],
    known: KnownBugs,
) -> Result<Vec<Finding>, FuzzError> {
    let dir = crate::scratch::TempDir::new("fuzz").map_err(|e| FuzzError::Io(e.to_string()))?;
    check_in(simulator, cases, known, dir.path())
}

fn check_in(
    simulator: &Simulator,
    cases: &[Case],
    known: KnownBugs,
    dir: &Path,
) -> Result<Vec<Finding>, FuzzError> {
    if cases.is_empty() {
        return Ok(Vec::new());
    }
    let sequences: Vec<Sequence> = cases.iter().map(Case::sequence).collect();
    let outputs = run_batch(simulator, &sequences, dir)?;
    match compare_batch(&outputs, cases, known) {
        Ok(findings) => Ok(findings),
        Err((pair, why)) if cases.len() == 1 => Ok(vec![Finding {
            pair,
            differences: vec![FieldDifference {
                field: Field::Run,
                left: Vec::new(),
                right: Vec::new(),
                note: why,
            }],
            case: cases[0].clone(),
        }]),
        Err(_) => {
            let (left, right) = cases.split_at(cases.len() / 2);
            let mut found = check_in(simulator, left, known, dir)?;
            found.extend(check_in(simulator, right, known, dir)?);
            Ok(found)
        }
    }
}

/// The smallest case, found by dropping one item at a time, that still disagrees in the
/// same pair on the same `field`.
pub fn minimize(
    simulator: &Simulator,
    finding: &Finding,
    field: Field,
) -> Result<Finding, FuzzError> {
    let mut best = finding.clone();
    let mut i = 0;
    while i < best.case.items.len() && best.case.items.len() > 1 {
        let mut smaller = best.case.clone();
        smaller.items.remove(i);
        if flags::reads_undefined(&smaller.code()) {
            i += 1;
            continue;
        }
        match check_cases(simulator, std::slice::from_ref(&smaller), KnownBugs::Masked)?
            .into_iter()
            .find(|f| f.pair == best.pair && f.differs_in(field))
        {
            Some(still) => best = still,
            None => i += 1,
        }
    }
    Ok(best)
}

/// A fuzz campaign.
#[derive(Clone, Debug)]
pub struct FuzzConfig {
    pub simulator: Simulator,
    pub seed: u64,
    pub sequences: usize,
    /// Sequences per program.
    pub batch: usize,
    pub max_items: usize,
}

/// What a campaign found, minimized: new findings, and those that are known bugs or vendor
/// differences.
#[derive(Default)]
pub struct Campaign {
    pub new: Vec<Finding>,
    /// Each with what it is.
    pub known: Vec<(Finding, &'static KnownBug)>,
}

/// Runs the campaign.
pub fn fuzz(config: &FuzzConfig) -> Result<Campaign, FuzzError> {
    let cases = generate(config.seed, config.sequences, config.max_items);
    let mut campaign = Campaign::default();
    let host = Host::this().vendor;
    for batch in cases.chunks(config.batch.max(1)) {
        for finding in check_cases(&config.simulator, batch, KnownBugs::Masked)? {
            // Minimized on a field no known bug explains, if there is one, so that the
            // new bug is what remains.
            let field = known::unexplained(&finding, &host).unwrap_or(finding.differences[0].field);
            let finding = minimize(&config.simulator, &finding, field)?;
            match known::classify(&finding, &host) {
                Some(bug) => campaign.known.push((finding, bug)),
                None => campaign.new.push(finding),
            }
        }
    }
    Ok(campaign)
}
