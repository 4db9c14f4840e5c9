//! One translated example per rule of the table: the guest block's disassembly beside its
//! translation's, as insta snapshots (`cargo insta review` to accept a change).

use iced_x86::code_asm::*;
use translator::{disassemble, Class, CodeSource, Runtime, TranslatedBlock, Translator, RULES};

const RUNTIME: Runtime = Runtime {
    dispatch: 0xffff_ffff_8000_0000,
    syscall_entry: 0xffff_ffff_8000_0200,
    compat_entry: 0xffff_ffff_8000_0280,
    fault: 0xffff_ffff_8000_0300,
    emulate: 0xffff_ffff_8000_0380,
    lookup: 0xffff_ffff_8000_0400,
    target: 0xffff_ffff_8001_0000,
    next: 0xffff_ffff_8001_0038,
    user_rsp: 0xffff_ffff_8001_0008,
    spill: 0xffff_ffff_8001_0010,
    fs_base: 0xffff_ffff_8001_0018,
    gs_base: 0xffff_ffff_8001_0020,
    fault_rip: 0xffff_ffff_8001_0028,
    fault_kind: 0xffff_ffff_8001_0030,
    kernel_stack_top: 0xffff_ffff_8002_0000,
};
const CACHE: u64 = 0xffff_ffff_9000_0000;
const GUEST: u64 = 0x40_1000;

/// Guest code in a byte buffer at a fixed address; nothing past it can be fetched.
struct Bytes(u64, Vec<u8>);

impl CodeSource for Bytes {
    fn read_code(&self, addr: u64, buf: &mut [u8]) -> usize {
        let Some(offset) = addr.checked_sub(self.0) else {
            return 0;
        };
        let available = self.1.len().saturating_sub(offset as usize);
        let n = available.min(buf.len());
        buf[..n].copy_from_slice(&self.1[offset as usize..offset as usize + n]);
        n
    }
}

fn assemble_at(
    at: u64,
    build: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    build(&mut a).unwrap();
    a.assemble(at).unwrap()
}

fn translate_at(at: u64, guest: &[u8]) -> TranslatedBlock {
    Translator::new(RUNTIME)
        .unwrap()
        .translate(&Bytes(at, guest.to_vec()), at, CACHE)
        .unwrap()
}

fn report(guest: &[u8], at: u64, block: &TranslatedBlock) -> String {
    let classes: Vec<String> = block
        .classes
        .iter()
        .map(|(a, c)| format!("{a:#x} {c:?}"))
        .collect();
    format!(
        "guest ({} instructions):\n{}\nclasses: {}\ntranslated ({} instructions):\n{}exits: {:x?}\n",
        block.guest_instructions,
        disassemble(&guest[..(block.guest_end - at) as usize], at),
        classes.join(", "),
        block.translated_instructions,
        block.disassemble(),
        block.exits.iter().map(|x| x.guest_target).collect::<Vec<_>>(),
    )
}

fn check(
    name: &str,
    class: Class,
    build: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) {
    check_at(name, class, GUEST, build);
}

fn check_at(
    name: &str,
    class: Class,
    at: u64,
    build: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) {
    check_bytes(name, class, at, &assemble_at(at, build));
}

#[test]
fn plain_instructions_are_copied_and_sandboxed() {
    check("plain", Class::Plain, |a| {
        a.mov(rax, qword_ptr(rbx + rcx * 8 + 16))?;
        a.add(dword_ptr(rdi), 1)?;
        a.mov(rdx, qword_ptr(rsp + 8))?;
        a.lea(rsi, qword_ptr(rbx + 64))?;
        a.mov(rax, qword_ptr(0x4a_0000u64).fs())?;
        a.mov(eax, dword_ptr(rax).fs())?;
        a.rep().movsb()?;
        a.add(rsp, 0x20)?;
        a.ret()
    });
}

/// `mov rax, [rip + 0x1000]; lea rcx, [rip + 0x2000]; ret`, as a compiler emits them.
const RIP_RELATIVE: [u8; 15] = [
    0x48, 0x8b, 0x05, 0x00, 0x10, 0x00, 0x00, 0x48, 0x8d, 0x0d, 0x00, 0x20, 0x00, 0x00, 0xc3,
];

fn check_bytes(name: &str, class: Class, at: u64, guest: &[u8]) {
    let block = translate_at(at, guest);
    assert!(
        block.classes.iter().any(|(_, c)| *c == class),
        "{name}: no {class:?} in {:?}",
        block.classes
    );
    let description = RULES.iter().find(|r| r.class == class).unwrap().description;
    insta::with_settings!({ snapshot_path => "../../snapshots/translator", prepend_module_to_snapshot => false, description => description }, {
        insta::assert_snapshot!(name, report(guest, at, &block));
    });
}

#[test]
fn rip_relative_operands_keep_addressing_guest_data() {
    check_bytes("rip_relative_low", Class::Plain, GUEST, &RIP_RELATIVE);
    check_bytes(
        "rip_relative_high",
        Class::Plain,
        0x7fff_f7d0_1000,
        &RIP_RELATIVE,
    );
    check("absolute_moffs", Class::Plain, |a| {
        a.mov(rax, qword_ptr(0x7fff_f7e0_0000u64))?;
        a.ret()
    });
}

#[test]
fn a_static_kernel_address_is_a_fault() {
    check("absolute_kernel_address", Class::Plain, |a| {
        a.mov(rax, qword_ptr(0xffff_ffff_8000_0000u64))
    });
}

#[test]
fn direct_branches_exit_to_their_targets() {
    check("direct_jump", Class::DirectJump, |a| {
        let mut there = a.create_label();
        a.nop()?;
        a.jmp(there)?;
        a.set_label(&mut there)?;
        a.ret()
    });
    check("conditional_jump", Class::ConditionalJump, |a| {
        let mut there = a.create_label();
        a.cmp(rax, rbx)?;
        a.jne(there)?;
        a.set_label(&mut there)?;
        a.ret()
    });
    check("counter_jump", Class::CounterJump, |a| {
        let mut there = a.create_label();
        a.jrcxz(there)?;
        a.set_label(&mut there)?;
        a.ret()
    });
    check("direct_call", Class::DirectCall, |a| a.call(0x40_2000u64));
    check_at(
        "direct_call_high",
        Class::DirectCall,
        0x7fff_f7d0_1000,
        |a| a.call(0x7fff_f7d0_2000u64),
    );
}

#[test]
fn indirect_branches_go_through_the_lookup() {
    check("indirect_jump_register", Class::IndirectJump, |a| {
        a.jmp(rax)
    });
    check("indirect_jump_memory", Class::IndirectJump, |a| {
        a.jmp(qword_ptr(rax + rbx * 8))
    });
    check("indirect_call", Class::IndirectCall, |a| {
        a.call(qword_ptr(rsp + 8))
    });
    check("return", Class::Return, |a| a.ret());
    check("return_release", Class::Return, |a| a.ret_1(16));
}

#[test]
fn syscall_becomes_a_call_into_the_kernel() {
    check("syscall", Class::Syscall, |a| {
        a.mov(eax, 39)?;
        a.syscall()
    });
}

#[test]
fn sensitive_instructions_get_their_ring3_outcome() {
    check("cpuid_rdtsc", Class::AnsweredByMachine, |a| {
        a.cpuid()?;
        a.rdtsc()?;
        a.ret()
    });
    check("segment_read", Class::SegmentRead, |a| {
        a.mov(ax, cs)?;
        a.mov(word_ptr(rbx), ss)?;
        a.ret()
    });
    check("popf", Class::Popf, |a| {
        a.popfq()?;
        a.ret()
    });
    check("int3", Class::Breakpoint, |a| a.int3());
    check("int1", Class::DebugTrap, |a| a.int1());
    check("int_n", Class::SoftwareInterrupt, |a| a.int(0x21));
    check("int80", Class::Int80, |a| a.int(0x80));
    check("sysenter", Class::Sysenter, |a| a.sysenter());
    check("hlt", Class::Privileged, |a| a.hlt());
    check("mov_cr", Class::Privileged, |a| a.mov(rax, cr3));
    check("far_return", Class::FarTransfer, |a| a.retf());
    check("segment_load", Class::SegmentLoad, |a| a.mov(ds, ax));
}

#[test]
fn undecodable_and_unfetchable_code_faults() {
    let ud2 = translate_at(GUEST, &[0x0f, 0x0b, 0x48]);
    assert_eq!(
        ud2.classes,
        vec![(GUEST, Class::Plain)],
        "ud2 is copied (the CPU raises #UD) and ends the block"
    );
    let block = translate_at(GUEST, &[0x06, 0x90, 0x90]);
    assert_eq!(block.classes, vec![(GUEST, Class::Invalid)]);
    let cut = translate_at(GUEST, &[0x90, 0x48, 0x8b]);
    assert_eq!(
        cut.classes,
        vec![(GUEST, Class::Plain), (GUEST + 1, Class::FetchFault)]
    );
    let none = Translator::new(RUNTIME)
        .unwrap()
        .translate(&Bytes(GUEST, vec![]), GUEST, CACHE);
    assert_eq!(none, Err(translator::TranslateError::Unfetchable(GUEST)));
}

#[test]
fn translation_is_deterministic_and_maps_back() {
    let guest = assemble_at(GUEST, |a| {
        a.mov(rax, qword_ptr(rbx))?;
        a.add(rax, 1)?;
        a.ret()
    });
    let first = translate_at(GUEST, &guest);
    assert_eq!(first, translate_at(GUEST, &guest));
    assert_eq!(first.guest_address_of(CACHE), Some(GUEST));
    let second_start = CACHE + first.guest_boundaries[1].0 as u64;
    assert_eq!(first.guest_address_of(second_start), Some(GUEST + 3));
}

/// As at ring 3, where an RSP moved out of the user half faults only when the stack is
/// touched, the check of a moved RSP belongs to the next instruction: the move completes.
#[test]
fn a_moved_rsp_is_checked_as_part_of_the_next_instruction() {
    let guest = assemble_at(GUEST, |a| {
        a.mov(rsp, rax)?;
        a.push(rbx)?;
        a.ret()
    });
    let block = translate_at(GUEST, &guest);
    let listing = block.disassemble();
    let check = listing
        .lines()
        .find(|line| line.contains("bndcu   bnd0,rsp"))
        .expect("a check of RSP");
    let address = u64::from_str_radix(&check[..16], 16).unwrap();
    assert_eq!(
        block.guest_address_of(address),
        Some(GUEST + 3),
        "{listing}"
    );
}

#[test]
fn runtime_slots_are_addressed_sign_extended() {
    use iced_x86::{Decoder, DecoderOptions};
    let block = translate_at(GUEST, &[0xc3]);
    let mut decoder = Decoder::with_ip(64, &block.code, CACHE, DecoderOptions::MPX);
    let pop = decoder.decode();
    assert_eq!(pop.memory_displacement64(), RUNTIME.target, "{pop}");
    assert_eq!(pop.memory_base(), iced_x86::Register::None);
}

#[test]
fn segment_loads_and_far_transfers_go_to_the_simulator() {
    check("far_jump", Class::FarTransfer, |a| a.jmp(fword_ptr(rax)));
}

/// Where the sandbox has to spill a register to form an address, the block says which
/// translated instructions run with the guest's value in the slot: a fault there takes it
/// back. The copied guest instruction itself runs with every register the guest's.
#[test]
fn a_spilled_scratch_register_is_recorded_where_it_is_live() {
    let guest = assemble_at(GUEST, |a| {
        a.add(rax, qword_ptr(rbx + rcx * 8 + 16))?;
        a.ret()
    });
    let block = translate_at(GUEST, &guest);
    let listing = block.disassemble();
    let lines: Vec<&str> = listing.lines().collect();
    let offset_of = |line: usize| block.sources[line].0;
    let store = lines
        .iter()
        .position(|l| l.contains("[0FFFFFFFF80010010h],"))
        .unwrap();
    let load = lines
        .iter()
        .position(|l| l.contains(",[0FFFFFFFF80010010h]"))
        .unwrap();
    let copy = lines
        .iter()
        .position(|l| l.contains("rax,[rbx+rcx*8+10h]"))
        .unwrap();
    let at = |line: usize| block.spilled_at(CACHE + offset_of(line) as u64);
    let register = at(store + 1).expect("spilled after the store");
    let name = format!("{register:?}").to_lowercase();
    assert!(lines[store].contains(&format!("],{name}")), "{listing}");
    assert_eq!(at(store), None, "{listing}");
    assert_eq!(at(load), Some(register), "{listing}");
    assert_eq!(at(load + 1), None, "{listing}");
    assert_eq!(at(copy), None, "{listing}");
    assert_eq!(block.spills.len(), load - store, "{listing}");
}
