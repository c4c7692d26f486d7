//! The cgroup v2 device filter: a BPF_PROG_TYPE_CGROUP_DEVICE program generated from the
//! effective device rules (devices.rs), one block per exception, then the default verdict.
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! where access_type is `(access << 16) | type` (linux/bpf.h: BPF_DEVCG_DEV_BLOCK = 1,
//! BPF_DEVCG_DEV_CHAR = 2, BPF_DEVCG_ACC_MKNOD = 1, READ = 2, WRITE = 4), and returns 1 to
//! allow, 0 to refuse. An allow exception matches when every requested access bit is
//! granted by it; a deny exception matches when any requested bit is denied, which is how
//! the v1 controller decides.

use super::devices::{Effective, Kind};

pub(crate) const DEV_BLOCK: u32 = 1;
pub(crate) const DEV_CHAR: u32 = 2;

/// One eBPF instruction as the kernel lays it out (struct bpf_insn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (linux/bpf_common.h + bpf.h): class | op | source.
pub(crate) const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
pub(crate) const ALU_AND_K: u8 = 0x54; // dst &= imm (32-bit)
pub(crate) const ALU_RSH_K: u8 = 0x74; // dst >>= imm (32-bit)
pub(crate) const ALU_MOV_K: u8 = 0xb4; // dst = imm (32-bit)
pub(crate) const ALU_MOV_X: u8 = 0xbc; // dst = src (32-bit)
pub(crate) const JMP_JNE_K: u8 = 0x55; // if dst != imm goto +off
pub(crate) const JMP_JNE_X: u8 = 0x5d; // if dst != src goto +off
pub(crate) const JMP_JEQ_K: u8 = 0x15; // if dst == imm goto +off
pub(crate) const JMP_EXIT: u8 = 0x95;

// Registers: r1 = ctx on entry (then scratch), r2 = type, r3 = access, r4 = major, r5 = minor.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// Jumps to the end of the current block are emitted with this offset, then patched.
const TO_NEXT_BLOCK: i16 = i16::MIN;

/// Generates the filter for `rules`.
pub(crate) fn generate(rules: &Effective) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    let verdict = i32::from(!rules.default_allow);
    for x in &rules.exceptions {
        let mut block = Vec::new();
        match x.kind {
            Kind::Char => block.push(insn(JMP_JNE_K, R2, 0, TO_NEXT_BLOCK, DEV_CHAR as i32)),
            Kind::Block => block.push(insn(JMP_JNE_K, R2, 0, TO_NEXT_BLOCK, DEV_BLOCK as i32)),
            Kind::All => {}
        }
        block.push(insn(ALU_MOV_X, R1, R3, 0, 0));
        block.push(insn(ALU_AND_K, R1, 0, 0, i32::from(x.access)));
        if x.allow {
            // Every requested bit must be granted: (access & granted) == access.
            block.push(insn(JMP_JNE_X, R1, R3, TO_NEXT_BLOCK, 0));
        } else {
            // Any requested bit denied refuses: (access & denied) != 0.
            block.push(insn(JMP_JEQ_K, R1, 0, TO_NEXT_BLOCK, 0));
        }
        if let Some(major) = x.major {
            block.push(insn(JMP_JNE_K, R4, 0, TO_NEXT_BLOCK, major as i32));
        }
        if let Some(minor) = x.minor {
            block.push(insn(JMP_JNE_K, R5, 0, TO_NEXT_BLOCK, minor as i32));
        }
        block.push(insn(ALU_MOV_K, R0, 0, 0, verdict));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.off == TO_NEXT_BLOCK {
                // Offsets count from the instruction after the jump; blocks are tiny.
                ins.off = (len - i - 1) as i16;
            }
        }
        prog.extend(block);
    }
    prog.push(insn(ALU_MOV_K, R0, 0, 0, i32::from(rules.default_allow)));
    prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
    prog
}

/// The bytes the kernel expects: 8 per instruction, registers packed dst low / src high.
pub(crate) fn encode(prog: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        out.push(i.code);
        out.push((i.src << 4) | (i.dst & 0x0f));
        out.extend_from_slice(&i.off.to_le_bytes());
        out.extend_from_slice(&i.imm.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::devices::{self, Rule, ACC_ALL, ACC_MKNOD, ACC_READ, ACC_WRITE};
    use super::*;

    /// A tiny interpreter for exactly the opcodes above, run on the encoded bytes so the
    /// encoding is checked too.
    fn run(bytes: &[u8], dev_type: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | dev_type, major, minor];
        let mut regs = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let b = &bytes[pc * 8..pc * 8 + 8];
            let (code, dst, src) = (b[0], usize::from(b[1] & 0x0f), usize::from(b[1] >> 4));
            let off = i16::from_le_bytes([b[2], b[3]]);
            let imm = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let imm64 = i64::from(imm) as u64;
            pc += 1;
            let jump = |cond: bool, pc: usize| {
                if cond {
                    (pc as i64 + i64::from(off)) as usize
                } else {
                    pc
                }
            };
            match code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    regs[dst] = u64::from(ctx[(off / 4) as usize]);
                }
                ALU_AND_K => regs[dst] = u64::from((regs[dst] as u32) & (imm as u32)),
                ALU_RSH_K => regs[dst] = u64::from((regs[dst] as u32) >> imm),
                ALU_MOV_K => regs[dst] = u64::from(imm as u32),
                ALU_MOV_X => regs[dst] = u64::from(regs[src] as u32),
                JMP_JNE_K => pc = jump(regs[dst] != imm64, pc),
                JMP_JNE_X => pc = jump(regs[dst] != regs[src], pc),
                JMP_JEQ_K => pc = jump(regs[dst] == imm64, pc),
                JMP_EXIT => return regs[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
        panic!("program did not exit")
    }

    fn check_against_v1(rules: &[Rule]) {
        let effective = devices::Effective::from_rules(rules);
        let bytes = encode(&generate(&effective));
        let devices_tried = [
            (1, 3),
            (1, 5),
            (1, 9),
            (4, 1),
            (5, 1),
            (8, 0),
            (8, 16),
            (10, 200),
            (136, 0),
            (136, 9),
            (254, 1),
        ];
        for (kind, t) in [(Kind::Char, DEV_CHAR), (Kind::Block, DEV_BLOCK)] {
            for (major, minor) in devices_tried {
                for access in 1..=ACC_ALL {
                    let want = effective.permits(kind, major, minor, access);
                    let got = run(&bytes, t, u32::from(access), major, minor);
                    assert_eq!(
                        got,
                        u64::from(want),
                        "{kind:?} {major}:{minor} access {access:#b} rules {effective:?}"
                    );
                }
            }
        }
    }

    fn rule(allow: bool, kind: Kind, major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    #[test]
    fn default_container_filter_allows_only_runc_defaults() {
        let rules = devices::container_rules(&[]).expect("rules");
        check_against_v1(&rules);
        let bytes = encode(&generate(&devices::Effective::from_rules(&rules)));
        assert_eq!(
            run(&bytes, DEV_CHAR, u32::from(ACC_READ | ACC_WRITE), 1, 3),
            1,
            "/dev/null"
        );
        assert_eq!(
            run(&bytes, DEV_BLOCK, u32::from(ACC_READ), 8, 0),
            0,
            "/dev/sda read"
        );
        assert_eq!(
            run(&bytes, DEV_BLOCK, u32::from(ACC_MKNOD), 8, 0),
            1,
            "mknod allowed"
        );
        assert_eq!(
            run(&bytes, DEV_CHAR, u32::from(ACC_WRITE), 136, 4),
            1,
            "pts"
        );
    }

    #[test]
    fn spec_allow_rules_open_exactly_their_access() {
        let mut rules = devices::container_rules(&[]).expect("rules");
        rules.push(rule(true, Kind::Block, Some(8), Some(0), ACC_READ));
        check_against_v1(&rules);
        let bytes = encode(&generate(&devices::Effective::from_rules(&rules)));
        assert_eq!(run(&bytes, DEV_BLOCK, u32::from(ACC_READ), 8, 0), 1);
        assert_eq!(
            run(&bytes, DEV_BLOCK, u32::from(ACC_READ | ACC_WRITE), 8, 0),
            0
        );
    }

    #[test]
    fn blacklist_filter_denies_any_overlapping_access() {
        let rules = vec![
            rule(true, Kind::All, None, None, ACC_ALL),
            rule(false, Kind::Char, Some(1), None, ACC_WRITE),
            rule(false, Kind::Block, None, None, ACC_MKNOD),
        ];
        check_against_v1(&rules);
        let bytes = encode(&generate(&devices::Effective::from_rules(&rules)));
        assert_eq!(
            run(&bytes, DEV_CHAR, u32::from(ACC_READ | ACC_WRITE), 1, 3),
            0
        );
        assert_eq!(run(&bytes, DEV_CHAR, u32::from(ACC_READ), 1, 3), 1);
        assert_eq!(run(&bytes, DEV_BLOCK, u32::from(ACC_MKNOD), 8, 1), 0);
        assert_eq!(run(&bytes, DEV_BLOCK, u32::from(ACC_READ), 8, 1), 1);
    }

    #[test]
    fn deny_all_alone_refuses_everything() {
        let rules = vec![rule(false, Kind::All, None, None, ACC_ALL)];
        let prog = generate(&devices::Effective::from_rules(&rules));
        assert_eq!(prog.len(), 8, "prologue and default verdict only");
        check_against_v1(&rules);
    }

    #[test]
    fn mixed_rules_match_the_v1_controller_everywhere() {
        let rules = vec![
            rule(false, Kind::All, None, None, ACC_ALL),
            rule(true, Kind::Char, None, None, ACC_MKNOD),
            rule(true, Kind::Char, Some(1), None, ACC_READ),
            rule(true, Kind::Char, Some(1), Some(5), ACC_WRITE),
            rule(false, Kind::Char, Some(1), None, ACC_READ),
            rule(true, Kind::Block, Some(8), None, ACC_READ | ACC_WRITE),
            rule(false, Kind::Block, Some(8), Some(16), ACC_WRITE),
        ];
        check_against_v1(&rules);
    }

    #[test]
    fn encoding_packs_registers_and_little_endian_fields() {
        let bytes = encode(&[insn(LDX_MEM_W, R4, R1, 4, 0), insn(JMP_JNE_K, R2, 0, 3, 2)]);
        assert_eq!(&bytes[..8], &[0x61, 0x14, 4, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[8..], &[0x55, 0x02, 3, 0, 2, 0, 0, 0]);
    }
}
