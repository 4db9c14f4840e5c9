//! The fixed CPUID the guest sees: a Westmere-class x86-64 without AVX, with sane cache leaves.
//!
//! Unicorn cannot run 256-bit VEX code, so AVX must not be advertised; glibc's string
//! functions divide by cache sizes, so the cache leaves must not be zero (DESIGN.md).
//! The emulated core is Unicorn's Westmere model, whose TCG feature checks accept exactly
//! the instruction sets listed here.

/// One CPUID answer: (leaf, subleaf) → (eax, ebx, ecx, edx). Subleaf `None` matches any.
pub struct CpuidRow {
    pub leaf: u32,
    pub subleaf: Option<u32>,
    pub regs: [u32; 4],
}

const fn row(leaf: u32, subleaf: Option<u32>, regs: [u32; 4]) -> CpuidRow {
    CpuidRow {
        leaf,
        subleaf,
        regs,
    }
}

/// Leaf 1 EDX: FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT PSE36
/// CLFLUSH MMX FXSR SSE SSE2. Also the value of AT_HWCAP.
pub const LEAF1_EDX: u32 = 0x078b_fbff;
/// Leaf 1 ECX: SSE3 PCLMULQDQ SSSE3 CX16 SSE4.1 SSE4.2 POPCNT AES. No XSAVE, OSXSAVE or AVX.
const LEAF1_ECX: u32 = 0x0298_2203;

/// Packs 12 ASCII bytes into the (ebx, edx, ecx) order of leaf 0.
const fn word(s: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]])
}

const fn vendor(s: &[u8; 12]) -> [u32; 3] {
    [word(s, 0), word(s, 4), word(s, 8)]
}

const fn brand(s: &[u8; 48], part: usize) -> [u32; 4] {
    let i = part * 16;
    [word(s, i), word(s, i + 4), word(s, i + 8), word(s, i + 12)]
}

const VENDOR: [u32; 3] = vendor(b"GenuineIntel");
const BRAND: &[u8; 48] = b"ringsim virtual x86-64 CPU (Westmere class)\0\0\0\0\0";

pub const CPUID_TABLE: &[CpuidRow] = &[
    // Highest basic leaf 7; the vendor string.
    row(0, None, [7, VENDOR[0], VENDOR[2], VENDOR[1]]),
    // Family 6 model 44 stepping 1; CLFLUSH line 64 bytes; one logical processor.
    row(1, None, [0x0002_06c1, 0x0001_0800, LEAF1_ECX, LEAF1_EDX]),
    // One round; descriptor 0xff sends software to leaf 4 for cache facts.
    row(2, None, [0x0000_ff01, 0, 0, 0]),
    // Deterministic cache parameters: L1d and L1i 32 KiB 8-way, L2 256 KiB 8-way,
    // L3 8 MiB 16-way, 64-byte lines, each private to the one core.
    row(4, Some(0), [0x0000_0121, 0x01c0_003f, 63, 0]),
    row(4, Some(1), [0x0000_0122, 0x01c0_003f, 63, 0]),
    row(4, Some(2), [0x0000_0143, 0x01c0_003f, 511, 0]),
    row(4, Some(3), [0x0000_0163, 0x03c0_003f, 8191, 0]),
    // Structured extended features: none (no BMI, AVX2, ERMS or AVX-512).
    row(7, None, [0, 0, 0, 0]),
    row(0x8000_0000, None, [0x8000_0008, 0, 0, 0]),
    // LAHF in 64-bit mode; SYSCALL, NX, long mode.
    row(0x8000_0001, None, [0, 0, 0x0000_0001, 0x2010_0800]),
    row(0x8000_0002, None, brand(BRAND, 0)),
    row(0x8000_0003, None, brand(BRAND, 1)),
    row(0x8000_0004, None, brand(BRAND, 2)),
    // L2: 256 KiB, 8-way, 64-byte lines.
    row(0x8000_0006, None, [0, 0, 0x0100_6040, 0]),
    // 40 physical and 48 virtual address bits, as Unicorn implements.
    row(0x8000_0008, None, [0x0000_3028, 0, 0, 0]),
];

/// The answer for `leaf`/`subleaf`; unlisted leaves read as zeros.
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    CPUID_TABLE
        .iter()
        .find(|r| r.leaf == leaf && r.subleaf.is_none_or(|s| s == subleaf))
        .map_or([0; 4], |r| r.regs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_reads_back() {
        let [_, b, c, d] = cpuid(0, 0);
        let bytes: Vec<u8> = [b, d, c].iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(bytes, b"GenuineIntel");
    }

    #[test]
    fn no_avx_no_xsave() {
        let [_, _, ecx, _] = cpuid(1, 0);
        assert_eq!(ecx & (1 << 28), 0, "AVX");
        assert_eq!(ecx & (1 << 27), 0, "OSXSAVE");
        assert_eq!(cpuid(7, 0)[1] & (1 << 5), 0, "AVX2");
    }

    #[test]
    fn cache_leaves_are_sane() {
        for sub in 0..4 {
            let [eax, ebx, ecx, _] = cpuid(4, sub);
            assert_ne!(eax & 0x1f, 0);
            let size =
                ((ebx >> 22) + 1) * (((ebx >> 12) & 0x3ff) + 1) * ((ebx & 0xfff) + 1) * (ecx + 1);
            assert!(size >= 32 * 1024);
        }
        assert_eq!(cpuid(4, 4)[0] & 0x1f, 0, "the list ends");
    }
}
