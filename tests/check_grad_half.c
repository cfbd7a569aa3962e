/* check_grad_half.c -- half-precision gradients from the host (ow_model_set_grad_half):
 * the kernels read them a work unit at a time, and the parameters are those of a step
 * over the same gradients converted to float32 first, bit for bit, at 1 and 2 threads,
 * through the passes (float32, bf16 and int8 state; a tiny tensor) and a per-tensor
 * step (AdEMAMix). */
#include "optim_fixture.h"
#include "quant_fixture.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *entry, *opts;
} cases[] = {
    {"AdamW", "{lr: 0.01, weight_decay: 0.05}"},
    {"AdamW", "{lr: 0.01, state_dtype: int8}"},
    {"AdamW", "{lr: 0.01, state_dtype: bfloat16, stochastic_rounding: true}"},
    {"lamb", "{lr: 0.001, weight_decay: 0.01}"},    /* passes with sums */
    {"AdEMAMix", "{lr: 0.001, state_dtype: int8}"}, /* a per-tensor step */
};

/* Tensors of 90,000 (six work units, parallel at 2 threads), 5,000 and 10 elements
 * (gathered when float32). */
static void run(int c, ow_grad_dtype dt, int threads)
{
    static const int nd[3] = {2, 1, 1};
    static const int64_t shapes[3][3] = {{300, 300}, {5000}, {10}};
    const char *o[1] = {cases[c].opts};
    fixture h, f;
    fix_make(&h, cases[c].entry, 3, nd, shapes, 1, o, 3);
    fix_make(&f, cases[c].entry, 3, nd, shapes, 1, o, 3);
    ow_check_ok(ow_optimizer_set_threads(h.opt, threads, NULL), NULL);
    ow_check_ok(ow_optimizer_set_threads(f.opt, threads, NULL), NULL);
    uint16_t *half[3];
    for (size_t i = 0; i < 3; i++) {
        half[i] = malloc(h.numel[i] * sizeof(uint16_t));
        ck_assert_ptr_nonnull(half[i]);
        ow_error err;
        ow_check_ok(ow_model_set_grad_half(h.model, i, half[i], dt, &err), &err);
    }
    for (int step = 1; step <= 3; step++) {
        fix_grads(&f, 20u + (unsigned)step);
        for (size_t i = 0; i < 3; i++) { /* the host's half gradients, and in float32 */
            for (size_t e = 0; e < f.numel[i]; e++)
                half[i][e] = dt == OW_GRAD_BF16 ? ow__f32_to_bf16(f.grad[i][e])
                                                : ow__f32_to_f16(f.grad[i][e]);
            if (dt == OW_GRAD_BF16)
                ow__bf16_decode(half[i], f.numel[i], f.grad[i]);
            else
                ow__f16_decode(half[i], f.numel[i], f.grad[i]);
        }
        ow_error err;
        ow_check_ok(ow_optimizer_step(h.opt, &err), &err);
        ow_check_ok(ow_optimizer_step(f.opt, &err), &err);
    }
    fix_expect_same(&h, &f, 0, cases[c].opts);
    for (size_t i = 0; i < 3; i++)
        free(half[i]);
    fix_free(&h);
    fix_free(&f);
}

START_TEST(same_as_float32_first)
{
    for (int threads = 1; threads <= 2; threads++) {
        run(_i, OW_GRAD_BF16, threads);
        run(_i, OW_GRAD_F16, threads);
    }
}
END_TEST

START_TEST(refused)
{
    static const int nd[1] = {1};
    static const int64_t shapes[1][3] = {{8}};
    const char *o[1] = {"{lr: 0.1}"};
    fixture f;
    fix_make(&f, "AdamW", 1, nd, shapes, 1, o, 1);
    uint16_t g[8];
    ow_error err;
    ck_assert_int_eq(ow_model_set_grad_half(f.model, 0, g, OW_GRAD_F32, &err),
                     OW_ERR_MISUSE);
    ck_assert_str_eq(
        err.message,
        "ow_model_set_grad_half: dtype 0 is not OW_GRAD_BF16 or OW_GRAD_F16");
    ck_assert_int_eq(ow_model_set_grad_half(f.model, 1, g, OW_GRAD_BF16, &err),
                     OW_ERR_MISUSE);
    fix_free(&f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_half");
    TCase *tc = tcase_create("grad_half");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, same_as_float32_first, 0, OW__ARRAY_LEN(cases));
    tcase_add_test(tc, refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(suite());
}
