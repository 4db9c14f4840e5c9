//! Panics and Unicorn. A panic cannot unwind through Unicorn's C frames (the process would
//! abort with status 134), and most of ringsim runs inside Unicorn's hooks. Catching it at
//! each hook with `catch_unwind` cost about 46 instructions a block, 27 % of a
//! compute-bound run's instructions at ring 3 (BENCHMARKS.md, issue 8's sweep); instead a
//! binary installs [`exit_on_panic`], whose hook runs before any unwinding and ends the
//! process there.

/// Makes every panic end the process at once with `status` and one line on stderr:
/// `prefix`, the panic's message and where it happened.
pub fn exit_on_panic(prefix: &'static str, status: i32) {
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or("a panic with no message");
        let location = info
            .location()
            .map(|l| format!(" ({}:{})", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("{prefix}{message}{location}");
        std::process::exit(status);
    }));
}
