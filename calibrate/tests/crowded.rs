//! Process creation is timed in the spawner, a minimal static parent, so the figure does not
//! depend on the process that calibrates: fork copies its parent's memory map, and a
//! simulator with Unicorn mapped would otherwise measure its own size. (A binary of its own:
//! the mappings here slow every fork in the process.)

use calibrate::Options;

/// Single pages, alternately PROT_NONE and PROT_READ so that no two merge: one memory map
/// area each, never touched, so they take no memory. Unmapped on drop.
struct Crowd {
    start: *mut libc::c_void,
    len: usize,
}

const PAGE: usize = 4096;

impl Crowd {
    fn of(areas: usize) -> Crowd {
        let len = areas * PAGE;
        // SAFETY: a fresh anonymous mapping at an address the kernel picks replaces nothing.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(start, libc::MAP_FAILED, "mmap of {len} bytes");
        let crowd = Crowd { start, len };
        for page in (1..areas).step_by(2) {
            // SAFETY: the page lies inside the mapping just made, which nothing else uses.
            let result = unsafe {
                libc::mprotect(
                    start.cast::<u8>().add(page * PAGE).cast(),
                    PAGE,
                    libc::PROT_READ,
                )
            };
            assert_eq!(result, 0, "mprotect: {}", std::io::Error::last_os_error());
        }
        crowd
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours, and nothing refers to it once it is dropped.
        unsafe { libc::munmap(self.start, self.len) };
    }
}

fn create_process() -> f64 {
    let calibration = calibrate::run(&Options::quick()).unwrap();
    calibration.probe("create_process").unwrap().median
}

#[test]
fn create_process_does_not_grow_with_the_callers_memory_map() {
    let plain = create_process();
    // 20,000 areas make a fork from this process some 50 times dearer (15 ms rather than
    // 0.3 ms on a 2-vCPU KVM guest, Linux 6.18), well within vm.max_map_count (65,530).
    let crowd = Crowd::of(20_000);
    let crowded = create_process();
    drop(crowd);
    assert!(
        crowded < 3.0 * plain,
        "create_process {crowded} with 20,000 more areas, {plain} without"
    );
}
