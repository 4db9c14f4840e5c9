//! Panics at the boundary with Unicorn. A panic cannot unwind through Unicorn's C frames
//! (the process aborts with status 134), so every hook runs its body under [`contain`], and
//! a panic there, a bug in ringsim, ends the run as a one-line internal error instead.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    /// Where the last panic on this thread happened, as the panic hook saw it.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the default panic hook, which prints several lines, with one that only notes
/// where the panic happened, for [`contain`]'s message. For binaries: call once at start.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        LOCATION.with(|cell| *cell.borrow_mut() = location);
    }));
}

/// Runs `body`; a panic in it comes back as its message (and where, if known).
pub fn contain<R>(body: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(body)).map_err(|payload| {
        let message = message(payload.as_ref());
        match LOCATION.with(|cell| cell.borrow_mut().take()) {
            Some(location) => format!("{message} ({location})"),
            None => message,
        }
    })
}

fn message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(contain(|| 7), Ok(7));
        let caught = contain(|| -> u32 { panic!("overflow in {}", "nanosleep") });
        assert!(caught.unwrap_err().starts_with("overflow in nanosleep"));
    }
}
