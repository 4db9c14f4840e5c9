//! Calibrates this machine and prints the figures: `cargo run --release -p calibrate
//! --example calibrate [-- --quick] [--json]`. (`simulate --calibrate` writes the cost model.)

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = if args.iter().any(|arg| arg == "--quick") {
        calibrate::Options::quick()
    } else {
        calibrate::Options::full()
    };
    let started = Instant::now();
    let calibration = match calibrate::run(&options) {
        Ok(calibration) => calibration,
        Err(error) => {
            eprintln!("calibrate: {error}");
            std::process::exit(1);
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if args.iter().any(|arg| arg == "--json") {
        println!(
            "{}",
            serde_json::to_string_pretty(&calibration).unwrap_or_default()
        );
        return;
    }
    let machine = &calibration.machine;
    println!(
        "{} ({}), CPU {}{}, Linux {}, PTI {:?}, hypervisor {}, temp fs {}, {}",
        machine.model_name,
        machine.vendor_id,
        machine.cpu,
        machine
            .unpinned
            .as_deref()
            .map_or(String::new(), |why| format!(" (unpinned: {why})")),
        machine.kernel_release,
        machine.pti,
        machine.hypervisor,
        machine.temp_fs,
        machine.date
    );
    println!(
        "{} rounds; {}; {seconds:.2} s",
        options.rounds, calibration.spread
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>10}  {:<18} {:>16}",
        "probe", "median", "low", "high", "rerun/kept", "unit", "per byte or page"
    );
    for probe in &calibration.probes {
        let slope = match (&probe.per_byte, &probe.per_page) {
            (Some(slope), _) => {
                format!("{:.4} ({:.4}..{:.4})", slope.median, slope.low, slope.high)
            }
            (_, Some(slope)) => {
                format!("{:.1} ({:.1}..{:.1})", slope.median, slope.low, slope.high)
            }
            (None, None) => String::new(),
        };
        println!(
            "{:<16} {:>10.1} {:>10.1} {:>10.1} {:>10}  {:<18} {:>16}{}",
            probe.name,
            probe.median,
            probe.low,
            probe.high,
            match (probe.rerun, probe.preempted) {
                (Some(rerun), Some(kept)) => format!("{rerun}/{kept}"),
                _ => "-".into(),
            },
            probe.unit,
            slope,
            if probe.beyond_null {
                "  beyond null"
            } else {
                ""
            }
        );
    }
}
