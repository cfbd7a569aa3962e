/* check_state_dtype.c -- the state_dtype key through the engine: AdamW with int8 and
 * bf16 state equal to the block loop bit for bit, state files under bitsandbytes'
 * names, AdEMAMix against bitsandbytes, and every wired optimizer the same at any
 * thread count and near its float32 run. */
#include "optim_fixture.h"
#include "quant_fixture.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* AdamW (torch's, decoupled decay) with state_dtype on three tensors: 8,000 elements (a
 * partial last block), 21,000 (two work units) and 100 (under 4,096: float32 state1 and
 * state2 under int8). Five steps give the parameters the block loop gives with the
 * float32 kernel above (bit for bit), at 1 and 2 threads alike. */
static void engine_adamw(const char *state_dtype, ow__qkind kind)
{
    static const int nd[3] = {2, 2, 2};
    static const int64_t shapes[3][3] = {{100, 80}, {300, 70}, {10, 10}};
    char opts[160];
    snprintf(opts, sizeof opts, "{lr: 0.01, weight_decay: 0.05, state_dtype: %s%s}",
             state_dtype, kind == OW__Q_BF16_SR ? ", stochastic_rounding: true" : "");
    const char *o[1] = {opts};
    fixture f[2];
    for (int k = 0; k < 2; k++) {
        fix_make(&f[k], "AdamW", 3, nd, shapes, 1, o, 5);
        ow_check_ok(ow_optimizer_set_threads(f[k].opt, k + 1, NULL), NULL);
    }
    qstate sim[3];
    for (size_t i = 0; i < 3; i++) {
        sim[i] = qstate_new(f[0].numel[i], 1);
        memcpy(sim[i].p, f[0].data[i], f[0].numel[i] * 4);
    }
    for (int step = 1; step <= 5; step++) {
        for (int k = 0; k < 2; k++) {
            if (step > 1)
                fix_grads(&f[k], 100u + (unsigned)step);
            ow_error err;
            ow_check_ok(ow_optimizer_step(f[k].opt, &err), &err);
        }
        adamw_ctx c = adamw_prepare(0.01, 0.9, 0.999, 1e-8, 0.05, step);
        for (size_t i = 0; i < 3; i++) {
            memcpy(sim[i].g, f[0].grad[i], f[0].numel[i] * 4);
            ow__qkind k = sim[i].n < OW__Q8_MIN && kind == OW__Q_I8S ? OW__Q_F32 : kind;
            qstep(&sim[i], k, &c, 0, sim[i].n, false, ow__sr_key(0, (uint64_t)step, 0));
        }
    }
    /* the state held: a step count, and per moment 2 bytes (bf16), or a code, an absmax
     * per 256 and the 256-entry map (int8; float32 under 4,096 elements) */
    size_t held = 0;
    for (size_t i = 0; i < 3; i++) {
        ck_assert_mem_eq(f[0].data[i], sim[i].p, sim[i].n * 4);
        ck_assert_mem_eq(f[1].data[i], sim[i].p, sim[i].n * 4);
        size_t n = sim[i].n;
        held +=
            sizeof(double) + (kind != OW__Q_I8S ? 4 * n
                              : n < OW__Q8_MIN  ? 8 * n
                                                : 2 * (n + 4 * ((n + 255) / 256) + 1024));
        qstate_free(&sim[i]);
    }
    ck_assert_uint_eq(ow_optimizer_get_state_bytes(f[0].opt), held);
    /* the state file keeps the codes, absmax and maps under bitsandbytes' names */
    char path[] = "/tmp/check_quant_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ow_error err;
    ow_check_ok(ow_optimizer_save(f[0].opt, path, &err), &err);
    char *file = ow_test_slurp(path), *text = file + 8; /* the header after its size */
    if (kind == OW__Q_I8S) {
        ck_assert_ptr_nonnull(strstr(text, "\"state.0.state1\":{\"dtype\":\"U8\""));
        ck_assert_ptr_nonnull(strstr(text, "\"state.1.absmax2\":{\"dtype\":\"F32\""));
        ck_assert_ptr_nonnull(strstr(text, "\"state.1.qmap1\""));
        ck_assert_ptr_nonnull(strstr(text, "\"state.2.state2\":{\"dtype\":\"F32\""));
        ck_assert_ptr_null(strstr(text, "\"state.2.absmax1\""));
        ck_assert_ptr_null(strstr(text, "exp_avg"));
    } else {
        ck_assert_ptr_nonnull(strstr(text, "\"state.0.exp_avg\":{\"dtype\":\"BF16\""));
        ck_assert_ptr_nonnull(strstr(text, "\"state.2.exp_avg_sq\":{\"dtype\":\"BF16\""));
    }
    free(file);
    /* and loads back into an optimizer of the same settings */
    ow_check_ok(ow_optimizer_load(f[1].opt, path, &err), &err);
    unlink(path);
    for (int k = 0; k < 2; k++)
        fix_free(&f[k]);
}

START_TEST(engine_adamw_int8)
{
    engine_adamw("int8", OW__Q_I8S);
}
END_TEST

START_TEST(engine_adamw_bf16)
{
    engine_adamw("bfloat16", OW__Q_BF16);
    engine_adamw("bfloat16", OW__Q_BF16_SR);
}
END_TEST

/* AdEMAMix against bitsandbytes' pure-torch backend (its ADEMAMIX update with the
 * alpha and beta3 schedulers of AdEMAMix.update_step), run in torch 1.13 on this
 * 6-element problem: p after each of 3 steps, bit for bit. */
START_TEST(ademamix_matches_bitsandbytes)
{
    static const float want[3][6] = {{0x1.04de2ap-1f, -0x1.fa5d3cp-1f, 0x1.ff7ceep+0f,
                                      0x1.eafe24p-3f, -0x1.84bd64p-1f, 0x1.7d0dd8p+0f},
                                     {0x1.09b0bep-1f, -0x1.f4c64p-1f, 0x1.fef9fep+0f,
                                      0x1.d62b02p-3f, -0x1.896f3cp-1f, 0x1.7a219ep+0f},
                                     {0x1.0e7f4cp-1f, -0x1.ef337cp-1f, 0x1.fe773p+0f,
                                      0x1.c1685cp-3f, -0x1.8e1d16p-1f, 0x1.773788p+0f}};
    static const float p0[6] = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f};
    static const int nd[1] = {1};
    static const int64_t shapes[1][3] = {{6}};
    const char *o[1] = {"{lr: 0.01, weight_decay: 0.1, t_alpha: 4, t_beta3: 6}"};
    for (int ref = 0; ref < 2; ref++) {
        fixture f;
        fix_make(&f, "AdEMAMix", 1, nd, shapes, 1, o, 3);
        ow__optimizer_use_ref(f.opt, ref);
        memcpy(f.data[0], p0, sizeof p0);
        for (int step = 1; step <= 3; step++) {
            for (int i = 0; i < 6; i++)
                f.grad[0][i] = ((float)(i + 1) * 0.125f - 0.375f) * (float)(step + 1);
            ow_error err;
            ow_check_ok(ow_optimizer_step(f.opt, &err), &err);
            for (int i = 0; i < 6; i++)
                ck_assert_msg(f.data[0][i] == want[step - 1][i],
                              "step %d [%d]: %a, want %a", step, i, (double)f.data[0][i],
                              (double)want[step - 1][i]);
        }
        fix_free(&f);
    }
}
END_TEST

/* Each wired optimizer with state_dtype on a 20,000-element tensor (and a 100-element
 * one): the same bits at 1 and 2 threads, and near the float32 parameters after 20
 * steps: |p_q - p_32| / |p_32| measured (int8, bf16 stochastic): AdEMAMix 0.00019,
 * 0.00003; AdamW 0.00019, 0.00003; NAdamW 0.00017, 0.00003; Lion 0.00007, 0.00002; SGD
 * (lr 0.01, momentum 0.9) 0.0060, 0.0010; RMSprop (centered, momentum) 0.0050, 0.0011;
 * Adagrad 0.00015, 0.00005; Lamb 0.00041, 0.00007; Lars 0.00006, 0.00001. */
static const struct {
    const char *entry, *opts;
} wired[] = {
    {"AdEMAMix", "lr: 0.001"},
    {"AdamW", "lr: 0.001"},
    {"nadamw", "lr: 0.001"},
    {"lion", "lr: 0.0001"},
    {"SGD", "lr: 0.01, momentum: 0.9"},
    {"RMSprop", "lr: 0.001, momentum: 0.9, centered: true"},
    {"Adagrad", "lr: 0.01, initial_accumulator_value: 0.1"},
    {"lamb", "lr: 0.001, weight_decay: 0.01"},
    {"lars", "lr: 0.1, weight_decay: 0.0001"},
    {"bnbadamw8bit", "lr: 0.001"}, /* int8 by default */
};

START_TEST(state_dtypes_thread_independent)
{
    static const int nd[2] = {2, 1};
    static const int64_t shapes[2][3] = {{200, 100}, {100}};
    const char *modes[] = {"", ", state_dtype: int8",
                           ", state_dtype: bfloat16, stochastic_rounding: true"};
    fixture f[3][2];
    for (int m = 0; m < 3; m++)
        for (int k = 0; k < 2; k++) {
            char opts[200];
            snprintf(opts, sizeof opts, "{%s%s}", wired[_i].opts,
                     m == 0 && strstr(wired[_i].entry, "8bit") ? ", state_dtype: float32"
                                                               : modes[m]);
            const char *o[1] = {opts};
            fix_make(&f[m][k], wired[_i].entry, 2, nd, shapes, 1, o, 9);
            ow_check_ok(ow_optimizer_set_threads(f[m][k].opt, k + 1, NULL), NULL);
        }
    for (int step = 1; step <= 20; step++)
        for (int m = 0; m < 3; m++)
            for (int k = 0; k < 2; k++) {
                fix_grads(&f[m][k], 40u + (unsigned)step);
                ow_error err;
                ow_check_ok(ow_optimizer_step(f[m][k].opt, &err), &err);
            }
    for (int m = 0; m < 3; m++) {
        fix_expect_same(&f[m][0], &f[m][1], 0, "1 and 2 threads");
        double d = 0, t = 0;
        for (size_t i = 0; i < f[0][0].numel[0]; i++) {
            d += pow(f[m][0].data[0][i] - f[0][0].data[0][i], 2);
            t += pow(f[0][0].data[0][i], 2);
        }
        ck_assert_double_le(sqrt(d / t), 0.012);
        if (m > 0) /* the quantized ones did quantize */
            ck_assert_double_gt(sqrt(d / t), 0);
    }
    for (int m = 0; m < 3; m++)
        for (int k = 0; k < 2; k++)
            fix_free(&f[m][k]);
}
END_TEST

/* Kernels that read bf16 moments in place (quant.h's ow__bf16_fn) give the block
 * loop's bits (the ref path keeps it), nearest even and stochastic, at 2 threads, on
 * tensors that end mid-block, for every switch of their loops. */
static const struct {
    const char *entry, *opts;
} in_place[] = {
    {"AdamW", "lr: 0.001, weight_decay: 0.05"},
    {"Adam", "lr: 0.001, weight_decay: 0.1, amsgrad: true"},
    {"AdamW", "lr: 0.001, amsgrad: true, maximize: true"},
    {"adamwlegacy", "lr: 0.001"},
    {"nadamw", "lr: 0.001"},
    {"SGD", "lr: 0.01, momentum: 0.9, dampening: 0.1, weight_decay: 0.01"},
    {"SGD", "lr: 0.01, momentum: 0.9, nesterov: true, maximize: true"},
    {"SGD", "lr: 0.01, weight_decay: 0.01"},
    {"sgdw", "lr: 0.01, weight_decay: 0.01"},
    {"csgdw", "lr: 0.01, weight_decay: 0.01"},
    {"csgdw", "lr: 0.01, nesterov: false"},
    {"lion", "lr: 0.0001, weight_decay: 0.1"},
    {"lion", "lr: 0.0001, foreach: false, maximize: true"},
    {"clion", "lr: 0.0001, weight_decay: 0.1"},
    {"RMSprop", "lr: 0.001"},
    {"RMSprop", "lr: 0.001, centered: true, weight_decay: 0.01"},
    {"RMSprop", "lr: 0.001, momentum: 0.9, centered: true, maximize: true"},
    {"rmsproptf", "lr: 0.001, centered: true"},
    {"rmsproptf", "lr: 0.001, momentum: 0, centered: true, weight_decay: 0.01"},
    {"rmsproptfc", "lr: 0.001, weight_decay: 0.01, lr_in_momentum: false"},
    {"crmsproptf", "lr: 0.001, centered: true"},
    {"crmsproptf", "lr: 0.001, lr_in_momentum: false"},
    {"Adagrad", "lr: 0.01, initial_accumulator_value: 0.1, weight_decay: 0.01"},
    {"adagrad", "lr: 0.01, lr_decay: 0.01, maximize: true"},
    {"lars", "lr: 0.1, weight_decay: 0.0001"},
    {"lars", "lr: 0.1, dampening: 0.1"},
    {"lars", "lr: 0.1, momentum: 0, always_adapt: true"},
    {"nlarc", "lr: 0.1, weight_decay: 0.0001"},
    {"AdEMAMix", "lr: 0.001, t_alpha: 4, t_beta3: 6"},
    {"AdEMAMix", "lr: 0.001, weight_decay: 0"},
/* Lamb's fast kernels multiply by reciprocals where its ref divides: the same bits
 * without bias correction and clipping */
#define LAMB_EXACT "lr: 0.001, bias_correction: false, max_grad_norm: null"
    {"lamb", LAMB_EXACT ", weight_decay: 0.01"},
    {"lamb", LAMB_EXACT},
    {"lamb", LAMB_EXACT ", always_adapt: true, grad_averaging: false"},
    {"lambcw", LAMB_EXACT ", weight_decay: 0.01"},
    {"clamb", LAMB_EXACT ", weight_decay: 0.01"},
    {"clamb", LAMB_EXACT},
#undef LAMB_EXACT
};

START_TEST(bf16_in_place_equals_block_loop)
{
    static const int nd[3] = {2, 1, 1};
    static const int64_t shapes[3][3] = {{70, 90}, {300}, {5000}};
    for (int sr = 0; sr < 2; sr++) {
        char opts[200];
        snprintf(opts, sizeof opts, "{%s, state_dtype: bfloat16%s}", in_place[_i].opts,
                 sr ? ", stochastic_rounding: true" : "");
        const char *o[1] = {opts};
        fixture f[2];
        for (int k = 0; k < 2; k++) {
            fix_make(&f[k], in_place[_i].entry, 3, nd, shapes, 1, o, 4);
            ow__optimizer_use_ref(f[k].opt, k == 1);
            ow_check_ok(ow_optimizer_set_threads(f[k].opt, 2 - k, NULL), NULL);
        }
        for (int step = 1; step <= 6; step++)
            for (int k = 0; k < 2; k++) {
                fix_grads(&f[k], 60u + (unsigned)step);
                ow_error err;
                ow_check_ok(ow_optimizer_step(f[k].opt, &err), &err);
            }
        fix_expect_same(&f[0], &f[1], 0, in_place[_i].entry);
        for (int k = 0; k < 2; k++)
            fix_free(&f[k]);
    }
}
END_TEST

static Suite *make_state_dtype_suite(void)
{
    Suite *s = suite_create("state_dtype");
    TCase *te = tcase_create("Engine");
    tcase_set_timeout(te, 60);
    tcase_add_test(te, engine_adamw_int8);
    tcase_add_test(te, engine_adamw_bf16);
    tcase_add_test(te, ademamix_matches_bitsandbytes);
    tcase_add_loop_test(te, state_dtypes_thread_independent, 0, OW__ARRAY_LEN(wired));
    tcase_add_loop_test(te, bf16_in_place_equals_block_loop, 0, OW__ARRAY_LEN(in_place));
    suite_add_tcase(s, te);
    return s;
}

int main(void)
{
    return ow_test_run(make_state_dtype_suite());
}
