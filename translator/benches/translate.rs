//! Translation speed: blocks of busybox's text translated back to back, three rounds.
//! `cargo bench -p translator` (needs `make -C corpora`). The cost models' per-instruction
//! translation cost comes from this figure (BENCHMARKS.md).

use std::time::Instant;

use translator::{CodeSource, Runtime, Translator};

/// A static ELF's bytes, with its first page at 0x400000 (busybox-static's layout).
struct Image(Vec<u8>);

impl CodeSource for Image {
    fn read_code(&self, addr: u64, buf: &mut [u8]) -> usize {
        let Some(offset) = addr.checked_sub(0x40_0000).map(|o| o as usize) else {
            return 0;
        };
        let n = self.0.len().saturating_sub(offset).min(buf.len());
        buf[..n].copy_from_slice(&self.0[offset..offset + n]);
        n
    }
}

const BASE: u64 = 0xffff_ffff_8000_0000;

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/build/busybox");
    let image = Image(std::fs::read(path).expect("build the corpus first: make -C corpora"));
    let runtime = Runtime {
        dispatch: BASE,
        syscall_entry: BASE + 0x80,
        compat_entry: BASE + 0x200,
        fault: BASE + 0xc0,
        emulate: BASE + 0x240,
        lookup: BASE + 0x2c0,
        target: BASE + 0x1_0000,
        next: BASE + 0x1_0038,
        user_rsp: BASE + 0x1_0008,
        spill: BASE + 0x1_0010,
        fs_base: BASE + 0x1_0018,
        gs_base: BASE + 0x1_0020,
        fault_rip: BASE + 0x1_0028,
        fault_kind: BASE + 0x1_0030,
        kernel_stack_top: BASE + 0x3_0000,
    };
    let translator = Translator::new(runtime).unwrap();
    for round in 0..3 {
        let started = Instant::now();
        let (mut address, mut instructions, mut blocks) = (0x40_1000u64, 0u64, 0u64);
        while blocks < 20_000 {
            match translator.translate(&image, address, BASE + 0x100_0000) {
                Ok(block) => {
                    instructions += block.guest_instructions as u64;
                    address = block.guest_end;
                    blocks += 1;
                }
                Err(_) => address += 1,
            }
        }
        let ns = started.elapsed().as_nanos() as f64 / instructions as f64;
        println!("round {round}: {blocks} blocks, {instructions} guest instructions, {ns:.0} ns per guest instruction");
    }
}
