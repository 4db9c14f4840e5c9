//! A microarchitecture's table, read from its data file (`data/<name>.tsv`, written by
//! `gen-uarch-tables`).

use std::collections::HashMap;

use iced_x86::Code;

use crate::Form;

/// Why a data file does not read as a table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The header lacks `# {0}: …`.
    #[error("the header lacks `# {0}: …`")]
    MissingHeader(&'static str),
    /// A header value or a row does not read.
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    /// The table has no rows, so nothing to take a fallback from.
    #[error("the table has no rows")]
    Empty,
}

/// Cycles an instruction keeps one execution port (or resource unit) busy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PortUse {
    /// Index into `Microarchitecture::ports`.
    pub port: usize,
    /// Cycles per execution of the instruction (fractional when the model spreads a use
    /// over several ports).
    pub cycles: f64,
}

/// What one instruction form costs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cost<'a> {
    pub code: Code,
    pub form: Form,
    /// Micro-ops dispatched.
    pub uops: u32,
    /// Cycles until its results are ready to the instructions that read them.
    pub latency: u32,
    /// Cycles per instruction when many independent ones run back to back.
    pub rthroughput: f64,
    pub ports: &'a [PortUse],
}

#[derive(Clone, Copy, Debug)]
struct Row {
    code: Code,
    form: Form,
    uops: u32,
    latency: u32,
    rthroughput: f64,
    /// Its port uses: `Microarchitecture::port_uses[ports_start..ports_end]`.
    ports_start: u32,
    ports_end: u32,
}

/// A row index that stands for "no row".
const NO_ROW: u32 = u32::MAX;

/// A named microarchitecture: its machine, where its figures come from, and what each
/// instruction form costs on it.
#[derive(Debug)]
pub struct Microarchitecture {
    pub name: &'static str,
    pub description: &'static str,
    /// Where the figures come from (model, tool and version).
    pub source: &'static str,
    /// The figures' licence, as an SPDX expression.
    pub licence: &'static str,
    /// The licence as the source's copyright file states it, verbatim.
    pub licence_text: String,
    /// The command that wrote the data file.
    pub generated_by: &'static str,
    /// Micro-ops the core dispatches per cycle.
    pub dispatch_width: u32,
    /// Cycles a mispredicted branch costs (the model's `MispredictPenalty`).
    pub mispredict_penalty: u32,
    /// Cycles after a load-op instruction starts that it reads its register operands other
    /// than the address's: its latency from them is that much shorter. For general
    /// registers and flags, and for vector registers.
    pub load_read_advance: u32,
    pub vector_load_read_advance: u32,
    /// Execution ports and other resource units, as the model names them.
    pub ports: Vec<&'static str>,
    /// Forms priced by hand, with the reason, one line each.
    pub stand_ins: Vec<&'static str>,
    rows: Vec<Row>,
    port_uses: Vec<PortUse>,
    /// Row index by `Form::index`, or NO_ROW.
    slots: Vec<u32>,
    fallback: u32,
}

impl Microarchitecture {
    /// The cost of `code` in `form`, if the table has a row for it.
    pub fn cost(&self, code: Code, form: Form) -> Option<Cost<'_>> {
        match self.slots[form.index(code)] {
            NO_ROW => None,
            row => Some(self.row(row)),
        }
    }

    /// The cost an instruction form without a row is priced at: the table's median row by
    /// reciprocal throughput (then latency, uops, Code, form). A typical instruction,
    /// neither a nop nor a divide, so that a missing row is neither free nor a stall.
    pub fn fallback(&self) -> Cost<'_> {
        self.row(self.fallback)
    }

    /// How many instruction forms the table prices.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every row, in the data file's order.
    pub fn costs(&self) -> impl Iterator<Item = Cost<'_>> {
        (0..self.rows.len() as u32).map(|row| self.row(row))
    }

    fn row(&self, index: u32) -> Cost<'_> {
        let row = &self.rows[index as usize];
        Cost {
            code: row.code,
            form: row.form,
            uops: row.uops,
            latency: row.latency,
            rthroughput: row.rthroughput,
            ports: &self.port_uses[row.ports_start as usize..row.ports_end as usize],
        }
    }

    /// Reads a data file.
    pub fn parse(text: &'static str) -> Result<Microarchitecture, TableError> {
        let mut header: HashMap<&'static str, &'static str> = HashMap::new();
        let mut licence_text = Vec::new();
        let mut stand_ins = Vec::new();
        let mut body = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if let Some(verbatim) = line.strip_prefix("#|") {
                licence_text.push(verbatim.strip_prefix(' ').unwrap_or(verbatim));
            } else if let Some(comment) = line.strip_prefix("# ") {
                if let Some((key, value)) = comment.split_once(": ") {
                    if key == "stand-in" {
                        stand_ins.push(value);
                    } else {
                        header.entry(key).or_insert(value);
                    }
                }
            } else if !line.starts_with('#') && !line.is_empty() {
                body.push((number + 1, line));
            }
        }
        let field = |key: &'static str| {
            header
                .get(key)
                .copied()
                .ok_or(TableError::MissingHeader(key))
        };
        let dispatch_width = field("dispatch-width")?
            .parse()
            .map_err(|_| TableError::MissingHeader("dispatch-width"))?;
        let figure = |key: &'static str| -> Result<u32, TableError> {
            field(key)?
                .split_whitespace()
                .next()
                .and_then(|figure| figure.parse().ok())
                .ok_or(TableError::MissingHeader(key))
        };
        let mispredict_penalty = figure("mispredict-penalty")?;
        let load_read_advance = figure("load-read-advance")?;
        let vector_load_read_advance = figure("vector-load-read-advance")?;
        let ports: Vec<&'static str> = field("ports")?.split_whitespace().collect();
        let codes: HashMap<String, Code> = Code::values()
            .map(|code| (format!("{code:?}"), code))
            .collect();
        let mut table = Microarchitecture {
            name: field("name")?,
            description: field("description")?,
            source: field("source")?,
            licence: field("licence")?,
            licence_text: licence_text.join("\n"),
            generated_by: field("generated-by")?,
            dispatch_width,
            mispredict_penalty,
            load_read_advance,
            vector_load_read_advance,
            ports,
            stand_ins,
            rows: Vec::with_capacity(body.len()),
            port_uses: Vec::new(),
            slots: vec![NO_ROW; Code::values().len() * Form::ALL.len()],
            fallback: NO_ROW,
        };
        for (line, text) in body {
            table
                .add_row(text, &codes)
                .map_err(|reason| TableError::Line { line, reason })?;
        }
        table.fallback = table.median_row().ok_or(TableError::Empty)?;
        Ok(table)
    }

    /// Reads one row: code, form, uops, latency, reciprocal throughput, port uses, and
    /// the instruction as llvm-mca read it (not kept).
    fn add_row(&mut self, text: &str, codes: &HashMap<String, Code>) -> Result<(), String> {
        let fields: Vec<&str> = text.split('\t').collect();
        let [code, form, uops, latency, rthroughput, ports, _example] = fields[..] else {
            return Err(format!("{} fields where 7 were expected", fields.len()));
        };
        let code = *codes
            .get(code)
            .ok_or_else(|| format!("no Code named {code}"))?;
        let form = Form::by_name(form).ok_or_else(|| format!("no form named {form}"))?;
        let number = |what: &str, value: &str| format!("{what} {value:?} is not a number");
        let ports_start = self.port_uses.len() as u32;
        if ports != "-" {
            for port_use in ports.split(',') {
                let (name, cycles) = port_use
                    .split_once(':')
                    .ok_or_else(|| format!("port use {port_use:?} is not PORT:CYCLES"))?;
                let port = self
                    .ports
                    .iter()
                    .position(|known| *known == name)
                    .ok_or_else(|| format!("port {name} is not in the header's ports"))?;
                let cycles = cycles.parse().map_err(|_| number("cycles", cycles))?;
                self.port_uses.push(PortUse { port, cycles });
            }
        }
        let slot = &mut self.slots[form.index(code)];
        if *slot != NO_ROW {
            return Err(format!("a second row for {code:?} {}", form.name()));
        }
        *slot = self.rows.len() as u32;
        self.rows.push(Row {
            code,
            form,
            uops: uops.parse().map_err(|_| number("uops", uops))?,
            latency: latency.parse().map_err(|_| number("latency", latency))?,
            rthroughput: rthroughput
                .parse()
                .map_err(|_| number("rthroughput", rthroughput))?,
            ports_start,
            ports_end: self.port_uses.len() as u32,
        });
        Ok(())
    }

    fn median_row(&self) -> Option<u32> {
        let mut order: Vec<u32> = (0..self.rows.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&self.rows[a as usize], &self.rows[b as usize]);
            a.rthroughput
                .total_cmp(&b.rthroughput)
                .then(a.latency.cmp(&b.latency))
                .then(a.uops.cmp(&b.uops))
                .then((a.code as usize, a.form).cmp(&(b.code as usize, b.form)))
        });
        order.get(order.len() / 2).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each built-in table, the LLVM release it comes from, and that release's llvm-mca.
    const SOURCES: [(&str, &str, &str); 4] = [
        ("sapphirerapids", "LLVM 19's", "Debian LLVM version 19.1.7"),
        ("skylake-server", "LLVM 14's", "Debian LLVM version 14.0.6"),
        ("znver3", "LLVM 14's", "Debian LLVM version 14.0.6"),
        ("znver4", "LLVM 19's", "Debian LLVM version 19.1.7"),
    ];

    #[test]
    fn every_data_file_reads_and_names_its_source_and_licence() {
        let names: Vec<&str> = SOURCES.iter().map(|(name, _, _)| *name).collect();
        assert_eq!(crate::names(), names);
        for (name, release, version) in SOURCES {
            let uarch = crate::by_name(name).expect("listed, so built in");
            assert_eq!(uarch.name, name);
            assert!(!uarch.description.is_empty());
            assert!(
                uarch
                    .source
                    .starts_with(&format!("{release} scheduling model for -mcpu=")),
                "{}",
                uarch.source
            );
            assert!(
                uarch
                    .source
                    .ends_with(&format!("read through llvm-mca ({version})")),
                "{}",
                uarch.source
            );
            assert_eq!(uarch.licence, "Apache-2.0 WITH LLVM-exception");
            assert!(uarch
                .licence_text
                .contains("License: APACHE-2-LLVM-EXCEPTIONS"));
            assert!(uarch
                .licence_text
                .contains("---- LLVM Exceptions to the Apache 2.0 License ----"));
            assert!(uarch.generated_by.contains("gen-uarch-tables"));
            assert!(uarch.dispatch_width > 0);
            assert!(!uarch.ports.is_empty());
            assert!(uarch
                .stand_ins
                .iter()
                .any(|line| line.starts_with("Bndcu_bnd_rm64 reg")));
            assert!(uarch.len() > 1000, "{name}: {} rows", uarch.len());
        }
        assert!(crate::by_name("pentium").is_none());
    }

    /// Forms common in compiled code and every form the translator emits: no built-in
    /// table may lack one.
    const COMMON: [(Code, Form); 73] = [
        (Code::Mov_r64_rm64, Form::Memory),
        (Code::Mov_rm64_r64, Form::Registers),
        (Code::Mov_rm64_r64, Form::Memory),
        (Code::Mov_r32_rm32, Form::Memory),
        (Code::Mov_rm32_r32, Form::Registers),
        (Code::Mov_rm32_r32, Form::Memory),
        (Code::Mov_r8_rm8, Form::Memory),
        (Code::Mov_rm8_r8, Form::Memory),
        (Code::Mov_r32_imm32, Form::Registers),
        (Code::Mov_r16_imm16, Form::Registers),
        (Code::Mov_rm64_imm32, Form::Registers),
        (Code::Mov_rm64_imm32, Form::Memory),
        (Code::Mov_rm32_imm32, Form::Memory),
        (Code::Mov_rm16_imm16, Form::Memory),
        (Code::Mov_r64_imm64, Form::Registers),
        (Code::Movzx_r32_rm8, Form::Registers),
        (Code::Movzx_r32_rm8, Form::Memory),
        (Code::Movsxd_r64_rm32, Form::Registers),
        (Code::Lea_r64_m, Form::Memory),
        (Code::Add_rm64_r64, Form::Registers),
        (Code::Add_rm64_imm8, Form::Registers),
        (Code::Sub_rm64_r64, Form::Registers),
        (Code::Sub_rm64_imm8, Form::Registers),
        (Code::And_rm64_imm8, Form::Registers),
        (Code::And_rm32_imm32, Form::Memory),
        (Code::Or_rm32_imm32, Form::Memory),
        (Code::And_rm16_imm16, Form::Memory),
        (Code::Or_rm16_imm16, Form::Memory),
        (Code::Xor_rm32_r32, Form::SameRegister),
        (Code::Cmp_rm64_r64, Form::Registers),
        (Code::Cmp_rm64_imm8, Form::Registers),
        (Code::Cmp_rm64_imm8, Form::Memory),
        (Code::Cmp_rm8_imm8, Form::Memory),
        (Code::Test_rm64_r64, Form::SameRegister),
        (Code::Test_rm32_r32, Form::SameRegister),
        (Code::Test_rm8_r8, Form::SameRegister),
        (Code::Shl_rm64_imm8, Form::Registers),
        (Code::Shr_rm64_imm8, Form::Registers),
        (Code::Imul_r64_rm64, Form::Registers),
        (Code::Div_rm64, Form::Registers),
        (Code::Cdqe, Form::Registers),
        (Code::Cqo, Form::Registers),
        (Code::Cmove_r64_rm64, Form::Registers),
        (Code::Sete_rm8, Form::Registers),
        (Code::Push_r64, Form::Registers),
        (Code::Pop_r64, Form::Registers),
        (Code::Pushq_imm32, Form::Registers),
        (Code::Push_rm64, Form::Memory),
        (Code::Pop_rm64, Form::Memory),
        (Code::Pushfq, Form::Registers),
        (Code::Popfq, Form::Registers),
        (Code::Leaveq, Form::Registers),
        (Code::Call_rel32_64, Form::Registers),
        (Code::Call_rm64, Form::Registers),
        (Code::Call_rm64, Form::Memory),
        (Code::Retnq, Form::Registers),
        (Code::Jmp_rel8_64, Form::Registers),
        (Code::Jmp_rel32_64, Form::Registers),
        (Code::Jmp_rm64, Form::Registers),
        (Code::Jmp_rm64, Form::Memory),
        (Code::Je_rel8_64, Form::Registers),
        (Code::Jne_rel32_64, Form::Registers),
        (Code::Syscall, Form::Registers),
        (Code::Nopd, Form::Registers),
        (Code::Nop_rm32, Form::Memory),
        (Code::Endbr64, Form::Registers),
        (Code::Bndcu_bnd_rm64, Form::Registers),
        (Code::Movsb_m8_m8, Form::Repeated),
        (Code::Stosq_m64_RAX, Form::Repeated),
        (Code::Cmpxchg_rm32_r32, Form::Locked),
        (Code::Pxor_xmm_xmmm128, Form::SameRegister),
        (Code::Movdqu_xmm_xmmm128, Form::Memory),
        (Code::Addsd_xmm_xmmm64, Form::Registers),
    ];

    #[test]
    fn every_table_prices_the_common_forms() {
        for uarch in crate::all() {
            let missing: Vec<String> = COMMON
                .iter()
                .filter(|(code, form)| uarch.cost(*code, *form).is_none())
                .map(|(code, form)| format!("{code:?} {}", form.name()))
                .collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", uarch.name);
        }
    }

    #[test]
    fn the_fallback_is_the_median_by_reciprocal_throughput() {
        for uarch in crate::all() {
            let mut throughputs: Vec<f64> = uarch.costs().map(|cost| cost.rthroughput).collect();
            throughputs.sort_by(f64::total_cmp);
            let fallback = uarch.fallback();
            assert_eq!(fallback.rthroughput, throughputs[throughputs.len() / 2]);
            assert_eq!(uarch.cost(fallback.code, fallback.form), Some(fallback));
        }
    }

    const HEADER: &str = "# name: tiny\n# description: d\n# source: s\n# licence: l\n\
                          # generated-by: g\n# dispatch-width: 4\n# mispredict-penalty: 12 (m)\n# load-read-advance: 3 (r)\n# vector-load-read-advance: 5 (v)\n# ports: P0 P1\n";

    #[test]
    fn a_table_reads_its_rows_and_ports() {
        let rows = "#| verbatim\n\
                    Nopd\treg\t1\t0\t0.25\t-\tnop\n\
                    Add_rm64_r64\treg\t1\t1\t0.5\tP0:0.5,P1:0.5\taddq %rax, %rbx\n";
        let table = Microarchitecture::parse(format!("{HEADER}{rows}").leak()).expect("reads");
        assert_eq!(
            (
                table.name,
                table.dispatch_width,
                table.mispredict_penalty,
                table.len()
            ),
            ("tiny", 4, 12, 2)
        );
        assert_eq!(table.licence_text, "verbatim");
        let add = table
            .cost(Code::Add_rm64_r64, Form::Registers)
            .expect("a row");
        assert_eq!(
            add.ports,
            [
                PortUse {
                    port: 0,
                    cycles: 0.5
                },
                PortUse {
                    port: 1,
                    cycles: 0.5
                }
            ]
        );
        assert!(table.cost(Code::Add_rm64_r64, Form::Memory).is_none());
    }

    #[test]
    fn a_bad_table_is_refused_with_its_line() {
        let refusals = [
            ("Nopd\treg\t1\t0\t0.25\n", "5 fields"),
            ("Nosuch\treg\t1\t0\t0.25\t-\tx\n", "no Code named Nosuch"),
            ("Nopd\tweird\t1\t0\t0.25\t-\tx\n", "no form named weird"),
            ("Nopd\treg\tone\t0\t0.25\t-\tx\n", "uops \"one\""),
            ("Nopd\treg\t1\t0\t0.25\tP9:1\tx\n", "port P9"),
            (
                "Nopd\treg\t1\t0\t0.25\t-\tx\nNopd\treg\t1\t0\t0.25\t-\tx\n",
                "a second row",
            ),
        ];
        for (rows, reason) in refusals {
            let text: &'static str = format!("{HEADER}{rows}").leak();
            let error = Microarchitecture::parse(text).expect_err(rows).to_string();
            assert!(
                error.starts_with("line ") && error.contains(reason),
                "{error}"
            );
        }
        let headless = "Nopd\treg\t1\t0\t0.25\t-\tx\n";
        assert!(matches!(
            Microarchitecture::parse(headless),
            Err(TableError::MissingHeader(_))
        ));
        assert!(matches!(
            Microarchitecture::parse(HEADER),
            Err(TableError::Empty)
        ));
    }
}
