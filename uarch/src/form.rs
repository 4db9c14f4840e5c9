//! The key of a table row: an iced `Code` and the shape of its operands.
//!
//! One `Code` covers forms that cost very differently: `add rax, rbx` and `add [rax], rbx`
//! share `Add_rm64_r64`; `xor eax, eax` (a zero idiom, removed at rename) shares
//! `Xor_r32_rm32` with `xor eax, ebx`; `lock add` and `rep movsb` share their plain forms'
//! Codes. Each such shape gets its own row.

use iced_x86::{Code, Instruction, OpKind, Register};

/// The shape of an instruction's operands that its cost depends on beyond its `Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Form {
    /// No memory operand, and no register named twice.
    Registers,
    /// No memory operand, and some register named twice (`xor eax, eax`, `vpxor x1, x1, x0`):
    /// the zero and ones idioms some cores execute at rename, and plain forms like
    /// `add rax, rax` the models price as usual.
    SameRegister,
    /// An explicit memory operand.
    Memory,
    /// A `lock`-prefixed read-modify-write of memory.
    Locked,
    /// A `rep`, `repe` or `repne` string instruction.
    Repeated,
}

impl Form {
    /// Every form, in the order rows are sorted.
    pub const ALL: [Form; 5] = [
        Form::Registers,
        Form::SameRegister,
        Form::Memory,
        Form::Locked,
        Form::Repeated,
    ];

    /// The form of `instruction`.
    pub fn of(instruction: &Instruction) -> Form {
        if instruction.has_lock_prefix() {
            return Form::Locked;
        }
        if instruction.is_string_instruction()
            && (instruction.has_rep_prefix() || instruction.has_repne_prefix())
        {
            return Form::Repeated;
        }
        let mut registers = [Register::None; 5];
        let mut count = 0;
        for operand in 0..instruction.op_count() {
            match instruction.op_kind(operand) {
                OpKind::Memory => return Form::Memory,
                OpKind::Register => {
                    let register = instruction.op_register(operand);
                    if registers[..count].contains(&register) {
                        return Form::SameRegister;
                    }
                    registers[count] = register;
                    count += 1;
                }
                _ => {}
            }
        }
        Form::Registers
    }

    /// The form's name in the data files.
    pub const fn name(self) -> &'static str {
        match self {
            Form::Registers => "reg",
            Form::SameRegister => "same",
            Form::Memory => "mem",
            Form::Locked => "lock",
            Form::Repeated => "rep",
        }
    }

    /// The form a data file names `name`.
    pub fn by_name(name: &str) -> Option<Form> {
        Form::ALL.into_iter().find(|form| form.name() == name)
    }

    /// Where a row for (`code`, this form) lives in a dense table.
    pub const fn index(self, code: Code) -> usize {
        code as usize * Form::ALL.len() + self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::code_asm::*;

    /// Adds one instruction to an assembler.
    type Emit = fn(&mut CodeAssembler) -> Result<(), IcedError>;

    #[test]
    fn forms_of_one_code_differ_by_their_operands() -> Result<(), IcedError> {
        let cases: [(Emit, Form); 6] = [
            (|a| a.add(rax, rbx), Form::Registers),
            (|a| a.xor(eax, eax), Form::SameRegister),
            (|a| a.vpxor(xmm0, xmm1, xmm1), Form::SameRegister),
            (|a| a.add(qword_ptr(rax), rbx), Form::Memory),
            (|a| a.lock().add(qword_ptr(rax), rbx), Form::Locked),
            (|a| a.rep().movsb(), Form::Repeated),
        ];
        for (emit, form) in cases {
            let mut assembler = CodeAssembler::new(64)?;
            emit(&mut assembler)?;
            let instruction = assembler.instructions()[0];
            assert_eq!(Form::of(&instruction), form, "{instruction}");
        }
        Ok(())
    }

    #[test]
    fn names_round_trip_and_indexes_are_distinct() {
        for form in Form::ALL {
            assert_eq!(Form::by_name(form.name()), Some(form));
        }
        let indexes: Vec<usize> = Form::ALL
            .iter()
            .map(|form| form.index(Code::Add_rm64_r64))
            .collect();
        assert_eq!(
            indexes,
            (Form::ALL.len() * Code::Add_rm64_r64 as usize..)
                .take(Form::ALL.len())
                .collect::<Vec<_>>()
        );
    }
}
