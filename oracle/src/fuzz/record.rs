//! Comparing what two runs left of one sequence: every field that differs, not just the
//! first, so that a known bug in one field cannot hide a new one in another.

use std::fmt;

use super::hex;
use super::program::{self, BUFFER_OFFSET, FLAGS_OFFSET, GPR_OFFSET, XMM_OFFSET};

/// A part of a sequence's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The sequence's own stack.
    Stack,
    /// The scratch buffer.
    Buffer,
    /// A general register, by its index in `program::GPRS`.
    Gpr(usize),
    /// The arithmetic flags.
    Flags,
    Xmm(usize),
    /// The whole run: a program that did not run to its end.
    Run,
}

/// One field that differs, with both sides' bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDifference {
    pub field: Field,
    pub left: Vec<u8>,
    pub right: Vec<u8>,
    /// For `Flags`, the bits compared; for `Run`, the reason.
    pub note: String,
}

fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
    u64::from_le_bytes(w)
}

impl fmt::Display for FieldDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (l, r) = (&self.left, &self.right);
        let first = || l.iter().zip(r).position(|(x, y)| x != y).unwrap_or(0);
        match self.field {
            Field::Stack | Field::Buffer => {
                let name = if self.field == Field::Stack {
                    "stack"
                } else {
                    "buffer"
                };
                let i = first();
                write!(f, "{name} byte {i}: {:#04x} vs {:#04x}", l[i], r[i])
            }
            Field::Gpr(k) => write!(
                f,
                "{}: {:#x} vs {:#x}",
                program::GPR_NAMES[k],
                word(l),
                word(r)
            ),
            Field::Flags => write!(
                f,
                "rflags ({}): {:#x} vs {:#x}",
                self.note,
                word(l),
                word(r)
            ),
            Field::Xmm(k) => write!(f, "xmm{k}: {} vs {}", hex(l), hex(r)),
            Field::Run => write!(f, "{}", self.note),
        }
    }
}

/// The fields of a record, where each lies.
fn fields() -> Vec<(Field, std::ops::Range<usize>)> {
    let mut fields = vec![
        (Field::Stack, 0..program::SEQUENCE_STACK_BYTES),
        (
            Field::Buffer,
            BUFFER_OFFSET..BUFFER_OFFSET + program::BUFFER_BYTES,
        ),
    ];
    fields.extend((0..16).map(|k| (Field::Gpr(k), GPR_OFFSET + 8 * k..GPR_OFFSET + 8 * k + 8)));
    fields.push((Field::Flags, FLAGS_OFFSET..FLAGS_OFFSET + 8));
    fields.extend(
        (0..program::XMM_REGISTERS)
            .map(|k| (Field::Xmm(k), XMM_OFFSET + 16 * k..XMM_OFFSET + 16 * k + 16)),
    );
    fields
}

/// Every field in which two records differ; of the flags, only the arithmetic ones that
/// are not in `undefined`.
pub fn differences(a: &[u8], b: &[u8], undefined: u64) -> Vec<FieldDifference> {
    let compared = program::ARITHMETIC_FLAGS & !undefined;
    fields()
        .into_iter()
        .filter_map(|(field, range)| {
            let (mut left, mut right) = (a[range.clone()].to_vec(), b[range].to_vec());
            if field == Field::Flags {
                left = (word(&left) & compared).to_le_bytes().to_vec();
                right = (word(&right) & compared).to_le_bytes().to_vec();
            }
            (left != right).then(|| FieldDifference {
                field,
                left,
                right,
                note: format!("mask {compared:#x}"),
            })
        })
        .collect()
}

/// Whether two records agree exactly on `field`.
pub fn agree_on(a: &[u8], b: &[u8], field: Field) -> bool {
    fields()
        .into_iter()
        .find(|(f, _)| *f == field)
        .is_some_and(|(_, range)| a[range.clone()] == b[range])
}
