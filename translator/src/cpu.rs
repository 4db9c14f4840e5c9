//! The CPU ringsim models. Where Intel and AMD CPUs behave differently, the simulated CPU
//! follows one vendor, chosen per run, never the host's by accident: the simulator's CPUID
//! and instruction hooks read the same [`CpuModel`], and this crate's rules read what the
//! model lacks ([`LACKING`]) and send `sysenter`, whose outcome depends on the vendor, to
//! the simulator.

use iced_x86::Mnemonic;

/// Instructions the model's CPUID does not advertise, which raise #UD as on a CPU without
/// them (Unicorn's core would run them, with the host's entropy): RDRAND and RDSEED.
pub const LACKING: &[Mnemonic] = &[Mnemonic::Rdrand, Mnemonic::Rdseed];

/// A CPU vendor whose behaviour the simulated CPU follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Vendor {
    Intel,
    Amd,
}

/// What `sysenter` does in 64-bit mode, under Linux.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sysenter {
    /// #UD, as AMD CPUs raise it in long mode: SIGILL.
    InvalidOpcode,
    /// As on Intel CPUs: the CPU enters the kernel through IA32_SYSENTER_EIP, Linux's
    /// 32-bit compat entry makes the i386 syscall EAX names (the sixth argument read from
    /// the user stack at EBP), then returns in 32-bit mode to the 32-bit vDSO's landing pad,
    /// which a 64-bit process does not have: SIGSEGV, unless the syscall ended the process.
    CompatSyscall,
}

/// One vendor's CPU: what CPUID says and how it behaves where the vendors differ. One
/// field per divergent behaviour the simulator models; the README lists the ones it does
/// not (they follow Unicorn's Intel core in both models).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuModel {
    pub vendor: Vendor,
    /// The name `--cpu-vendor` and reports use.
    pub name: &'static str,
    /// CPUID leaf 0's vendor string.
    pub id: &'static [u8; 12],
    /// CPUID leaf 1 EAX: stepping, model, family (with their extended parts).
    pub signature: u32,
    /// CPUID leaves 0x80000002-4.
    pub brand: &'static [u8; 48],
    pub sysenter: Sysenter,
}

/// The models, one row a vendor.
pub static MODELS: [CpuModel; 2] = [
    CpuModel {
        vendor: Vendor::Intel,
        name: "intel",
        id: b"GenuineIntel",
        // Family 6, model 0x5f, stepping 1: Denverton, the core Unicorn emulates.
        signature: 0x0005_06f1,
        brand: b"ringsim virtual CPU (Intel, Denverton core)\0\0\0\0\0",
        sysenter: Sysenter::CompatSyscall,
    },
    CpuModel {
        vendor: Vendor::Amd,
        name: "amd",
        id: b"AuthenticAMD",
        // Family 0x17 (0xf + 0x8), model 0x31, stepping 0: Zen 2.
        signature: 0x0083_0f10,
        brand: b"ringsim virtual CPU (AMD, Zen 2 class)\0\0\0\0\0\0\0\0\0\0",
        sysenter: Sysenter::InvalidOpcode,
    },
];

impl Vendor {
    /// Every vendor, in `MODELS` order.
    pub const ALL: [Vendor; 2] = [Vendor::Intel, Vendor::Amd];

    /// The vendor's model.
    pub fn model(self) -> &'static CpuModel {
        MODELS
            .iter()
            .find(|m| m.vendor == self)
            .expect("every vendor has a model")
    }

    /// The vendor named `name` (`intel`, `amd`).
    pub fn from_name(name: &str) -> Option<Vendor> {
        MODELS.iter().find(|m| m.name == name).map(|m| m.vendor)
    }

    /// The vendor whose CPUID vendor string is `id`. Hygon's CPUs are AMD's Zen, licensed,
    /// and behave as AMD's.
    pub fn from_id(id: &[u8; 12]) -> Option<Vendor> {
        match id {
            b"HygonGenuine" => Some(Vendor::Amd),
            _ => MODELS.iter().find(|m| m.id == id).map(|m| m.vendor),
        }
    }
}

impl std::fmt::Display for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.model().name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_vendor_has_one_model_and_names_round_trip() {
        for vendor in Vendor::ALL {
            let model = vendor.model();
            assert_eq!(model.vendor, vendor);
            assert_eq!(Vendor::from_name(model.name), Some(vendor));
            assert_eq!(Vendor::from_id(model.id), Some(vendor));
            assert_eq!(vendor.to_string(), model.name);
        }
        assert_eq!(Vendor::from_name("via"), None);
    }

    #[test]
    fn brands_are_nul_terminated() {
        for model in MODELS {
            assert_eq!(model.brand.last(), Some(&0));
        }
    }
}
