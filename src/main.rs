//! `simulate`: runs an x86-64 Linux program under ringsim and reports what it costs.
//! Argument parsing and output only; the work is in the `sim` crate.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use sim::costs::{self, builtin, calibrated};
use sim::kernel::OnUnsupported;
use sim::machine::cpuid::host_vendor;
use sim::machine::guard;
use sim::run::{status, PlantedBug};
use sim::system::Mode;

mod output;
mod usage;
use output::Output;
use translator::cpu::Vendor;

#[derive(Parser)]
#[command(
    name = "simulate",
    version,
    about = "Estimate what an x86-64 Linux program would gain if its syscalls did not cross rings",
    after_help = "Exit status: the program's own; 128+N if a signal N killed it; 124 if --max-instructions \
                  stopped it; 125 if simulate failed (usage, cost model, unsupported syscall, internal error); 126 if the \
                  program cannot be run (not an x86-64 ELF, or its interpreter is unusable); 127 if it, or its interpreter, was not found."
)]
struct Cli {
    /// Cost model: a built-in name (see --list-cost-models) or a TOML file.
    #[arg(long, default_value = "linux", value_name = "NAME|FILE")]
    cost_model: String,

    /// List the built-in cost models and exit.
    #[arg(long)]
    list_cost_models: bool,

    /// Measure this machine natively (null syscall, yields, pipe ping-pong, fork+exec+wait,
    /// kernel work by class, a mispredicted branch, TSC rate; medians of pinned rounds), write the cost model to FILE
    /// (default: the cache `--cost-model calibrated` reads) and exit. About 8 s.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "")]
    calibrate: Option<PathBuf>,

    /// With --calibrate: a rough calibration in under a second (5 rounds of a fifth of
    /// the operations), for tests.
    #[arg(long, requires = "calibrate")]
    quick: bool,

    /// Run the program natively, at ring 3 and translated at ring 0, each from a copy of the
    /// working directory, and compare them: exit status 0 when all three agree, 1 on a
    /// divergence (the report has the program's own status and the first divergence).
    #[arg(long, conflicts_with_all = ["mode", "dump_translation", "trace_syscalls", "max_instructions", "user_ids", "plot"])]
    check: bool,

    /// With --check: stop each of the three runs after SECONDS (exit status 125).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 600,
        requires = "check"
    )]
    check_timeout: u64,

    /// Test only: make the translator plant a known bug, to show that --check catches it.
    #[arg(long, value_enum, hide = true, value_name = "BUG")]
    plant_bug: Option<PlantedBugArg>,

    /// Run untranslated at ring 3, or binary-translated at ring 0.
    #[arg(long, value_enum, default_value_t = ModeArg::Ring0)]
    mode: ModeArg,

    /// Write every translated block, guest code beside its translation, to FILE (ring 0).
    #[arg(long, value_name = "FILE")]
    dump_translation: Option<PathBuf>,

    /// Write every syscall (number, arguments, result) to FILE, one JSON object a line.
    #[arg(long, value_name = "FILE")]
    trace_syscalls: Option<PathBuf>,

    /// Write where the run's cycles went, ring 3 beside ring 0 stacked by term, as an SVG
    /// plot to FILE.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,

    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    report: ReportFormat,

    /// Write the report to FILE instead of stderr.
    #[arg(long, value_name = "FILE")]
    report_file: Option<PathBuf>,

    /// argv[0] for the program (for multi-call binaries such as busybox).
    #[arg(long, value_name = "NAME")]
    argv0: Option<OsString>,

    /// Set an environment variable for the program (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    set_env: Vec<OsString>,

    /// Remove a variable from the program's environment (repeatable).
    #[arg(long = "unset-env", value_name = "K")]
    unset_env: Vec<OsString>,

    /// Start the program with an empty environment (then --env applies).
    #[arg(long)]
    clear_env: bool,

    /// Whose CPU the simulated one follows where Intel and AMD differ (CPUID, sysenter):
    /// intel, amd, or host (this machine's). Default: intel; with --check, host.
    #[arg(long, value_enum, value_name = "VENDOR")]
    cpu_vendor: Option<CpuVendorArg>,

    /// Seed for AT_RANDOM and getrandom.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Run the guest as this user and group instead of the host user (its ids only: files
    /// are still opened with the host user's rights), so the run does not depend on who
    /// runs the simulator.
    #[arg(long, value_name = "UID:GID", value_parser = parse_user_ids)]
    user_ids: Option<(u32, u32)>,

    /// Stop the program after about N guest instructions (checked at block boundaries).
    #[arg(long, value_name = "N")]
    max_instructions: Option<u64>,

    /// The scheduler's quantum: a task runs at most N guest instructions before the next
    /// runnable task gets the CPU.
    #[arg(long, value_name = "N", default_value_t = sim::kernel::sched::DEFAULT_QUANTUM,
          value_parser = clap::value_parser!(u64).range(1..))]
    quantum: u64,

    /// Pick the next task, and each quantum, from a stream seeded by N instead of round
    /// robin: another interleaving, the same on every run with the same N.
    #[arg(long, value_name = "N")]
    schedule_seed: Option<u64>,

    /// Past N live tasks, fork and clone fail with EAGAIN, as Linux's limits make them.
    #[arg(long, value_name = "N", default_value_t = sim::kernel::DEFAULT_MAX_TASKS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_tasks: usize,

    /// Look the interpreter a dynamically linked program names, and every absolute path the
    /// program opens, up under DIR first (as qemu-user's -L), then on the host.
    #[arg(long, value_name = "DIR")]
    sysroot: Option<PathBuf>,

    /// What an unsupported syscall does: stop the run, or return -ENOSYS and go on.
    #[arg(long, value_enum, default_value_t = UnsupportedPolicy::Stop)]
    on_unsupported_syscall: UnsupportedPolicy,

    /// The network internet sockets use: modelled (loopback only, deterministic), or the
    /// host's (a simulated client reaches real servers, a simulated server takes real
    /// connections; not deterministic, and not with --check). AF_UNIX stays modelled.
    #[arg(long, value_enum, value_name = "NET", default_value_t = NetArg::Modelled)]
    net: NetArg,

    /// The x86-64 program to run (static, or dynamically linked), then its arguments: everything after PROGRAM is
    /// the program's, `--help` and `--` included.
    // One positional with trailing_var_arg, so that clap stops parsing options at PROGRAM.
    // With PROGRAM and ARGS apart, clap went on taking simulate's options (--help, --mode)
    // until the program's first argument.
    #[arg(
        required_unless_present_any = ["list_cost_models", "calibrate"],
        trailing_var_arg = true,
        num_args = 1..,
        value_names = ["PROGRAM", "ARGS"]
    )]
    command: Vec<OsString>,
}

impl Cli {
    /// The program to run; clap requires it unless --list-cost-models.
    fn program(&self) -> PathBuf {
        PathBuf::from(self.command.first().expect("clap requires the program"))
    }

    /// The program's arguments: argv[1..].
    fn args(&self) -> &[OsString] {
        self.command.get(1..).unwrap_or_default()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum NetArg {
    Modelled,
    Host,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Ring3,
    Ring0,
}

#[derive(Clone, Copy, ValueEnum)]
enum PlantedBugArg {
    /// syscall does not set RCX to the next RIP.
    SyscallRcx,
    /// a spilled sandbox scratch register is not restored.
    SpillNotRestored,
    /// the syscall hook panics (an internal error, status 125, never an abort).
    PanicInSyscallHook,
}

impl PlantedBugArg {
    fn bug(self) -> PlantedBug {
        match self {
            PlantedBugArg::SyscallRcx => PlantedBug::Translator(translator::PlantedBug::SyscallRcx),
            PlantedBugArg::SpillNotRestored => {
                PlantedBug::Translator(translator::PlantedBug::SpillNotRestored)
            }
            PlantedBugArg::PanicInSyscallHook => PlantedBug::PanicInSyscallHook,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CpuVendorArg {
    Intel,
    Amd,
    Host,
}

impl CpuVendorArg {
    fn vendor(self) -> Result<Vendor, String> {
        match self {
            CpuVendorArg::Intel => Ok(Vendor::Intel),
            CpuVendorArg::Amd => Ok(Vendor::Amd),
            CpuVendorArg::Host => host_vendor().ok_or_else(|| {
                "--cpu-vendor host: this machine's CPU is neither Intel's nor AMD's".to_string()
            }),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum UnsupportedPolicy {
    Stop,
    Enosys,
}

/// `UID:GID`, each a valid id (not -1).
fn parse_user_ids(text: &str) -> Result<(u32, u32), String> {
    let id = |part: &str| {
        part.parse::<u32>()
            .ok()
            .filter(|&id| id != u32::MAX)
            .ok_or_else(|| format!("{part:?} is not a user or group id"))
    };
    let (uid, gid) = text.split_once(':').ok_or("expected UID:GID")?;
    Ok((id(uid)?, id(gid)?))
}

fn fail(message: impl std::fmt::Display, status: i32) -> ExitCode {
    eprintln!("simulate: {message}");
    ExitCode::from(status as u8)
}

/// The guest environment: the host's, then --clear-env, --unset-env and --env in that order.
fn environment(cli: &Cli) -> Result<Vec<OsString>, String> {
    let mut env: Vec<(OsString, OsString)> = if cli.clear_env {
        Vec::new()
    } else {
        std::env::vars_os().collect()
    };
    env.retain(|(k, _)| !cli.unset_env.contains(k));
    for pair in &cli.set_env {
        let bytes = pair.as_bytes();
        let eq = bytes
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| format!("--env takes K=V, not '{}'", pair.to_string_lossy()))?;
        let key = OsString::from_vec(bytes[..eq].to_vec());
        let value = OsString::from_vec(bytes[eq + 1..].to_vec());
        match env.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => env.push((key, value)),
        }
    }
    Ok(env
        .into_iter()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect())
}

/// Calibrates this machine and writes the model to `path` (default: the cache).
fn calibrate_to(path: Option<PathBuf>, options: &calibrate::Options) -> Result<PathBuf, String> {
    let path = path.or_else(calibrated::cache_path).ok_or(
        "no place for the calibration: set HOME or XDG_CACHE_HOME, or give --calibrate FILE",
    )?;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    }
    // Written whole, then renamed: never a half-written model where a complete one is read.
    // Made first, so that a place it cannot go fails before the probes run.
    let partial = path.with_extension("toml.partial");
    let cannot_write =
        |err: std::io::Error| format!("{}: cannot write the cost model: {err}", path.display());
    std::fs::write(&partial, "").map_err(cannot_write)?;
    let measured = calibrate::run(options)
        .map_err(|err| err.to_string())
        .and_then(|calibration| {
            let model = calibrated::model(&calibration).map_err(|err| err.to_string())?;
            Ok((calibration, model))
        });
    let (calibration, model) = measured.inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    let disturbed: Vec<String> = calibration
        .probes
        .iter()
        .filter_map(|p| {
            p.preempted
                .filter(|&n| n > 0)
                .map(|n| format!("{} ({n})", p.name))
        })
        .collect();
    if !disturbed.is_empty() {
        eprintln!(
            "simulate: warning: other work took this CPU during rounds kept for {}: those figures are high; calibrate on a quiet machine",
            disturbed.join(", ")
        );
    }
    std::fs::write(&partial, model.to_toml())
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(cannot_write)?;
    Ok(path)
}

/// `--cost-model calibrated`: this machine's cached calibration, made first if there is none
/// or it was made on another CPU.
fn calibrated_model() -> Result<costs::CostModel, String> {
    let path = calibrated::cache_path()
        .ok_or("--cost-model calibrated: no cache: set HOME or XDG_CACHE_HOME")?;
    // A cache that no longer reads (one from before page faults were priced, whose
    // figures were TSC ticks) is made again.
    if let Ok(model) = costs::resolve(&path.to_string_lossy()) {
        if calibrated::is_for_this_machine(&model) {
            return Ok(model);
        }
    }
    eprintln!(
        "simulate: calibrating this machine first (about 5 s; saved in {})",
        path.display()
    );
    calibrate_to(Some(path.clone()), &calibrate::Options::full())?;
    costs::resolve(&path.to_string_lossy()).map_err(|err| err.to_string())
}

fn list_cost_models() {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "name",
        "ABI call",
        "yield",
        "send-receive",
        "create process",
        "description",
    ]);
    for m in builtin::all() {
        let r = &m.ring3;
        table.add_row(vec![
            m.name.clone(),
            r.abi_call.value.to_string(),
            r.yield_cpu.value.to_string(),
            r.send_receive.value.to_string(),
            r.create_process.value.to_string(),
            m.description.clone(),
        ]);
    }
    println!("{table}");
    println!("Ring-3 cycles per event. Sources: simulate --report json shows each value's source.");
}

/// `--check`: the three runs, the verdict, and 0 or 1.
/// Writes the report to its output, or to stderr.
fn emit_report(output: &Option<Output>, text: &str) -> Result<(), String> {
    match output {
        Some(output) => output.write(text.as_bytes()),
        None => {
            eprint!("{text}");
            Ok(())
        }
    }
}

fn check(cli: &Cli, env: Vec<OsString>) -> ExitCode {
    let report_file = match cli
        .report_file
        .as_deref()
        .map(|p| Output::name(p, "report"))
    {
        Some(Err(message)) => return fail(message, status::SIMULATOR_FAILED),
        named => named.and_then(Result::ok),
    };
    let simulate = match std::env::current_exe() {
        Ok(path) => path,
        Err(err) => {
            return fail(
                format!("cannot find simulate itself: {err}"),
                status::SIMULATOR_FAILED,
            )
        }
    };
    let workdir = match std::env::current_dir() {
        Ok(dir) => dir,
        Err(err) => {
            return fail(
                format!("no working directory: {err}"),
                status::SIMULATOR_FAILED,
            )
        }
    };
    let policy = value_name(cli.on_unsupported_syscall);
    // Compared with this machine's CPU, the simulated one follows its vendor.
    let vendor = match cli.cpu_vendor.unwrap_or(CpuVendorArg::Host).vendor() {
        Ok(vendor) => vendor.to_string(),
        Err(err) => return fail(err, status::SIMULATOR_FAILED),
    };
    let flags = [
        "--cost-model",
        &cli.cost_model,
        "--on-unsupported-syscall",
        &policy,
        "--cpu-vendor",
        &vendor,
    ]
    .map(String::from)
    .into_iter()
    .chain(
        cli.plant_bug
            .iter()
            .flat_map(|&bug| ["--plant-bug".to_string(), value_name(bug)]),
    )
    .collect();
    let config = oracle::CheckConfig {
        simulator: oracle::child::Simulator {
            path: simulate,
            flags,
        },
        program: cli.program(),
        argv0: cli.argv0.clone(),
        args: cli.args().to_vec(),
        env,
        seed: cli.seed,
        workdir,
        timeout: std::time::Duration::from_secs(cli.check_timeout),
    };
    let report = match oracle::check(&config) {
        Ok(report) => report,
        Err(oracle::CheckError::Simulator { message, status }) => return fail(message, status),
        Err(err) => return fail(err, status::SIMULATOR_FAILED),
    };
    let text = match cli.report {
        ReportFormat::Text => report.to_text(),
        ReportFormat::Json => report.to_json(),
    };
    if let Err(message) = emit_report(&report_file, &text) {
        return fail(message, status::SIMULATOR_FAILED);
    }
    ExitCode::from(if report.agrees() { 0 } else { 1 })
}

/// How a value of an option is written on the command line.
fn value_name(value: impl ValueEnum) -> String {
    let value = value.to_possible_value().expect("no skipped variants");
    value.get_name().to_string()
}

/// The run's command in canonical form, for the plot's footer: every option that changes
/// the run, then the program with its arguments (where the outputs go does not change it).
fn plot_command(cli: &Cli) -> String {
    let lossy = |word: &OsString| word.to_string_lossy().into_owned();
    let mut words = vec![
        "simulate".to_string(),
        "--cost-model".to_string(),
        cli.cost_model.clone(),
        "--mode".to_string(),
        value_name(cli.mode),
    ];
    let options: [(&str, Option<String>); 10] = [
        ("--cpu-vendor", cli.cpu_vendor.map(value_name)),
        (
            "--seed",
            Some(cli.seed.to_string()).filter(|_| cli.seed != 0),
        ),
        (
            "--user-ids",
            cli.user_ids.map(|(uid, gid)| format!("{uid}:{gid}")),
        ),
        (
            "--max-instructions",
            cli.max_instructions.map(|n| n.to_string()),
        ),
        (
            "--quantum",
            Some(cli.quantum.to_string())
                .filter(|_| cli.quantum != sim::kernel::sched::DEFAULT_QUANTUM),
        ),
        ("--schedule-seed", cli.schedule_seed.map(|n| n.to_string())),
        (
            "--max-tasks",
            Some(cli.max_tasks.to_string())
                .filter(|_| cli.max_tasks != sim::kernel::DEFAULT_MAX_TASKS),
        ),
        (
            "--sysroot",
            cli.sysroot.as_ref().map(|p| p.display().to_string()),
        ),
        ("--argv0", cli.argv0.as_ref().map(lossy)),
        (
            "--net",
            Some(value_name(cli.net)).filter(|_| cli.net == NetArg::Host),
        ),
    ];
    for (flag, value) in options {
        if let Some(value) = value {
            words.extend([flag.to_string(), value]);
        }
    }
    if matches!(cli.on_unsupported_syscall, UnsupportedPolicy::Enosys) {
        words.extend([
            "--on-unsupported-syscall".to_string(),
            value_name(cli.on_unsupported_syscall),
        ]);
    }
    if cli.clear_env {
        words.push("--clear-env".to_string());
    }
    words.extend(
        cli.unset_env
            .iter()
            .flat_map(|k| ["--unset-env".to_string(), lossy(k)]),
    );
    words.extend(
        cli.set_env
            .iter()
            .flat_map(|kv| ["--env".to_string(), lossy(kv)]),
    );
    words.extend(cli.command.iter().map(lossy));
    words.join(" ")
}

fn main() -> ExitCode {
    // A panic (a bug) anywhere, in Unicorn's hooks too, is one line and status 125, never
    // Rust's several lines nor an abort.
    guard::exit_on_panic(
        "simulate: internal error (a bug in ringsim): ",
        status::SIMULATOR_FAILED,
    );
    let cli: Cli = match usage::parse("simulate", status::SIMULATOR_FAILED as u8) {
        Ok(cli) => cli,
        Err(exit) => return exit,
    };
    if cli.list_cost_models {
        list_cost_models();
        return ExitCode::SUCCESS;
    }
    if let Some(file) = &cli.calibrate {
        let options = if cli.quick {
            calibrate::Options::quick()
        } else {
            calibrate::Options::full()
        };
        let path = (!file.as_os_str().is_empty()).then(|| file.clone());
        if cli.quick && path.is_none() {
            return fail(
                "--quick needs --calibrate FILE: a rough calibration is not kept as this machine's",
                status::SIMULATOR_FAILED,
            );
        }
        return match calibrate_to(path, &options) {
            Ok(path) => {
                eprintln!(
                    "simulate: wrote the calibrated cost model to {}",
                    path.display()
                );
                ExitCode::SUCCESS
            }
            Err(err) => fail(err, status::SIMULATOR_FAILED),
        };
    }
    let resolved = if cli.cost_model == costs::CALIBRATED {
        calibrated_model()
    } else {
        costs::resolve(&cli.cost_model).map_err(|err| err.to_string())
    };
    let cost_model = match resolved {
        Ok(model) => model,
        Err(err) => return fail(err, status::SIMULATOR_FAILED),
    };
    let env = match environment(&cli) {
        Ok(env) => env,
        Err(err) => return fail(err, status::SIMULATOR_FAILED),
    };
    if let Some(root) = cli.sysroot.as_ref().filter(|root| !root.is_dir()) {
        let message = format!("--sysroot {}: not a directory", root.display());
        return fail(message, status::SIMULATOR_FAILED);
    }
    if cli.check {
        if cli.sysroot.is_some() {
            let message = "--sysroot cannot be used with --check: the native run would use \
                           the host's files";
            return fail(message, status::SIMULATOR_FAILED);
        }
        if cli.net == NetArg::Host {
            let message = "--net host cannot be used with --check: what comes over the host's \
                           network differs from run to run";
            return fail(message, status::SIMULATOR_FAILED);
        }
        return check(&cli, env);
    }
    let cpu_vendor = match cli.cpu_vendor.unwrap_or(CpuVendorArg::Intel).vendor() {
        Ok(vendor) => vendor,
        Err(err) => return fail(err, status::SIMULATOR_FAILED),
    };
    let config = sim::RunConfig {
        program: cli.program(),
        args: cli.args().to_vec(),
        argv0: cli.argv0.clone(),
        env,
        cost_model,
        cpu_vendor,
        seed: cli.seed,
        user_ids: cli.user_ids,
        max_instructions: cli.max_instructions,
        quantum: cli.quantum,
        schedule_seed: cli.schedule_seed,
        max_tasks: cli.max_tasks,
        sysroot: cli.sysroot.clone(),
        dump_translation: cli.dump_translation.is_some(),
        trace_syscalls: cli.trace_syscalls.is_some(),
        planted_bug: cli.plant_bug.map(PlantedBugArg::bug),
        net_host: cli.net == NetArg::Host,
        mode: match cli.mode {
            ModeArg::Ring3 => Mode::Ring3,
            ModeArg::Ring0 => Mode::Ring0,
        },
        on_unsupported: match cli.on_unsupported_syscall {
            UnsupportedPolicy::Stop => OnUnsupported::Stop,
            UnsupportedPolicy::Enosys => OnUnsupported::Enosys,
        },
    };
    if cli.dump_translation.is_some() && config.mode == Mode::Ring3 {
        return fail(
            "--dump-translation needs --mode ring0: ring 3 runs the program untranslated",
            status::SIMULATOR_FAILED,
        );
    }
    let named = [
        (&cli.dump_translation, "translation dump"),
        (&cli.trace_syscalls, "syscall trace"),
        (&cli.report_file, "report"),
        (&cli.plot, "plot"),
    ]
    .map(|(path, what)| path.as_deref().map(|p| Output::name(p, what)).transpose());
    let [dump, trace, report, plot] = match named {
        [Ok(dump), Ok(trace), Ok(report), Ok(plot)] => [dump, trace, report, plot],
        named => {
            let message = named.into_iter().find_map(Result::err);
            return fail(message.expect("one failed"), status::SIMULATOR_FAILED);
        }
    };
    let outcome = match sim::run(&config) {
        Ok(outcome) => outcome,
        Err(err) => return fail(&err, err.exit_status()),
    };
    let mut written = Ok(());
    if let (Some(output), Some(text)) = (&dump, &outcome.translation_dump) {
        written = written.and(output.write(text.as_bytes()));
    }
    if let (Some(output), Some(records)) = (&trace, &outcome.syscall_trace) {
        let lines: String = records
            .iter()
            .map(|record| serde_json::to_string(record).expect("records serialize") + "\n")
            .collect();
        written = written.and(output.write(lines.as_bytes()));
    }
    if let Some(output) = &plot {
        let svg = experiment::report_plot::to_svg(&outcome.report, &plot_command(&cli));
        written = written.and(output.write(svg.as_bytes()));
    }
    if let Some(notice) = &outcome.notice {
        eprintln!("simulate: {notice}");
    }
    let text = match cli.report {
        ReportFormat::Text => outcome.report.to_text(),
        ReportFormat::Json => outcome.report.to_json(),
    };
    written = written.and(emit_report(&report, &text));
    if let Err(message) = written {
        return fail(message, status::SIMULATOR_FAILED);
    }
    ExitCode::from(outcome.status as u8)
}
