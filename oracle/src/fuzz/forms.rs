//! The instruction forms the fuzzer draws from: a curated table, each form a small piece of
//! code with random registers, immediates and memory operands. Memory operands are
//! `[rbp + disp]` inside the sequence's scratch buffer; RBP and RSP are never written except
//! by push and pop. Only what the simulated CPU advertises (SSE through SSE4.2, POPCNT,
//! CX16; no AVX, BMI or LZCNT) is used, and nothing faults: divisions are set up so that
//! they cannot. RIP-relative operands are assembled as if the buffer were at `RIP_MARK`,
//! and re-aimed at the real buffer when the program is laid out (`program`).

use iced_x86::code_asm::*;
use iced_x86::{Code, Instruction, MemoryOperand, Register};
use rand::Rng;
use rand_chacha::ChaCha20Rng;

use super::program::BUFFER_BYTES;

/// Random operands for one form.
pub struct Operands<'r> {
    pub rng: &'r mut ChaCha20Rng,
}

/// Registers a form may write: all but RSP (the stack) and RBP (the buffer).
const FREE64: [AsmRegister64; 14] = [
    rax, rcx, rdx, rbx, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15,
];
const FREE32: [AsmRegister32; 14] = [
    eax, ecx, edx, ebx, esi, edi, r8d, r9d, r10d, r11d, r12d, r13d, r14d, r15d,
];
const FREE8: [AsmRegister8; 14] = [
    al, cl, dl, bl, sil, dil, r8b, r9b, r10b, r11b, r12b, r13b, r14b, r15b,
];
const XMM: [AsmRegisterXmm; 8] = [xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7];

impl Operands<'_> {
    fn index(&mut self) -> usize {
        self.rng.random_range(0..FREE64.len())
    }
    fn r64(&mut self) -> AsmRegister64 {
        FREE64[self.index()]
    }
    fn r32(&mut self) -> AsmRegister32 {
        FREE32[self.index()]
    }
    fn r8(&mut self) -> AsmRegister8 {
        FREE8[self.index()]
    }
    fn xmm(&mut self) -> AsmRegisterXmm {
        XMM[self.rng.random_range(0..XMM.len())]
    }
    fn two_xmm(&mut self) -> (AsmRegisterXmm, AsmRegisterXmm) {
        let d = self.rng.random_range(0..XMM.len());
        let s = (d + self.rng.random_range(1..XMM.len())) % XMM.len();
        (XMM[d], XMM[s])
    }
    fn imm8(&mut self) -> i32 {
        self.rng.random_range(0..256)
    }
    fn imm32(&mut self) -> i32 {
        match self.rng.random_range(0..4) {
            0 => 0,
            1 => -1,
            2 => self.rng.random_range(-128..128),
            _ => self.rng.random(),
        }
    }
    fn count(&mut self, bits: u32) -> u32 {
        self.rng.random_range(1..bits)
    }
    /// A displacement into the buffer, aligned to `align`, leaving `size` bytes.
    fn displacement(&mut self, align: usize, size: usize) -> i32 {
        (self.rng.random_range(0..(BUFFER_BYTES - size) / align) * align) as i32
    }
    fn m64(&mut self) -> AsmMemoryOperand {
        qword_ptr(rbp + self.displacement(8, 8))
    }
    fn m32(&mut self) -> AsmMemoryOperand {
        dword_ptr(rbp + self.displacement(4, 4))
    }
    /// 16-byte aligned, as legacy SSE memory operands must be.
    fn m128(&mut self) -> AsmMemoryOperand {
        xmmword_ptr(rbp + self.displacement(16, 16))
    }
}

/// Where a RIP-relative operand's buffer is taken to be when a form is assembled at 0.
pub const RIP_MARK: u64 = 0x1000_0000;

impl Operands<'_> {
    /// `[rip + ...]` naming a `size`-byte, `size`-aligned slot of the buffer.
    fn rip(&mut self, size: usize) -> MemoryOperand {
        let offset = self.displacement(size, size) as u64;
        MemoryOperand::with_base_displ(Register::RIP, (RIP_MARK + offset) as i64)
    }
}

/// Adds an instruction built with iced's constructors (for RIP-relative operands).
fn built(
    a: &mut CodeAssembler,
    instruction: Result<Instruction, IcedError>,
) -> Result<(), IcedError> {
    a.add_instruction(instruction?)
}

type Emit = fn(&mut CodeAssembler, &mut Operands) -> Result<(), IcedError>;

/// One row of the table.
pub struct Form {
    pub name: &'static str,
    pub emit: Emit,
}

const fn form(name: &'static str, emit: Emit) -> Form {
    Form { name, emit }
}

/// Condition codes for cmov and setcc, by number.
fn cmov(
    a: &mut CodeAssembler,
    cc: u32,
    d: AsmRegister64,
    s: AsmRegister64,
) -> Result<(), IcedError> {
    [
        CodeAssembler::cmovo,
        CodeAssembler::cmovno,
        CodeAssembler::cmovb,
        CodeAssembler::cmovae,
        CodeAssembler::cmove,
        CodeAssembler::cmovne,
        CodeAssembler::cmovbe,
        CodeAssembler::cmova,
        CodeAssembler::cmovs,
        CodeAssembler::cmovns,
        CodeAssembler::cmovp,
        CodeAssembler::cmovnp,
        CodeAssembler::cmovl,
        CodeAssembler::cmovge,
        CodeAssembler::cmovle,
        CodeAssembler::cmovg,
    ][cc as usize](a, d, s)
}

fn setcc(a: &mut CodeAssembler, cc: u32, d: AsmRegister8) -> Result<(), IcedError> {
    [
        CodeAssembler::seto,
        CodeAssembler::setno,
        CodeAssembler::setb,
        CodeAssembler::setae,
        CodeAssembler::sete,
        CodeAssembler::setne,
        CodeAssembler::setbe,
        CodeAssembler::seta,
        CodeAssembler::sets,
        CodeAssembler::setns,
        CodeAssembler::setp,
        CodeAssembler::setnp,
        CodeAssembler::setl,
        CodeAssembler::setge,
        CodeAssembler::setle,
        CodeAssembler::setg,
    ][cc as usize](a, d)
}

/// Every form, by group.
pub static FORMS: &[Form] = &[
    // Integer ALU.
    form("add r64, r64", |a, o| a.add(o.r64(), o.r64())),
    form("adc r64, r64", |a, o| a.adc(o.r64(), o.r64())),
    form("sub r32, r32", |a, o| a.sub(o.r32(), o.r32())),
    form("sbb r64, r64", |a, o| a.sbb(o.r64(), o.r64())),
    form("and r64, imm32", |a, o| a.and(o.r64(), o.imm32())),
    form("or r32, imm32", |a, o| a.or(o.r32(), o.imm32())),
    form("xor r64, m64", |a, o| a.xor(o.r64(), o.m64())),
    form("add m64, r64", |a, o| a.add(o.m64(), o.r64())),
    form("cmp r64, r64", |a, o| a.cmp(o.r64(), o.r64())),
    form("test r32, imm32", |a, o| a.test(o.r32(), o.imm32())),
    form("inc r64", |a, o| a.inc(o.r64())),
    form("dec m32", |a, o| a.dec(o.m32())),
    form("neg r64", |a, o| a.neg(o.r64())),
    form("not r32", |a, o| a.not(o.r32())),
    form("adc r8, r8", |a, o| a.adc(o.r8(), o.r8())),
    // Shifts and rotates.
    form("shl r64, imm8", |a, o| a.shl(o.r64(), o.count(64))),
    form("shr r32, imm8", |a, o| a.shr(o.r32(), o.count(32))),
    form("sar r64, imm8", |a, o| a.sar(o.r64(), o.count(64))),
    form("rol r64, imm8", |a, o| a.rol(o.r64(), o.count(64))),
    form("ror r32, 1", |a, o| a.ror(o.r32(), 1)),
    form("rcl r64, imm8", |a, o| a.rcl(o.r64(), o.count(64))),
    form("rcr r32, imm8", |a, o| a.rcr(o.r32(), o.count(32))),
    form("shl r64, cl", |a, o| a.shl(o.r64(), cl)),
    form("sar r32, cl", |a, o| a.sar(o.r32(), cl)),
    form("shld r64, r64, imm8", |a, o| {
        a.shld(o.r64(), o.r64(), o.count(64))
    }),
    form("shrd r32, r32, cl", |a, o| a.shrd(o.r32(), o.r32(), cl)),
    // Multiplication.
    form("mul r64", |a, o| a.mul(o.r64())),
    form("imul r64", |a, o| a.imul(o.r64())),
    form("imul r64, r64", |a, o| a.imul_2(o.r64(), o.r64())),
    form("imul r32, r32, imm32", |a, o| {
        a.imul_3(o.r32(), o.r32(), o.imm32())
    }),
    form("mul m32", |a, o| a.mul(o.m32())),
    // Division, made safe: a zero high half and a divisor of at least 1 (unsigned); a
    // sign-extended dividend and a positive divisor (signed).
    form("div r64", |a, o| {
        let d = [rbx, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15][o.rng.random_range(0..11)];
        a.xor(edx, edx)?;
        a.or(d, 1)?;
        a.div(d)
    }),
    form("idiv r64", |a, o| {
        let d = [rbx, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15][o.rng.random_range(0..11)];
        a.shr(d, 1)?;
        a.or(d, 1)?;
        a.cqo()?;
        a.idiv(d)
    }),
    form("div r32", |a, o| {
        let d = [ebx, esi, edi, r8d, r9d, r10d, r11d][o.rng.random_range(0..7)];
        a.xor(edx, edx)?;
        a.or(d, 1)?;
        a.div(d)
    }),
    form("idiv r32", |a, o| {
        let d = [ebx, esi, edi, r8d, r9d, r10d, r11d][o.rng.random_range(0..7)];
        a.shr(d, 1)?;
        a.or(d, 1)?;
        a.cdq()?;
        a.idiv(d)
    }),
    // Bit operations.
    form("bt r64, r64", |a, o| a.bt(o.r64(), o.r64())),
    form("bts r64, imm8", |a, o| a.bts(o.r64(), o.count(64))),
    form("btr r32, r32", |a, o| a.btr(o.r32(), o.r32())),
    form("btc m64, imm8", |a, o| a.btc(o.m64(), o.count(64))),
    form("bsf r64, r64 (nonzero)", |a, o| {
        let s = o.r64();
        a.or(s, 0x10)?;
        a.bsf(o.r64(), s)
    }),
    form("bsr r32, r32 (nonzero)", |a, o| {
        let s = o.r32();
        a.or(s, 0x10)?;
        a.bsr(o.r32(), s)
    }),
    form("popcnt r64, r64", |a, o| a.popcnt(o.r64(), o.r64())),
    form("bswap r64", |a, o| a.bswap(o.r64())),
    form("bswap r32", |a, o| a.bswap(o.r32())),
    // Moves, conditions, addresses.
    form("cmovcc r64, r64", |a, o| {
        let cc = o.rng.random_range(0..16);
        cmov(a, cc, o.r64(), o.r64())
    }),
    form("setcc r8", |a, o| {
        let cc = o.rng.random_range(0..16);
        setcc(a, cc, o.r8())
    }),
    form("lea r64, [r64 + r64*s + d]", |a, o| {
        let scale = [1, 2, 4, 8][o.rng.random_range(0..4)];
        let d = o.imm32();
        a.lea(o.r64(), qword_ptr(o.r64() + o.r64() * scale + d))
    }),
    form("movzx r32, r8", |a, o| a.movzx(o.r32(), o.r8())),
    form("movsxd r64, m32", |a, o| a.movsxd(o.r64(), o.m32())),
    form("mov m64, imm32", |a, o| a.mov(o.m64(), o.imm32())),
    // Indexed operands, the index kept inside the buffer.
    form("mov r64, [rbp + r64] (index in the buffer)", |a, o| {
        let index = o.r64();
        a.and(index, 0xf8)?;
        a.mov(o.r64(), qword_ptr(rbp + index))
    }),
    form(
        "add [rbp + r64*2 + 8], r32 (index in the buffer)",
        |a, o| {
            let index = o.r64();
            a.and(index, 0x70)?;
            a.add(dword_ptr(rbp + index * 2 + 8), o.r32())
        },
    ),
    // RIP-relative operands, an immediate after some. Not shld or shrd: Unicorn computes
    // their RIP-relative address from the wrong instruction end (DESIGN.md lists it;
    // regression unicorn-shld-rip-relative.json), which would swamp every campaign.
    form("mov r64, [rip]", |a, o| {
        let (d, m) = (o.r64().into(), o.rip(8));
        built(a, Instruction::with2(Code::Mov_r64_rm64, d, m))
    }),
    form("imul r64, [rip], imm32", |a, o| {
        let (d, m, i) = (o.r64().into(), o.rip(8), o.imm32());
        built(a, Instruction::with3(Code::Imul_r64_rm64_imm32, d, m, i))
    }),
    form("cmp [rip], imm8", |a, o| {
        let (m, i) = (o.rip(8), o.imm8() - 128);
        built(a, Instruction::with2(Code::Cmp_rm64_imm8, m, i))
    }),
    form("bts [rip], imm8", |a, o| {
        let (m, n) = (o.rip(8), o.count(64));
        built(a, Instruction::with2(Code::Bts_rm64_imm8, m, n))
    }),
    form("pshufd xmm, [rip], imm8", |a, o| {
        let (d, m, i) = (o.xmm().into(), o.rip(16), o.imm8());
        built(
            a,
            Instruction::with3(Code::Pshufd_xmm_xmmm128_imm8, d, m, i),
        )
    }),
    // Stack.
    form("push r64", |a, o| a.push(o.r64())),
    form("pop r64", |a, o| a.pop(o.r64())),
    form("push imm32", |a, o| a.push(o.imm32())),
    form("push m64", |a, o| a.push(o.m64())),
    // Exchanges and atomics.
    form("xchg r64, r64", |a, o| a.xchg(o.r64(), o.r64())),
    form("xchg m64, r64", |a, o| a.xchg(o.m64(), o.r64())),
    form("xadd r32, r32", |a, o| a.xadd(o.r32(), o.r32())),
    form("cmpxchg r64, r64", |a, o| a.cmpxchg(o.r64(), o.r64())),
    form("lock cmpxchg m64, r64", |a, o| {
        a.lock().cmpxchg(o.m64(), o.r64())
    }),
    form("lock xadd m32, r32", |a, o| a.lock().xadd(o.m32(), o.r32())),
    form("lock add m64, r64", |a, o| a.lock().add(o.m64(), o.r64())),
    form("lock cmpxchg16b m128", |a, o| a.lock().cmpxchg16b(o.m128())),
    // String operations, with small counts inside the buffer.
    form("rep movsb", |a, o| {
        point_strings(a, o, 1)?;
        a.rep().movsb()
    }),
    form("rep stosq", |a, o| {
        point_strings(a, o, 8)?;
        a.rep().stosq()
    }),
    form("repe cmpsb", |a, o| {
        point_strings(a, o, 1)?;
        a.repe().cmpsb()
    }),
    form("repne scasb", |a, o| {
        point_strings(a, o, 1)?;
        a.repne().scasb()
    }),
    form("lodsd", |a, o| {
        point_strings(a, o, 4)?;
        a.lodsd()
    }),
    // SSE2 integer.
    form("paddb xmm, xmm", |a, o| a.paddb(o.xmm(), o.xmm())),
    form("psubq xmm, m128", |a, o| a.psubq(o.xmm(), o.m128())),
    form("pmullw xmm, xmm", |a, o| a.pmullw(o.xmm(), o.xmm())),
    form("pmuludq xmm, xmm", |a, o| a.pmuludq(o.xmm(), o.xmm())),
    form("pmaddwd xmm, xmm", |a, o| a.pmaddwd(o.xmm(), o.xmm())),
    form("pxor xmm, xmm", |a, o| a.pxor(o.xmm(), o.xmm())),
    form("pandn xmm, xmm", |a, o| a.pandn(o.xmm(), o.xmm())),
    form("pcmpeqd xmm, xmm", |a, o| a.pcmpeqd(o.xmm(), o.xmm())),
    form("pcmpgtb xmm, xmm", |a, o| a.pcmpgtb(o.xmm(), o.xmm())),
    form("pshufd xmm, xmm, imm8", |a, o| {
        a.pshufd(o.xmm(), o.xmm(), o.imm8())
    }),
    form("punpcklbw xmm, xmm", |a, o| a.punpcklbw(o.xmm(), o.xmm())),
    form("psllq xmm, imm8", |a, o| a.psllq(o.xmm(), o.imm8() & 0x7f)),
    form("psrad xmm, xmm", |a, o| a.psrad(o.xmm(), o.xmm())),
    form("packsswb xmm, xmm", |a, o| a.packsswb(o.xmm(), o.xmm())),
    form("psadbw xmm, xmm", |a, o| a.psadbw(o.xmm(), o.xmm())),
    form("pminub xmm, xmm", |a, o| a.pminub(o.xmm(), o.xmm())),
    form("pmovmskb r32, xmm", |a, o| a.pmovmskb(o.r32(), o.xmm())),
    form("movq r64, xmm", |a, o| a.movq(o.r64(), o.xmm())),
    form("movd xmm, r32", |a, o| a.movd(o.xmm(), o.r32())),
    form("movdqa m128, xmm", |a, o| a.movdqa(o.m128(), o.xmm())),
    // SSSE3.
    form("pshufb xmm, xmm", |a, o| a.pshufb(o.xmm(), o.xmm())),
    form("palignr xmm, xmm, imm8", |a, o| {
        a.palignr(o.xmm(), o.xmm(), o.imm8() & 0x1f)
    }),
    form("pabsw xmm, xmm", |a, o| a.pabsw(o.xmm(), o.xmm())),
    // Two distinct registers: Unicorn gets `phaddd x, x` wrong (it writes the destination
    // before it has read all of the source), regression unicorn-phaddd-same-register.json.
    form("phaddd xmm, xmm (distinct)", |a, o| {
        let (d, s) = o.two_xmm();
        a.phaddd(d, s)
    }),
    form("pmulhrsw xmm, xmm", |a, o| a.pmulhrsw(o.xmm(), o.xmm())),
    // SSE4.1.
    form("pmulld xmm, xmm", |a, o| a.pmulld(o.xmm(), o.xmm())),
    form("pminsd xmm, xmm", |a, o| a.pminsd(o.xmm(), o.xmm())),
    form("pblendw xmm, xmm, imm8", |a, o| {
        a.pblendw(o.xmm(), o.xmm(), o.imm8())
    }),
    form("ptest xmm, xmm", |a, o| a.ptest(o.xmm(), o.xmm())),
    form("pextrd r32, xmm, imm8", |a, o| {
        a.pextrd(o.r32(), o.xmm(), o.imm8() & 3)
    }),
    form("pinsrq xmm, r64, imm8", |a, o| {
        a.pinsrq(o.xmm(), o.r64(), o.imm8() & 1)
    }),
    form("pmovzxbw xmm, xmm", |a, o| a.pmovzxbw(o.xmm(), o.xmm())),
    form("roundps xmm, xmm, imm8", |a, o| {
        a.roundps(o.xmm(), o.xmm(), o.imm8() & 0xf)
    }),
    form("dpps xmm, xmm, imm8", |a, o| {
        a.dpps(o.xmm(), o.xmm(), o.imm8())
    }),
    // SSE4.2.
    form("pcmpgtq xmm, xmm", |a, o| a.pcmpgtq(o.xmm(), o.xmm())),
    form("crc32 r32, r32", |a, o| a.crc32(o.r32(), o.r32())),
    form("crc32 r64, m64", |a, o| a.crc32(o.r64(), o.m64())),
    form("pcmpistri xmm, xmm, imm8", |a, o| {
        a.pcmpistri(o.xmm(), o.xmm(), o.imm8() & 0x7f)
    }),
    // Floating point.
    form("addps xmm, xmm", |a, o| a.addps(o.xmm(), o.xmm())),
    form("mulpd xmm, m128", |a, o| a.mulpd(o.xmm(), o.m128())),
    form("divps xmm, xmm", |a, o| a.divps(o.xmm(), o.xmm())),
    form("sqrtsd xmm, xmm", |a, o| a.sqrtsd(o.xmm(), o.xmm())),
    form("minps xmm, xmm", |a, o| a.minps(o.xmm(), o.xmm())),
    form("maxsd xmm, xmm", |a, o| a.maxsd(o.xmm(), o.xmm())),
    form("cmpps xmm, xmm, imm8", |a, o| {
        a.cmpps(o.xmm(), o.xmm(), o.imm8() & 7)
    }),
    form("ucomisd xmm, xmm", |a, o| a.ucomisd(o.xmm(), o.xmm())),
    form("cvtsi2sd xmm, r64", |a, o| a.cvtsi2sd(o.xmm(), o.r64())),
    form("cvttsd2si r64, xmm", |a, o| a.cvttsd2si(o.r64(), o.xmm())),
    form("cvtps2dq xmm, xmm", |a, o| a.cvtps2dq(o.xmm(), o.xmm())),
    form("cvtdq2pd xmm, xmm", |a, o| a.cvtdq2pd(o.xmm(), o.xmm())),
    form("shufps xmm, xmm, imm8", |a, o| {
        a.shufps(o.xmm(), o.xmm(), o.imm8())
    }),
    form("unpckhpd xmm, xmm", |a, o| a.unpckhpd(o.xmm(), o.xmm())),
    form("andnps xmm, xmm", |a, o| a.andnps(o.xmm(), o.xmm())),
    form("haddps xmm, xmm", |a, o| a.haddps(o.xmm(), o.xmm())),
];

/// RSI and RDI somewhere in the buffer and a small count in ECX, so that `size`-byte
/// string operations stay inside it.
fn point_strings(a: &mut CodeAssembler, o: &mut Operands, size: usize) -> Result<(), IcedError> {
    let n = o.rng.random_range(1..9usize);
    let room = BUFFER_BYTES - n * size;
    let from = o.rng.random_range(0..=room) as i32;
    let to = o.rng.random_range(0..=room) as i32;
    a.lea(rsi, ptr(rbp + from))?;
    a.lea(rdi, ptr(rbp + to))?;
    a.mov(ecx, n as u32)
}

/// The encoding of `form` with fresh random operands. Every form is position-independent.
pub fn assemble(form: &Form, rng: &mut ChaCha20Rng) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).expect("64-bit assembler");
    (form.emit)(&mut a, &mut Operands { rng }).unwrap_or_else(|e| panic!("{}: {e}", form.name));
    a.assemble(0)
        .unwrap_or_else(|e| panic!("{}: {e}", form.name))
}
