//! Comparing what two runs left of one sequence: every field that differs, not just the
//! first, so that a known bug in one field cannot hide a new one in another.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::program::{self, BUFFER_OFFSET, FLAGS_OFFSET, GPR_OFFSET, XMM_OFFSET};
use super::{hex, unhex};

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

/// A record as a regression file keeps it: every byte, by field, in the layout of a case's
/// start state (registers as numbers, the rest in hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub gprs: [u64; 16],
    pub flags: u64,
    /// xmm0-7.
    pub xmm: Vec<String>,
    pub buffer: String,
    /// The sequence's own stack.
    pub stack: String,
}

impl Record {
    /// The fields of `bytes`, a record as a batch program writes it.
    pub fn from_bytes(bytes: &[u8]) -> Record {
        let slice = |field: Field| {
            let range = fields()
                .into_iter()
                .find(|(f, _)| *f == field)
                .map(|(_, range)| range)
                .expect("every field has a place");
            &bytes[range]
        };
        Record {
            gprs: std::array::from_fn(|k| word(slice(Field::Gpr(k)))),
            flags: word(slice(Field::Flags)),
            xmm: (0..program::XMM_REGISTERS)
                .map(|k| hex(slice(Field::Xmm(k))))
                .collect(),
            buffer: hex(slice(Field::Buffer)),
            stack: hex(slice(Field::Stack)),
        }
    }

    /// The record's bytes; `None` when a field has the wrong length or is not hex.
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        let mut bytes = vec![0u8; program::RECORD_BYTES];
        for (field, range) in fields() {
            let value = match field {
                Field::Stack => unhex(&self.stack),
                Field::Buffer => unhex(&self.buffer),
                Field::Gpr(k) => self.gprs[k].to_le_bytes().to_vec(),
                Field::Flags => self.flags.to_le_bytes().to_vec(),
                Field::Xmm(k) => unhex(self.xmm.get(k)?),
                Field::Run => continue,
            };
            // `unhex` skips what is not hex: a wrong length catches that too.
            (value.len() == range.len()).then_some(())?;
            bytes[range].copy_from_slice(&value);
        }
        (self.xmm.len() == program::XMM_REGISTERS).then_some(bytes)
    }
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

/// Of ring 3's differences from ring 0, `found`, those where ring 0 differs from the
/// native run too (`undefined` flags aside). Where ring 0 agrees with the native run, ring
/// 0 is right and ring 3 wrong: a Unicorn bug that translation steps around, which the
/// native-vs-ring-3 pair reports.
pub fn ring0_wrong_too(
    found: Vec<FieldDifference>,
    native: &[u8],
    ring0: &[u8],
    undefined: u64,
) -> Vec<FieldDifference> {
    let wrong = differences(native, ring0, undefined);
    found
        .into_iter()
        .filter(|d| wrong.iter().any(|w| w.field == d.field))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_a_malformed_one_is_refused() {
        let bytes: Vec<u8> = (0..program::RECORD_BYTES).map(|i| (i * 7) as u8).collect();
        let record = Record::from_bytes(&bytes);
        assert_eq!(record.to_bytes(), Some(bytes));
        let short = Record {
            buffer: record.buffer[2..].to_string(),
            ..record.clone()
        };
        assert_eq!(short.to_bytes(), None);
        let not_hex = Record {
            stack: record.stack.replacen(&record.stack[..2], "zz", 1),
            ..record.clone()
        };
        assert_eq!(not_hex.to_bytes(), None);
        let seven_xmm = Record {
            xmm: record.xmm[1..].to_vec(),
            ..record
        };
        assert_eq!(seven_xmm.to_bytes(), None);
    }
}
