//! A quick calibration of whatever machine runs the tests: every probe is there, and every
//! figure lies in a range that holds on any x86-64 machine, KVM guest or bare metal, Intel or
//! AMD, with or without KPTI. Nothing here is specific to one host.

use calibrate::{CalibrateError, Calibration, Options, Probe};

const PROBES: &[&str] = &[
    "timer",
    "null_call",
    "core_clock",
    "branch_mispredict",
    "yield_threads",
    "yield_processes",
    "pipe_ping_pong",
    "create_process",
    "fork_per_page",
    "fork_per_area",
    "page_fault",
    "fault_around",
    "identity",
    "file_read",
    "file_write",
    "pipe_write",
    "pipe_read",
    "tcp_send",
    "tcp_receive",
    "unix_send",
    "unix_receive",
    "connect",
    "accept",
    "epoll_wait",
    "dev_null",
    "open_stat",
    "fstat",
    "newfstatat",
    "mmap_munmap",
    "mprotect",
    "brk",
    "futex",
    "tsc_ghz",
];

const SIZED: &[&str] = &[
    "file_read",
    "file_write",
    "pipe_write",
    "pipe_read",
    "tcp_send",
    "tcp_receive",
    "unix_send",
    "unix_receive",
    "epoll_wait",
    "dev_null",
];

/// The probes not watched for preemption: the partner on the CPU preempts the probing
/// thread by design, or (tsc_ghz) it sleeps.
const UNWATCHED: &[&str] = &[
    "yield_threads",
    "yield_processes",
    "pipe_ping_pong",
    "tsc_ghz",
];

fn probe<'a>(calibration: &'a Calibration, name: &str) -> &'a Probe {
    calibration
        .probe(name)
        .unwrap_or_else(|| panic!("no probe {name}"))
}

fn assert_within(name: &str, value: f64, low: f64, high: f64) {
    assert!(
        (low..=high).contains(&value),
        "{name}: {value} is outside {low}..={high}"
    );
}

#[test]
fn a_quick_run_gives_every_probe_in_sane_ranges() {
    let options = Options::quick();
    let calibration = calibrate::run(&options).unwrap();
    let names: Vec<&str> = calibration.probes.iter().map(|probe| probe.name).collect();
    assert_eq!(names, PROBES);

    let null = probe(&calibration, "null_call").median;
    assert_within("null_call", null, 20.0, 20_000.0);
    for probe in &calibration.probes {
        let name = probe.name;
        assert!(probe.median.is_finite(), "{name}: {probe:?}");
        assert!(
            probe.low <= probe.median && probe.median <= probe.high,
            "{name}: {probe:?}"
        );
        assert_eq!(probe.rounds, options.rounds, "{name}");
        assert!(!probe.what.is_empty() && !probe.unit.is_empty(), "{name}");
        // A call beyond the null call costs more than nothing in all, and less than a
        // millisecond at any clock. A sized probe's is its one-byte call's: its fitted
        // intercept may fall below zero (see `PerByte`), as a quick AF_UNIX send's did
        // (-0.28 ticks in all on an Intel Xeon).
        if probe.beyond_null {
            let smallest = probe
                .per_byte
                .as_ref()
                .map_or(probe.median, |p| p.points[0].median);
            assert_within(name, null + smallest, 0.0, 10_000_000.0);
        }
        assert_eq!(probe.per_byte.is_some(), SIZED.contains(&name), "{name}");
        assert_eq!(
            probe.per_page.is_some(),
            [
                "fork_per_page",
                "fork_per_area",
                "page_fault",
                "fault_around"
            ]
            .contains(&name),
            "{name}"
        );
        // A kernel without run delays (no CONFIG_SCHED_INFO) watches none.
        if UNWATCHED.contains(&name) {
            assert_eq!((probe.rerun, probe.preempted), (None, None), "{name}");
        }
        assert_eq!(probe.rerun.is_some(), probe.preempted.is_some(), "{name}");
        // The re-runs' budget.
        assert!(
            probe.rerun.unwrap_or(0) <= options.rounds,
            "{name}: {probe:?}"
        );
        if let Some(per_byte) = &probe.per_byte {
            assert!(
                per_byte.low <= per_byte.median && per_byte.median <= per_byte.high,
                "{name}: {per_byte:?}"
            );
            let sizes: Vec<u64> = per_byte.points.iter().map(|point| point.bytes).collect();
            if name == "epoll_wait" {
                // 1, 8, 64 and 256 ready events of 12 bytes.
                assert_eq!(sizes, [12, 96, 768, 3072], "{name}");
            } else {
                assert_eq!(sizes, [1, 64, 1024, 4096, 16384, 65536], "{name}");
            }
            assert!(
                per_byte.points.iter().all(|point| point.median.is_finite()),
                "{name}"
            );
        }
    }

    let fork = probe(&calibration, "fork_per_page");
    let per_page = fork.per_page.as_ref().unwrap();
    assert!(
        per_page.low <= per_page.median && per_page.median <= per_page.high,
        "{per_page:?}"
    );
    let pages: Vec<u64> = per_page.points.iter().map(|point| point.pages).collect();
    assert_eq!(pages, [0, 256, 1024, 4096]);
    assert_eq!(per_page.points[0].median, fork.median);
    // Copying a page-table entry, and dropping it at the child's execve, costs tens of
    // nanoseconds at least (about 150 on a 2-vCPU KVM guest, Linux 6.18), and far less than
    // a microsecond at any clock.
    assert_within("fork per page", per_page.median, 10.0, 10_000.0);
    // An area is a structure to copy and free, with the locks and accounting around it:
    // tens of nanoseconds at least (about 1,500 ticks on a 2-vCPU KVM guest, Linux 6.18),
    // far less than 100 microseconds.
    let areas = probe(&calibration, "fork_per_area")
        .per_page
        .as_ref()
        .unwrap();
    assert_within("fork per area", areas.median, 10.0, 500_000.0);
    // Its point at no pages is create_process again (measured: the fitted intercept of a
    // quick run strays, 0.31 of create_process once on an Intel Xeon).
    let create_process = probe(&calibration, "create_process").median;
    assert_eq!(per_page.points[0].pages, 0);
    assert_within(
        "fork_per_page at no pages against create_process",
        per_page.points[0].median / create_process,
        0.5,
        2.0,
    );

    // A fork + exec + wait faults a few pages in: the child's stack and the copies on
    // write of the parent's few pages (5 a process on a 2-vCPU KVM guest, Linux 6.18).
    let creation = probe(&calibration, "create_process").page_faults.unwrap();
    assert_within("create_process page faults", creation, 1.0, 1_000.0);
    for probe in &calibration.probes {
        assert_eq!(
            probe.page_faults.is_some(),
            probe.name == "create_process",
            "{}",
            probe.name
        );
    }

    // A page's first touch takes the fault's entry and exit, a zeroed frame, and its
    // release at munmap: hundreds of cycles at least, far less than 100 microseconds.
    let fault = probe(&calibration, "page_fault").per_page.as_ref().unwrap();
    assert_within("page fault", fault.median, 100.0, 500_000.0);
    // A read fault on a file maps 16 pages of the page cache (munmap unmaps them): per page,
    // its sixteenth of the fault and a page-table entry's setting and clearing, tens of
    // cycles at least (about 750 ticks on a 2-vCPU KVM guest, Linux 6.18), far less than a
    // fault each.
    let around = probe(&calibration, "fault_around")
        .per_page
        .as_ref()
        .unwrap();
    assert_within("fault_around per page", around.median, 10.0, fault.median);

    let slope = |name| probe(&calibration, name).per_byte.as_ref().unwrap().median;
    // Copying from the page cache costs something per byte, and far less than 5 cycles.
    assert_within("file_read per byte", slope("file_read"), 0.0001, 5.0);
    assert_within("pipe_write per byte", slope("pipe_write"), 0.0001, 5.0);
    // A ready event is an item's poll and a record's copy: tens of cycles at least (about
    // 230 core cycles on a 2-vCPU KVM guest, Linux 6.18), far less than 100 microseconds.
    assert_within(
        "epoll_wait per event",
        slope("epoll_wait") * 12.0,
        10.0,
        500_000.0,
    );
    // /dev/null copies nothing.
    assert_within("dev_null per byte", slope("dev_null"), -0.05, 0.05);

    let median = |name| probe(&calibration, name).median;
    // Against the null call's quietest round: a busy CPU (CI) inflates its median too.
    let quiet_null = probe(&calibration, "null_call").low;
    for (name, calls) in [
        ("create_process", 10.0),
        ("fork_per_page", 10.0),
        ("fork_per_area", 10.0),
        // Four calls and two switches per round trip.
        ("pipe_ping_pong", 2.0),
        // A yield that switches is dearer than a call that does nothing.
        ("yield_threads", 1.0),
        ("yield_processes", 1.0),
    ] {
        if name.starts_with("yield") && calibration.machine.unpinned.is_some() {
            continue;
        }
        assert!(
            median(name) > calls * quiet_null,
            "{name} {} against null {quiet_null}",
            median(name)
        );
    }
    assert_within("timer", median("timer"), 1.0, 2_000.0);
    // TSC ticks per core cycle: cores run from about a third of their TSC's rate (deep
    // power saving) to about twice it (turbo on a low nominal clock).
    assert_within("core_clock", median("core_clock"), 0.3, 3.0);
    assert_within("tsc_ghz", median("tsc_ghz"), 0.5, 6.0);
    // A misprediction costs a core's pipeline refill, 10 to 30 cycles on cores of the last
    // twenty years, plus the wait for the byte it tests: from 5 to 100 core cycles.
    let mispredict_cycles = median("branch_mispredict") / median("core_clock");
    assert_within(
        "branch_mispredict in core cycles",
        mispredict_cycles,
        5.0,
        100.0,
    );

    let machine = &calibration.machine;
    for (field, value) in [
        ("model_name", &machine.model_name),
        ("vendor_id", &machine.vendor_id),
        ("kernel_release", &machine.kernel_release),
        ("temp_fs", &machine.temp_fs),
    ] {
        assert!(!value.is_empty(), "machine.{field} is empty");
    }
    let date = machine.date.as_bytes();
    assert!(
        date.len() == 10
            && date[4] == b'-'
            && date[7] == b'-'
            && machine
                .date
                .replace('-', "")
                .bytes()
                .all(|b| b.is_ascii_digit()),
        "date {}",
        machine.date
    );

    let json = serde_json::to_value(&calibration).unwrap();
    assert_eq!(json["probes"].as_array().unwrap().len(), PROBES.len());
    assert_eq!(json["machine"]["model_name"], machine.model_name.as_str());
}

#[test]
fn a_temp_dir_that_is_not_there_is_a_clear_error() {
    let options = Options {
        temp_dir: Some("/nonexistent/calibrate-temp".into()),
        ..Options::quick()
    };
    let error = calibrate::run(&options).unwrap_err();
    assert!(matches!(error, CalibrateError::TempDir { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("/nonexistent/calibrate-temp") && message.contains("TMPDIR"),
        "{message}"
    );
}

#[test]
fn options_that_make_no_run_are_refused() {
    for options in [
        Options {
            rounds: 0,
            ..Options::quick()
        },
        Options {
            iterations_scale: 0.0,
            ..Options::quick()
        },
        Options {
            iterations_scale: f64::NAN,
            ..Options::quick()
        },
    ] {
        assert!(
            matches!(calibrate::run(&options), Err(CalibrateError::Options(_))),
            "{options:?}"
        );
    }
}
