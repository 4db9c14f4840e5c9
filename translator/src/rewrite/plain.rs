//! Ordinary instructions: copied, with memory accesses sandboxed.

use iced_x86::Instruction;

use crate::emit::Emitter;
use crate::rewrite::sandbox;

pub fn copy(e: &mut Emitter, instruction: &Instruction) {
    sandbox::check_and_emit(e, *instruction);
}
