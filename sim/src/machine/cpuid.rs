//! The CPUID the guest sees: the CPU model's vendor, signature and brand over one feature
//! set, an x86-64 without AVX, with sane cache leaves in the vendor's own format.
//!
//! Unicorn cannot run 256-bit VEX code, so AVX must not be advertised; glibc's string
//! functions divide by cache sizes, so the cache leaves must not be zero (DESIGN.md), and
//! glibc reads them where the vendor keeps them: leaf 4 on Intel, leaves 0x80000005-6 on
//! AMD. The emulated core is Unicorn's Denverton, whose TCG feature checks accept every
//! instruction set listed here.

use translator::cpu::{CpuModel, Vendor};

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
/// Leaf 1 ECX: SSE3 PCLMULQDQ SSSE3 CX16 SSE4.1 SSE4.2 POPCNT AES. No XSAVE, OSXSAVE, AVX
/// or RDRAND.
const LEAF1_ECX: u32 = 0x0298_2203;
/// Leaf 0x80000001 EDX: SYSCALL, NX, RDTSCP, long mode.
const EXT1_EDX: u32 = 0x2010_0800 | RDTSCP;
const RDTSCP: u32 = 1 << 27;

/// The features above as /proc/cpuinfo names them.
pub const FLAGS: &str = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 \
                         clflush mmx fxsr sse sse2 syscall nx rdtscp lm pni pclmulqdq ssse3 cx16 \
                         sse4_1 sse4_2 popcnt aes lahf_lm";

/// Packs 4 ASCII bytes from `i`.
const fn word(s: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]])
}

/// Leaves every vendor answers alike.
const COMMON: &[CpuidRow] = &[
    // Structured extended features: none (no BMI, AVX2, ERMS, RDSEED or AVX-512).
    row(7, None, [0, 0, 0, 0]),
    row(0x8000_0000, None, [0x8000_0008, 0, 0, 0]),
    // LAHF in 64-bit mode; SYSCALL, NX, RDTSCP, long mode.
    row(0x8000_0001, None, [0, 0, 0x0000_0001, EXT1_EDX]),
    // 40 physical and 48 virtual address bits, as Unicorn implements.
    row(0x8000_0008, None, [0x0000_3028, 0, 0, 0]),
];

/// Intel's cache leaves.
const INTEL_CACHES: &[CpuidRow] = &[
    // One round; descriptor 0xff sends software to leaf 4 for cache facts.
    row(2, None, [0x0000_ff01, 0, 0, 0]),
    // Deterministic cache parameters: L1d and L1i 32 KiB 8-way, L2 256 KiB 8-way,
    // L3 8 MiB 16-way, 64-byte lines, each private to the one core.
    row(4, Some(0), [0x0000_0121, 0x01c0_003f, 63, 0]),
    row(4, Some(1), [0x0000_0122, 0x01c0_003f, 63, 0]),
    row(4, Some(2), [0x0000_0143, 0x01c0_003f, 511, 0]),
    row(4, Some(3), [0x0000_0163, 0x03c0_003f, 8191, 0]),
    // L2: 256 KiB, 8-way, 64-byte lines.
    row(0x8000_0006, None, [0, 0, 0x0100_6040, 0]),
];

/// AMD's cache leaves: the same caches in AMD's format.
const AMD_CACHES: &[CpuidRow] = &[
    // L1d (ECX) and L1i (EDX): 32 KiB, 8-way, one line a tag, 64-byte lines.
    row(0x8000_0005, None, [0, 0, 0x2008_0140, 0x2008_0140]),
    // L2 (ECX): 256 KiB, 8-way; L3 (EDX): 16 × 512 KiB, 16-way; 64-byte lines.
    row(0x8000_0006, None, [0, 0, 0x0100_6140, 0x0040_8140]),
];

fn caches(vendor: Vendor) -> &'static [CpuidRow] {
    match vendor {
        Vendor::Intel => INTEL_CACHES,
        Vendor::Amd => AMD_CACHES,
    }
}

/// The answer of `cpu` for `leaf`/`subleaf`; unlisted leaves read as zeros.
pub fn cpuid(cpu: &CpuModel, leaf: u32, subleaf: u32) -> [u32; 4] {
    let id = cpu.id;
    match leaf {
        // Highest basic leaf 7; the vendor string in EBX, EDX, ECX.
        0 => [7, word(id, 0), word(id, 8), word(id, 4)],
        // CLFLUSH line 64 bytes; one logical processor.
        1 => [cpu.signature, 0x0001_0800, LEAF1_ECX, LEAF1_EDX],
        0x8000_0002..=0x8000_0004 => {
            let i = (leaf - 0x8000_0002) as usize * 16;
            let b = cpu.brand;
            [word(b, i), word(b, i + 4), word(b, i + 8), word(b, i + 12)]
        }
        _ => COMMON
            .iter()
            .chain(caches(cpu.vendor))
            .find(|r| r.leaf == leaf && r.subleaf.is_none_or(|s| s == subleaf))
            .map_or([0; 4], |r| r.regs),
    }
}

/// The vendor of the host's CPU, if it is one ringsim models.
pub fn host_vendor() -> Option<Vendor> {
    let leaf0 = std::arch::x86_64::__cpuid(0);
    let mut id = [0u8; 12];
    for (i, register) in [leaf0.ebx, leaf0.edx, leaf0.ecx].into_iter().enumerate() {
        id[4 * i..4 * i + 4].copy_from_slice(&register.to_le_bytes());
    }
    Vendor::from_id(&id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use translator::cpu::MODELS;

    #[test]
    fn vendor_reads_back() {
        for cpu in &MODELS {
            let [_, b, c, d] = cpuid(cpu, 0, 0);
            let bytes: Vec<u8> = [b, d, c].iter().flat_map(|w| w.to_le_bytes()).collect();
            assert_eq!(bytes, cpu.id);
        }
    }

    #[test]
    fn no_avx_no_xsave_no_rdrand_but_rdtscp() {
        for cpu in &MODELS {
            let [_, _, ecx, _] = cpuid(cpu, 1, 0);
            assert_eq!(ecx & (1 << 28), 0, "AVX");
            assert_eq!(ecx & (1 << 27), 0, "OSXSAVE");
            assert_eq!(ecx & (1 << 30), 0, "RDRAND");
            assert_eq!(cpuid(cpu, 7, 0)[1] & (1 << 5), 0, "AVX2");
            assert_eq!(cpuid(cpu, 7, 0)[1] & (1 << 18), 0, "RDSEED");
            assert_ne!(cpuid(cpu, 0x8000_0001, 0)[3] & RDTSCP, 0);
        }
    }

    #[test]
    fn intel_cache_leaves_are_sane() {
        let intel = Vendor::Intel.model();
        for sub in 0..4 {
            let [eax, ebx, ecx, _] = cpuid(intel, 4, sub);
            assert_ne!(eax & 0x1f, 0);
            let size =
                ((ebx >> 22) + 1) * (((ebx >> 12) & 0x3ff) + 1) * ((ebx & 0xfff) + 1) * (ecx + 1);
            assert!(size >= 32 * 1024);
        }
        assert_eq!(cpuid(intel, 4, 4)[0] & 0x1f, 0, "the list ends");
    }

    /// As glibc 2.36's `handle_amd` decodes them.
    #[test]
    fn amd_cache_leaves_are_sane() {
        let amd = Vendor::Amd.model();
        assert!(cpuid(amd, 0x8000_0000, 0)[0] >= 0x8000_0006);
        let [_, _, l1d, l1i] = cpuid(amd, 0x8000_0005, 0);
        assert_eq!((l1d >> 14) & 0x3fc00, 32 * 1024);
        assert_eq!((l1i >> 14) & 0x3fc00, 32 * 1024);
        let [_, _, l2, l3] = cpuid(amd, 0x8000_0006, 0);
        assert_eq!((l2 >> 6) & 0x3ff_fc00, 256 * 1024);
        assert_eq!((l3 & 0x3ffc_0000) << 1, 8 << 20);
        assert_eq!(l2 & 0xff, 64);
    }

    #[test]
    fn the_host_vendor_is_read() {
        // Every machine this project runs on is Intel or AMD.
        assert!(host_vendor().is_some());
    }
}
