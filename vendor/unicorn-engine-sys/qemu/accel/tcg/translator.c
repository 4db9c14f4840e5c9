/*
 * Generic intermediate code generation.
 *
 * Copyright (C) 2016-2017 Lluís Vilanova <vilanova@ac.upc.edu>
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "cpu.h"
#include "tcg/tcg.h"
#include "tcg/tcg-op.h"
#include "exec/exec-all.h"
#include "exec/gen-icount.h"
#include "exec/translator.h"
#include "exec/helper-head.h"

#include <uc_priv.h>

/* Pairs with tcg_clear_temp_count.
   To be called by #TranslatorOps.{translate_insn,tb_stop} if
   (1) the target is sufficiently clean to support reporting,
   (2) as and when all temporaries are known to be consumed.
   For most targets, (2) is at the end of translate_insn.  */
void translator_loop_temp_check(DisasContextBase *db)
{
#if 0
    if (tcg_check_temp_count()) {
        qemu_log("warning: TCG temporary leaks before "
                 TARGET_FMT_lx "\n", db->pc_next);
    }
#endif
}

/* ringsim: a host address into `ptr` (64-bit hosts only, as TCGv_ptr is i64 there). */
static void tcg_gen_movi_ptr(TCGContext *s, TCGv_ptr ptr, uintptr_t addr)
{
    QEMU_BUILD_BUG_ON(sizeof(void *) != 8);
    tcg_gen_movi_i64(s, (TCGv_i64)ptr, addr);
}

/* ringsim: the counters of uc_inline_counting are addressed from one base, the clock's
   address, in a register: each at an offset from it when within 2 GiB (the simulator's lie
   in one heap), else by its own address in `far`. */
typedef struct {
    TCGv_ptr base, far;
    const uc_inline_counting *c;
} Counters;

static void counters_open(TCGContext *s, Counters *k, const uc_inline_counting *c)
{
    k->c = c;
    k->base = tcg_temp_new_ptr(s);
    k->far = tcg_temp_new_ptr(s);
}

static void counters_close(TCGContext *s, Counters *k)
{
    tcg_temp_free_ptr(s, k->far);
    tcg_temp_free_ptr(s, k->base);
}

/* At the start of each basic block: temps do not live across one. */
static void counters_base(TCGContext *s, Counters *k)
{
    tcg_gen_movi_ptr(s, k->base, (uintptr_t)k->c->clock);
}

/* The register and offset that address `addr`. */
static TCGv_ptr counter_at(TCGContext *s, Counters *k, const void *addr, intptr_t *off)
{
    intptr_t d = (intptr_t)addr - (intptr_t)k->c->clock;
    if (d == (int32_t)d) {
        *off = d;
        return k->base;
    }
    tcg_gen_movi_ptr(s, k->far, (uintptr_t)addr);
    *off = 0;
    return k->far;
}

static void counter_ld(TCGContext *s, Counters *k, TCGv_i64 ret, const void *addr)
{
    intptr_t off;
    TCGv_ptr at = counter_at(s, k, addr, &off);
    tcg_gen_ld_i64(s, ret, at, off);
}

static void counter_st(TCGContext *s, Counters *k, TCGv_i64 value, void *addr)
{
    intptr_t off;
    TCGv_ptr at = counter_at(s, k, addr, &off);
    tcg_gen_st_i64(s, value, at, off);
}

static void counter_sti(TCGContext *s, Counters *k, uint64_t value, void *addr)
{
    TCGv_i64 t = tcg_const_i64(s, value);
    counter_st(s, k, t, addr);
    tcg_temp_free_i64(s, t);
}

/* *addr += value */
static void counter_add(TCGContext *s, Counters *k, void *addr, uint64_t value)
{
    TCGv_i64 t = tcg_temp_new_i64(s);
    counter_ld(s, k, t, addr);
    tcg_gen_addi_i64(s, t, t, value);
    counter_st(s, k, t, addr);
    tcg_temp_free_i64(s, t);
}

/* ringsim: the running block is `pc`, `size` bytes, and `how` it counted (in the upper
   half of the second word). */
static void gen_st_current(TCGContext *s, Counters *k, uint64_t pc, uint32_t size,
                           uint64_t how)
{
    counter_sti(s, k, pc, k->c->current);
    counter_sti(s, k, size | how << 32, k->c->current + 1);
}

/* ringsim: records the logged branches in order and empties the log, as the simulator's
   Predictor::drain does: each pair is a conditional branch's fall-through and the block
   that ran next, taken unless that is the fall-through; the predictor's record step, as
   accounting/predictor.rs's, on the same state. The history and the count stay in
   registers for the run (the table's bytes may alias anything, so read through `c` they
   were loaded and stored again for every branch). */
static void ringsim_drain_branches(void *counting)
{
    const uc_inline_counting *c = counting;
    const uint64_t *pair, *end = *c->log_next;
    uint8_t *table = c->table;
    const uint8_t *next = c->next;
    uint32_t bits = c->bits, mask = (1u << bits) - 1;
    uint32_t history = *c->history;
    uint64_t mispredictions = *c->mispredictions;

    for (pair = c->log; pair < end; pair += 2) {
        uint64_t site = pair[0];
        uint32_t taken = site != pair[1];
        uint32_t folded = (uint32_t)(site ^ (site >> bits) ^ (site >> (2 * bits)));
        uint32_t index = (folded ^ history) & mask;
        uint8_t counter = table[index];

        mispredictions += (counter >> 1) ^ taken;
        table[index] = next[counter << 1 | taken];
        history = ((history << 1) | taken) & mask;
    }
    *c->history = history;
    *c->mispredictions = mispredictions;
    *c->log_next = c->log;
}

/* ringsim: logs the branch `*pending` if one is pending. Logged rather than recorded
   at once: the predictor's step, a call with a load from its 64 KiB table at a random
   place, was 21 % of busybox bc at ring 3 under a microarchitecture; taken a log at a
   time it overlaps. The logging is out of line (`resolve`, emitted by
   gen_resolve_branch_log after the block's own code), so that a block with no branch
   pending takes no jump. Ends in a new basic block, with the base loaded. */
static void gen_resolve_branch(TCGContext *s, Counters *k, TCGLabel *resolve, TCGLabel *back)
{
    TCGv_i64 site = tcg_temp_new_i64(s);

    counter_ld(s, k, site, k->c->pending);
    tcg_gen_brcondi_i64(s, TCG_COND_NE, site, 0, resolve);
    tcg_temp_free_i64(s, site);
    gen_set_label(s, back);
    counters_base(s, k);
}

/* Out of line: logs the pending branch and takes it off `*pending`, which the block sets
   again only if it ends in a conditional branch itself. */
static void gen_resolve_branch_log(TCGContext *s, Counters *k, uint64_t pc,
                                   uint64_t branch_site, TCGLabel *resolve, TCGLabel *back)
{
    const uc_inline_counting *c = k->c;
    TCGv_i64 site = tcg_temp_new_i64(s);
    TCGv_i64 at = tcg_temp_new_i64(s);
    TCGv_i64 t = tcg_temp_new_i64(s);
    TCGv_ptr counting;
    TCGTemp *args[1];

    gen_set_label(s, resolve);
    counters_base(s, k);
    counter_ld(s, k, site, c->pending);
    counter_ld(s, k, at, c->log_next);
    tcg_gen_st_i64(s, site, (TCGv_ptr)at, 0);
    tcg_gen_movi_i64(s, t, pc);
    tcg_gen_st_i64(s, t, (TCGv_ptr)at, 8);
    tcg_gen_addi_i64(s, at, at, 16);
    counter_st(s, k, at, c->log_next);
    if (branch_site == 0) {
        counter_sti(s, k, 0, c->pending);
    }
    tcg_gen_brcondi_i64(s, TCG_COND_LTU, at, (uintptr_t)c->log_end, back);
    tcg_temp_free_i64(s, t);
    tcg_temp_free_i64(s, at);
    tcg_temp_free_i64(s, site);

    counting = tcg_const_ptr(s, c);
    args[0] = tcgv_ptr_temp(s, counting);
    uc_gen_call_no_rwg(s, (void *)ringsim_drain_branches, "ringsim_drain_branches",
                       dh_sizemask(void, 0) | dh_sizemask(ptr, 1), 1, args);
    tcg_temp_free_ptr(s, counting);
    tcg_gen_br(s, back);
}

/* ringsim: the prologue of a block counted inline, emitted at the end of the op list
   (the block's size is known only once it is translated) and moved to after `anchor`,
   where the block hook's call would be. It adds the block's instructions to the clock
   first, and takes them back on the paths that do not count it. Its rare paths (the
   hook's call at the gate, logging a pending branch) stay at the end, after the block's
   exits, so that the common path runs straight through: no taken jump. Without a
   predictor (`pending` NULL: instructions priced at a cpi) there is no branch to
   resolve. */
static void gen_inline_count(struct uc_struct *uc, TCGContext *s, TCGOp *anchor,
                             uint64_t pc, uint32_t size)
{
    const uc_inline_counting *c = &uc->inline_counting;
    uc_inline_block block;
    TCGOp *last = tcg_last_op(s), *op, *inline_end;
    TCGLabel *slow, *done, *counted, *further = NULL, *resolve = NULL, *back = NULL;
    Counters k;
    TCGv_i64 t, u;
    int i;

    memset(&block, 0, sizeof(block));
    uc->inline_block(uc, pc, size, &block, uc->inline_block_data);
    if (block.hook) {
        gen_uc_tracecode(s, size, UC_HOOK_BLOCK_IDX, uc, pc);
        inline_end = tcg_last_op(s);
    } else {
        slow = gen_new_label(s);
        done = gen_new_label(s);
        counters_open(s, &k, c);
        t = tcg_temp_new_i64(s);
        u = tcg_temp_new_i64(s);

        counters_base(s, &k);
        counter_ld(s, &k, t, c->clock);
        tcg_gen_addi_i64(s, t, t, block.instructions);
        counter_st(s, &k, t, c->clock);
        counter_ld(s, &k, u, c->gate);
        tcg_gen_brcond_i64(s, TCG_COND_GEU, t, u, slow);

        counters_base(s, &k);
        if (block.repeat) {
            /* A further iteration: the block before ended where this one ends. */
            further = gen_new_label(s);
            counter_ld(s, &k, t, c->current);
            counter_ld(s, &k, u, c->current + 1);
            tcg_gen_ext32u_i64(s, u, u);
            tcg_gen_add_i64(s, t, t, u);
            tcg_gen_brcondi_i64(s, TCG_COND_EQ, t, pc + size, further);
            counters_base(s, &k);
        }
        for (i = 0; i < UC_INLINE_TOTALS; i++) {
            if (block.totals[i] != 0 && c->totals[i]) {
                counter_add(s, &k, c->totals[i], block.totals[i]);
            }
        }
        gen_st_current(s, &k, pc, size, 1);
        if (further) {
            counted = gen_new_label(s);
            tcg_gen_br(s, counted);
            gen_set_label(s, further);
            counters_base(s, &k);
            counter_add(s, &k, c->clock, -block.instructions);
            gen_st_current(s, &k, pc, size, 2);
            gen_set_label(s, counted);
            counters_base(s, &k);
        }
        if (c->pending) {
            /* A further iteration resolves a pending branch too, as enter_block does. */
            resolve = gen_new_label(s);
            back = gen_new_label(s);
            gen_resolve_branch(s, &k, resolve, back);
            if (block.branch_site != 0) {
                counter_sti(s, &k, block.branch_site, c->pending);
            }
        }
        gen_set_label(s, done);
        inline_end = tcg_last_op(s);

        /* Out of line, after the block's exits. */
        gen_set_label(s, slow);
        counters_base(s, &k);
        counter_add(s, &k, c->clock, -block.instructions);
        gen_uc_tracecode(s, size, UC_HOOK_BLOCK_IDX, uc, pc);
        tcg_gen_br(s, done);
        if (resolve) {
            gen_resolve_branch_log(s, &k, pc, block.branch_site, resolve, back);
        }
        tcg_temp_free_i64(s, u);
        tcg_temp_free_i64(s, t);
        counters_close(s, &k);
    }

    /* Move the inline part to after `anchor` (to the head if there is none). */
    op = QTAILQ_NEXT(last, link);
    while (op) {
        TCGOp *next = QTAILQ_NEXT(op, link);
        bool was_end = op == inline_end;
        QTAILQ_REMOVE(&s->ops, op, link);
        if (anchor) {
            QTAILQ_INSERT_AFTER(&s->ops, anchor, op, link);
        } else {
            QTAILQ_INSERT_HEAD(&s->ops, op, link);
        }
        anchor = op;
        if (was_end) {
            break;
        }
        op = next;
    }
}

void translator_loop(const TranslatorOps *ops, DisasContextBase *db,
                     CPUState *cpu, TranslationBlock *tb, int max_insns)
{
    int bp_insn = 0;
    struct uc_struct *uc = (struct uc_struct *)cpu->uc;
    TCGContext *tcg_ctx = uc->tcg_ctx;
    TCGOp *prev_op = NULL;
    bool block_hook = false;

    /* Initialize DisasContext */
    db->tb = tb;
    db->pc_first = tb->pc;
    db->pc_next = db->pc_first;
    db->is_jmp = DISAS_NEXT;
    db->num_insns = 0;
    db->max_insns = max_insns;
    db->singlestep_enabled = cpu->singlestep_enabled;

    ops->init_disas_context(db, cpu);
    tcg_debug_assert(db->is_jmp == DISAS_NEXT);  /* no early exit */

    /* Reset the temp count so that we can identify leaks */
    tcg_clear_temp_count();

    /* Unicorn: early check to see if the address of this block is
     * the "run until" address. */
    if (uc_addr_is_exit(uc, tb->pc)) {
        // This should catch that instruction is at the end
        // and generate appropriate halting code.
        gen_tb_start(tcg_ctx, db->tb);
        ops->tb_start(db, cpu);
        db->num_insns++;
        ops->insn_start(db, cpu);
        ops->translate_insn(db, cpu);
        goto _end_loop;
    }

    /* Unicorn: trace this block on request
     * Only hook this block if it is not broken from previous translation due to
     * full translation cache
     */
    if (HOOK_EXISTS_BOUNDED(uc, UC_HOOK_BLOCK, tb->pc)) {
        ops->pc_sync(db, cpu);
        prev_op = tcg_last_op(tcg_ctx);
        block_hook = true;
        /* ringsim: counted inline, the prologue is made once the block is known. */
        if (!uc->inline_block) {
            gen_uc_tracecode(tcg_ctx, 0xf8f8f8f8, UC_HOOK_BLOCK_IDX, uc, db->pc_first);
        }
    }

    // tcg_dump_ops(tcg_ctx, false, "translator loop");

    /* Start translating.  */
    gen_tb_start(tcg_ctx, db->tb);
    // tcg_dump_ops(tcg_ctx, false, "tb start");

    ops->tb_start(db, cpu);
    // tcg_dump_ops(tcg_ctx, false, "tb start 2");

    tcg_debug_assert(db->is_jmp == DISAS_NEXT);  /* no early exit */

    while (true) {
        db->num_insns++;

        ops->insn_start(db, cpu);
        tcg_debug_assert(db->is_jmp == DISAS_NEXT);  /* no early exit */

        /* Pass breakpoint hits to target for further processing */
        if (!db->singlestep_enabled
            && unlikely(!QTAILQ_EMPTY(&cpu->breakpoints))) {
            CPUBreakpoint *bp;
            QTAILQ_FOREACH(bp, &cpu->breakpoints, entry) {
                if (bp->pc == db->pc_next) {
                    if (ops->breakpoint_check(db, cpu, bp)) {
                        bp_insn = 1;
                        break;
                    }
                }
            }
            /* The breakpoint_check hook may use DISAS_TOO_MANY to indicate
               that only one more instruction is to be executed.  Otherwise
               it should use DISAS_NORETURN when generating an exception,
               but may use a DISAS_TARGET_* value for Something Else.  */
            if (db->is_jmp > DISAS_TOO_MANY) {
                break;
            }
        }

        /* Disassemble one instruction.  The translate_insn hook should
           update db->pc_next and db->is_jmp to indicate what should be
           done next -- either exiting this loop or locate the start of
           the next instruction.  */
        ops->translate_insn(db, cpu);
        // tcg_dump_ops(tcg_ctx, false, "insn translate");

        /* Stop translation if translate_insn so indicated.  */
        if (db->is_jmp != DISAS_NEXT) {
            break;
        }

        /* Stop translation if the output buffer is full,
           or we have executed all of the allowed instructions.  */
        if (tcg_op_buf_full(tcg_ctx) || db->num_insns >= db->max_insns) {
            db->is_jmp = DISAS_TOO_MANY;
            break;
        }
    }

_end_loop:
    /* Emit code to exit the TB, as indicated by db->is_jmp.  */
    ops->tb_stop(db, cpu);
    gen_tb_end(tcg_ctx, db->tb, db->num_insns - bp_insn);
    // tcg_dump_ops(tcg_ctx, false, "tb end");

    /* The disas_log hook may use these values rather than recompute.  */
    db->tb->size = db->pc_next - db->pc_first;
    db->tb->icount = db->num_insns;

    hooked_regions_check(uc, db->tb->pc, db->tb->size);

    if (block_hook && uc->inline_block) {
        gen_inline_count(uc, tcg_ctx, prev_op, db->pc_first, db->tb->size);
    } else if (block_hook) {
        TCGOp *tcg_op;

        // Unicorn: patch the callback to have the proper block size.
        if (prev_op) {
            // As explained further up in the function where prev_op is
            // assigned, we move forward in the tail queue, so we're modifying the
            // move instruction generated by gen_uc_tracecode() that contains
            // the instruction size to assign the proper size (replacing 0xF1F1F1F1).
            tcg_op = QTAILQ_NEXT(prev_op, link);
        } else {
            // this basic block is the first emulated code ever,
            // so the basic block operand is the first operand
            tcg_op = QTAILQ_FIRST(&tcg_ctx->ops);
        }

        tcg_op->args[1] = db->tb->size;
    }
}
