/* check_grad_half.c -- half-precision gradients from the host (ow_model_set_grad_half):
 * the kernels read them a work unit at a time, and the parameters are those of a step
 * over the same gradients converted to float32 first, bit for bit, at 1 and 2 threads,
 * through the passes (float32, bf16 and int8 state; a tiny tensor) and a per-tensor
 * step (AdEMAMix); and through an OptimWrapper with grad_dtype (loss scaling, clipping,
 * accumulation, skipped steps, checkpoints mid-window). */
#include "optim_fixture.h"
#include "quant_fixture.h"
#include "testlib.h"

#include <math.h>
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

/* ---- the wrapper ------------------------------------------------------------------ */

/* A host: three tensors (90,000 elements: scanned in parallel chunks; 20,000: one
 * chunk; 10), float32 gradients, or half ones it binds (grad_dtype). */
enum { NT = 3 };
static const int64_t wn[NT] = {90000, 20000, 10};
typedef struct whost {
    ow_model *model;
    ow_optim_wrapper *w;
    float *data[NT], *grad[NT];
    uint16_t *half[NT];
} whost;

static int whost_make(whost *h, const char *yaml, ow_grad_dtype dt, ow_error *err)
{
    memset(h, 0, sizeof *h);
    static const ow_module_info mods[] = {{.name = "", .type = "Net"},
                                          {.name = "fc", .type = "Linear"}};
    ow_check_ok(ow_model_new("net", &h->model, err), err);
    for (size_t i = 0; i < 2; i++)
        ow_check_ok(ow_model_add_module(h->model, &mods[i], err), err);
    static const char *const names[NT] = {"weight", "bias", "scale"};
    for (size_t i = 0; i < NT; i++) {
        h->data[i] = malloc((size_t)wn[i] * sizeof(float));
        h->grad[i] = calloc((size_t)wn[i], sizeof(float));
        h->half[i] = calloc((size_t)wn[i], sizeof(uint16_t));
        for (int64_t e = 0; e < wn[i]; e++)
            h->data[i][e] = 0.01f * (float)((e * 7 + (int64_t)i) % 101 - 50);
        ow_param_info p = {"fc", names[i], 1, &wn[i], true, h->data[i], h->grad[i], NULL};
        ow_check_ok(ow_model_add_param(h->model, &p, err), err);
        if (dt)
            ow_check_ok(ow_model_set_grad_half(h->model, i, h->half[i], dt, err), err);
    }
    ow_cfg *cfg = NULL;
    int rc = ow_cfg_load_string(yaml, "w.yaml", &cfg, err);
    ow_sched_loop loop = {.max_iters = 0};
    if (rc == OW_OK)
        rc = ow_optim_wrapper_new(cfg, h->model, &loop, &h->w, err);
    ow_cfg_free(cfg);
    return rc;
}

static void whost_free(whost *h)
{
    ow_optim_wrapper_free(h->w);
    ow_model_free(h->model);
    for (size_t i = 0; i < NT; i++) {
        free(h->data[i]);
        free(h->grad[i]);
        free(h->half[i]);
    }
}

static uint16_t to_half(ow_grad_dtype dt, float f)
{
    return dt == OW_GRAD_BF16 ? ow__f32_to_bf16(f) : ow__f32_to_f16(f);
}

static float from_half(ow_grad_dtype dt, uint16_t h)
{
    return dt == OW_GRAD_BF16 ? ow__bf16_to_f32(h) : ow__f16_to_f32(h);
}

/* One micro-batch of h (half) and f (float32, or NULL): h adds the loss's gradient times
 * its multiplier in half precision, f holds the same values in float32 (inf at `bad`). */
static void backward(whost *h, whost *f, ow_grad_dtype dt, int it, bool bad)
{
    float m = ow_optim_wrapper_get_loss_multiplier(h->w);
    ck_assert(!f || m == ow_optim_wrapper_get_loss_multiplier(f->w));
    for (size_t i = 0; i < NT; i++)
        for (int64_t e = 0; e < wn[i]; e++) {
            float g = 0.001f * sinf(0.37f * (float)(e + 11 * it) + (float)i) * m;
            float sum = from_half(dt, h->half[i][e]) + from_half(dt, to_half(dt, g));
            h->half[i][e] = to_half(dt, bad && e == 777 % wn[i] ? INFINITY : sum);
            if (f)
                f->grad[i][e] = from_half(dt, h->half[i][e]);
        }
}

static void expect_same(const whost *h, const whost *f)
{
    for (size_t i = 0; i < NT; i++)
        ck_assert(!memcmp(h->data[i], f->data[i], (size_t)wn[i] * sizeof(float)));
}

static const char *const wcfgs[] = {
    "optim_wrapper:\n  type: AmpOptimWrapper\n  loss_scale: {init_scale: 1024.0}\n"
    "  accumulative_counts: 2\n  clip_grad: {max_norm: 0.5}\n"
    "  optimizer: {type: AdamW, lr: 0.01, weight_decay: 0.05}\n",
    "optim_wrapper:\n  clip_grad: {type: value, clip_value: 0.0002}\n"
    "  optimizer: {type: SGD, lr: 0.1, momentum: 0.9}\n",
    "optim_wrapper:\n  clip_grad: {max_norm: 0.1, norm_type: inf}\n"
    "  skip_nonfinite: true\n  optimizer: {type: lamb, lr: 0.01}\n",
};

/* The same updates (parameters bit for bit, norms, skips) as a host whose float32
 * gradients hold the half ones' values (the machine's threads); a skipped window (inf)
 * included, and a checkpoint saved mid-window resumes the same. */
START_TEST(wrapper_same_as_float32)
{
    for (int d = 0; d < 2; d++) {
        ow_grad_dtype dt = d ? OW_GRAD_F16 : OW_GRAD_BF16;
        char yaml[512];
        snprintf(yaml, sizeof yaml, "%s  grad_dtype: %s\n", wcfgs[_i],
                 d ? "float16" : "bfloat16");
        whost h, f, r;
        ow_error err;
        ow_check_ok(whost_make(&h, yaml, dt, &err), &err);
        ow_check_ok(whost_make(&f, wcfgs[_i], OW_GRAD_F32, &err), &err);
        void *ckpt = NULL;
        size_t len = 0;
        for (int it = 0; it < 8; it++) {
            backward(&h, &f, dt, it, it == 4);
            if (it == 5) { /* mid-window under accumulation */
                ow_check_ok(
                    ow_optim_wrapper_save_buffer(h.w, OW_CKPT_PARAMS, &ckpt, &len, &err),
                    &err);
            }
            ow_update_info a, b;
            ow_check_ok(ow_optim_wrapper_update(h.w, &a, &err), &err);
            ow_check_ok(ow_optim_wrapper_update(f.w, &b, &err), &err);
            ck_assert(a.stepped == b.stepped && a.skipped == b.skipped);
            ck_assert(a.nonfinite == b.nonfinite);
            ck_assert(a.grad_norm == b.grad_norm ||
                      (isnan(a.grad_norm) && isnan(b.grad_norm)));
            ck_assert(a.loss_scale == b.loss_scale);
            expect_same(&h, &f);
            for (size_t i = 0; i < NT; i++) /* zeroed at each window's end */
                if (a.window_end)
                    for (int64_t e = 0; e < wn[i]; e++)
                        ck_assert_uint_eq(h.half[i][e], 0);
        }
        ck_assert(ow_optim_wrapper_get_iteration(h.w) == 8);
        /* the checkpoint, reloaded into a fresh host (its half sums too), runs on to the
         * first host's parameters */
        ow_check_ok(whost_make(&r, yaml, dt, &err), &err);
        ow_check_ok(ow_optim_wrapper_load_buffer(r.w, ckpt, len, OW_CKPT_PARAMS, &err),
                    &err);
        free(ckpt);
        for (int it = 5; it < 8; it++) {
            backward(&r, NULL, dt, it, false);
            ow_check_ok(ow_optim_wrapper_update(r.w, NULL, &err), &err);
        }
        expect_same(&r, &h);
        whost_free(&h);
        whost_free(&f);
        whost_free(&r);
    }
}
END_TEST

/* grad_dtype is the contract: gradients of another dtype, or a dtype optwrap does not
 * have, are refused with the parameter and the fix. */
START_TEST(wrapper_refuses)
{
    static const char base[] = "optim_wrapper:\n  optimizer: {type: SGD, lr: 0.1}\n";
    whost h;
    ow_error err;
    char yaml[256];
    snprintf(yaml, sizeof yaml, "%s  grad_dtype: bfloat16\n", base);
    ow_check_ok(whost_make(&h, yaml, OW_GRAD_F32, &err), &err);
    ck_assert_int_eq(ow_optim_wrapper_update(h.w, NULL, &err), OW_ERR_MODEL);
    ck_assert_str_eq(err.message,
                     "optim_wrapper.grad_dtype is bfloat16 but parameter 'fc.weight' has "
                     "float32 gradients (bind its half buffer with "
                     "ow_model_set_grad_half)");
    whost_free(&h);
    ow_check_ok(whost_make(&h, base, OW_GRAD_F16, &err), &err);
    ck_assert_int_eq(ow_optim_wrapper_update(h.w, NULL, &err), OW_ERR_MODEL);
    ck_assert_str_eq(err.message,
                     "optim_wrapper.grad_dtype is float32 but parameter 'fc.weight' has "
                     "float16 gradients (bound with ow_model_set_grad_half: set "
                     "grad_dtype to match)");
    ck_assert_int_eq(ow_optim_wrapper_get_iteration(h.w), 0); /* nothing counted */
    whost_free(&h);
    snprintf(yaml, sizeof yaml, "%s  grad_dtype: int8\n", base);
    ck_assert_int_eq(whost_make(&h, yaml, OW_GRAD_F32, &err), OW_ERR_VALUE);
    ow_check_error(&err, OW_ERR_VALUE, "w.yaml", 3, 15,
                   "optim_wrapper.grad_dtype: should be any of float32, bfloat16, "
                   "float16, got 'int8'");
    whost_free(&h);
    ck_assert_int_eq(whost_make(&h,
                                "optim_wrapper:\n  type: AmpOptimWrapper\n"
                                "  dtype: bfloat16\n  grad_dtype: bfloat16\n"
                                "  optimizer: {type: SGD, lr: 0.1}\n",
                                OW_GRAD_F32, &err),
                     OW_ERR_VALUE);
    ow_check_error(&err, OW_ERR_VALUE, "w.yaml", 4, 15,
                   "optim_wrapper.grad_dtype: an AmpOptimWrapper with dtype float16 or "
                   "bfloat16 takes the host's half gradients itself "
                   "(ow_optim_wrapper_bind_half); remove grad_dtype");
    whost_free(&h);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("grad_half");
    TCase *tc = tcase_create("grad_half");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, same_as_float32_first, 0, OW__ARRAY_LEN(cases));
    tcase_add_test(tc, refused);
    tcase_add_loop_test(tc, wrapper_same_as_float32, 0, OW__ARRAY_LEN(wcfgs));
    tcase_add_test(tc, wrapper_refuses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(suite());
}
