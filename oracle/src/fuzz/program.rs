//! A batch of fuzz sequences as one static x86-64 program. Each sequence starts from its own
//! registers, flags and scratch buffer, runs straight through, and has its registers, flags
//! and buffer stored; the program ends by writing every record to stdout. So one process
//! runs many sequences, and the same bytes run natively, at ring 3 and translated at ring 0
//! through the real simulator and translator.

use iced_x86::code_asm::*;
use iced_x86::BlockEncoderOptions;

/// Where the code is loaded.
const CODE: u64 = 0x40_1000;
/// Where the data segment is loaded: below 2 GiB, so code reaches it with absolute
/// 32-bit displacements.
const DATA: u64 = 0x80_0000;
/// The stack the program stores flags through, between sequences.
const STACK_BYTES: u64 = 4096;
/// Each sequence's own stack: RSP starts in its middle, and what is pushed there is compared.
pub const SEQUENCE_STACK_BYTES: usize = 256;
/// Each sequence's scratch buffer: RBP points at it; memory operands stay inside.
pub const BUFFER_BYTES: usize = 256;
pub const XMM_REGISTERS: usize = 8;
/// What a sequence leaves: its buffer, the 16 general registers, RFLAGS, xmm0-7.
pub const RECORD_BYTES: usize =
    SEQUENCE_STACK_BYTES + BUFFER_BYTES + 16 * 8 + 8 + XMM_REGISTERS * 16;
/// Each sequence's data: its record, then its xmm start values; a multiple of 16, so that
/// every buffer is 16-byte aligned as SSE memory operands need.
const STRIDE: usize = (RECORD_BYTES + XMM_REGISTERS * 16).next_multiple_of(16);
/// Offsets in a record.
pub const BUFFER_OFFSET: usize = SEQUENCE_STACK_BYTES;
pub const GPR_OFFSET: usize = BUFFER_OFFSET + BUFFER_BYTES;
pub const FLAGS_OFFSET: usize = GPR_OFFSET + 16 * 8;
pub const XMM_OFFSET: usize = FLAGS_OFFSET + 8;

/// The 16 general registers in the order they are stored.
pub const GPRS: [AsmRegister64; 16] = [
    rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15,
];
pub const GPR_NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];
const XMMS: [AsmRegisterXmm; XMM_REGISTERS] = [xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7];

/// Where a sequence starts from. RSP and RBP are set by the program (stack, buffer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub gprs: [u64; 16],
    /// Only the arithmetic flags (CF PF AF ZF SF OF) are taken.
    pub flags: u64,
    pub xmm: [[u8; 16]; XMM_REGISTERS],
    pub buffer: Vec<u8>,
}

/// A RIP-relative operand in a sequence's code, to be aimed at the sequence's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RipOperand {
    /// Offsets in the code of the 32-bit displacement and of the end of its instruction.
    pub displacement_at: usize,
    pub next_ip_at: usize,
    /// The buffer offset it names.
    pub buffer_offset: u64,
}

/// A sequence to run: its straight-line code, its RIP-relative operands, and its start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequence {
    pub code: Vec<u8>,
    pub rip_operands: Vec<RipOperand>,
    pub state: State,
}

/// The arithmetic flags, which a sequence starts with and which are compared.
pub const ARITHMETIC_FLAGS: u64 = 0x8d5;

fn record_address(index: usize) -> u64 {
    DATA + STACK_BYTES + (index * STRIDE) as u64
}

/// Where sequence `index`'s xmm start values are, after its record.
fn xmm_init_address(index: usize) -> u64 {
    record_address(index) + RECORD_BYTES as u64
}

fn absolute(address: u64) -> AsmMemoryOperand {
    qword_ptr(address)
}

/// The program that runs `sequences` in order and writes their records to stdout. It is
/// laid out twice: the first time tells where each sequence's code lands, so that its
/// RIP-relative operands can be aimed at its buffer the second time.
pub fn build(sequences: &[Sequence]) -> Result<Vec<u8>, IcedError> {
    let placed = assemble(sequences)?.1;
    let aimed: Vec<Sequence> = sequences
        .iter()
        .zip(placed)
        .enumerate()
        .map(|(index, (sequence, at))| {
            let mut code = sequence.code.clone();
            for rip in &sequence.rip_operands {
                let target = record_address(index) + (BUFFER_OFFSET as u64) + rip.buffer_offset;
                let displacement = target.wrapping_sub(at + rip.next_ip_at as u64) as i32;
                code[rip.displacement_at..rip.displacement_at + 4]
                    .copy_from_slice(&displacement.to_le_bytes());
            }
            Sequence {
                code,
                ..sequence.clone()
            }
        })
        .collect();
    let code = assemble(&aimed)?.0;
    Ok(elf(&code, &data(sequences)))
}

/// The program's code, and where each sequence's code starts.
fn assemble(sequences: &[Sequence]) -> Result<(Vec<u8>, Vec<u64>), IcedError> {
    let mut a = CodeAssembler::new(64)?;
    let mut starts = Vec::new();
    for (index, sequence) in sequences.iter().enumerate() {
        let record = record_address(index);
        let state = &sequence.state;
        a.mov(rsp, record + (SEQUENCE_STACK_BYTES / 2) as u64)?;
        for (k, xmm) in XMMS.iter().enumerate() {
            a.movdqu(*xmm, xmmword_ptr(xmm_init_address(index) + 16 * k as u64))?;
        }
        a.push((state.flags & ARITHMETIC_FLAGS) as i32)?;
        a.popfq()?;
        for (k, gpr) in GPRS.iter().enumerate() {
            match *gpr {
                r if r == rsp => {}
                r if r == rbp => a.mov(rbp, record + BUFFER_OFFSET as u64)?,
                r => a.mov(r, state.gprs[k])?,
            }
        }
        let mut start = a.create_label();
        a.set_label(&mut start)?;
        a.db(&sequence.code)?;
        starts.push(start);
        for (k, gpr) in GPRS.iter().enumerate() {
            a.mov(absolute(record + (GPR_OFFSET + 8 * k) as u64), *gpr)?;
        }
        a.mov(rsp, DATA + STACK_BYTES / 2)?;
        a.pushfq()?;
        a.pop(rax)?;
        a.mov(absolute(record + FLAGS_OFFSET as u64), rax)?;
        for (k, xmm) in XMMS.iter().enumerate() {
            a.movdqu(xmmword_ptr(record + (XMM_OFFSET + 16 * k) as u64), *xmm)?;
        }
    }
    // write(1, records, n) until all is written, then exit_group(0).
    let total = sequences.len() * STRIDE;
    a.mov(rsi, record_address(0))?;
    a.mov(rdx, total as u64)?;
    let mut again = a.create_label();
    let mut done = a.create_label();
    a.set_label(&mut again)?;
    a.test(rdx, rdx)?;
    a.jz(done)?;
    a.mov(eax, 1)?;
    a.mov(edi, 1)?;
    a.syscall()?;
    a.test(rax, rax)?;
    a.js(done)?;
    a.add(rsi, rax)?;
    a.sub(rdx, rax)?;
    a.jmp(again)?;
    a.set_label(&mut done)?;
    a.mov(eax, 231)?;
    a.xor(edi, edi)?;
    a.syscall()?;
    let result = a.assemble_options(CODE, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS)?;
    let starts = starts
        .iter()
        .map(|label| result.label_ip(label))
        .collect::<Result<_, _>>()?;
    Ok((result.inner.code_buffer, starts))
}

/// The data segment: the flags stack, then per sequence its stack, buffer, record space and
/// xmm values.
fn data(sequences: &[Sequence]) -> Vec<u8> {
    let mut data = vec![0u8; (record_address(sequences.len()) - DATA) as usize];
    for (index, sequence) in sequences.iter().enumerate() {
        let record = (record_address(index) - DATA) as usize;
        let buffer = record + BUFFER_OFFSET;
        data[buffer..buffer + BUFFER_BYTES].copy_from_slice(&sequence.state.buffer);
        let xmm = (xmm_init_address(index) - DATA) as usize;
        for (k, value) in sequence.state.xmm.iter().enumerate() {
            data[xmm + 16 * k..xmm + 16 * (k + 1)].copy_from_slice(value);
        }
    }
    data
}

/// The program's output: each sequence's record, what its buffer and registers became.
pub fn records(output: &[u8], sequences: usize) -> Option<Vec<&[u8]>> {
    (output.len() == sequences * STRIDE).then(|| {
        output
            .chunks(STRIDE)
            .map(|chunk| &chunk[..RECORD_BYTES])
            .collect()
    })
}

/// A minimal static ELF: the headers and code in one read-execute segment at 0x400000
/// (code at 0x401000), the data in one read-write segment at `DATA`.
fn elf(code: &[u8], data: &[u8]) -> Vec<u8> {
    const PAGE: usize = 0x1000;
    let code_end = PAGE + code.len();
    let data_offset = code_end.next_multiple_of(PAGE);
    let mut out = Vec::with_capacity(data_offset + data.len());
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&CODE.to_le_bytes()); // entry
    out.extend_from_slice(&64u64.to_le_bytes()); // program headers
    out.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    out.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 2, 64, 0, 0] {
        out.extend_from_slice(&half.to_le_bytes());
    }
    program_header(&mut out, 5, 0, 0x40_0000, code_end);
    program_header(&mut out, 6, data_offset, DATA, data.len());
    out.resize(PAGE, 0);
    out.extend_from_slice(code);
    out.resize(data_offset, 0);
    out.extend_from_slice(data);
    out
}

/// Appends a PT_LOAD program header.
fn program_header(out: &mut Vec<u8>, flags: u32, offset: usize, address: u64, size: usize) {
    out.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    out.extend_from_slice(&flags.to_le_bytes());
    for word in [
        offset as u64,
        address,
        address,
        size as u64,
        size as u64,
        0x1000,
    ] {
        out.extend_from_slice(&word.to_le_bytes());
    }
}
