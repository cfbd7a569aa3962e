/* check_quant.c -- quantized optimizer state (src/optim/quant.c): bitsandbytes' maps,
 * nearest codes and their error bound, bfloat16 rounding (nearest even, stochastic),
 * the block loop that runs a float32 kernel over quantized slots, and 1,000 AdamW steps
 * in 8 bits and bf16 against float32. */
#include "optim/quant.h"
#include "optim_fixture.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a deterministic generator and an AdamW kernel (adam.c's float32 loop) -------- */

static uint64_t rng_next(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_uniform(uint64_t *s) /* [0, 1) */
{
    return (double)(rng_next(s) >> 11) * 0x1p-53;
}

static double rng_normal(uint64_t *s)
{
    double u = rng_uniform(s) + 0x1p-60, v = rng_uniform(s);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

typedef struct adamw_ctx {
    float keep, b1, omb1, b2, omb2, bc2s, eps, nss;
} adamw_ctx;

static adamw_ctx adamw_prepare(double lr, double b1, double b2, double eps, double wd,
                               double step)
{
    adamw_ctx c = {.keep = (float)(1 - lr * wd),
                   .b1 = (float)b1,
                   .omb1 = (float)(1 - b1),
                   .b2 = (float)b2,
                   .omb2 = (float)(1 - b2),
                   .bc2s = (float)sqrt(1 - pow(b2, step)),
                   .eps = (float)eps,
                   .nss = (float)(-(lr / (1 - pow(b1, step))))};
    return c;
}

/* torch.optim.AdamW's single-tensor step, element by element (slots 0: exp_avg,
 * 1: exp_avg_sq) */
static void adamw_kernel(const ow_kernel_args *a)
{
    const adamw_ctx *c = a->ctx;
    float *p = a->p, *m = a->s[0], *v = a->s[1];
    for (size_t i = 0; i < a->n; i++) {
        float g = a->g[i];
        float mi = fmaf(c->omb1, g, m[i] * c->b1);
        float vi = fmaf(c->omb2 * g, g, v[i] * c->b2);
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / c->bc2s + c->eps;
        p[i] = p[i] * c->keep + (c->nss * mi) / denom;
    }
}

/* reads slot 0 only (a pass that leaves the state as it is) */
static void read_only_kernel(const ow_kernel_args *a)
{
    for (size_t i = 0; i < a->n; i++)
        a->p[i] += a->s[0][i];
}

/* ---- maps ----------------------------------------------------------------------------
 */

START_TEST(maps_equal_bitsandbytes)
{
    char path[512];
    ow_test_path(path, sizeof path, OW_TEST_DATA, "quant/bnb_dynamic_map.txt");
    char *text = ow_test_slurp(path);
    const ow__qtab *tabs[2] = {&ow__qtab_signed, &ow__qtab_unsigned};
    int n = 0;
    for (char *line = text, *next; *line; line = next) {
        next = strchr(line, '\n');
        next = next ? next + 1 : line + strlen(line);
        if (line[0] == '#')
            continue;
        ck_assert_int_lt(n, 512);
        float want = strtof(line, NULL);
        ck_assert_msg(tabs[n / 256]->map[n % 256] == want, "code %d: %a, bnb %a", n,
                      (double)tabs[n / 256]->map[n % 256], (double)want);
        n++;
    }
    ck_assert_int_eq(n, 512);
    free(text);
    /* the zero codes: 127 signed, 0 unsigned; both end at 1.0 */
    ck_assert(ow__qtab_signed.map[127] == 0 && ow__qtab_unsigned.map[0] == 0);
    ck_assert(ow__qtab_signed.map[255] == 1 && ow__qtab_unsigned.map[255] == 1);
    for (int t = 0; t < 2; t++)
        for (int c = 0; c < 255; c++)
            ck_assert(tabs[t]->map[c] < tabs[t]->map[c + 1]);
}
END_TEST

/* The bucket search gives the binary search's code at every bucket edge and midpoint
 * (one ulp either side) and on a million random values of every scale. */
START_TEST(bucket_codes_equal_binary_search)
{
    const ow__qtab *tabs[2] = {&ow__qtab_signed, &ow__qtab_unsigned};
    for (int t = 0; t < 2; t++) {
        const ow__qtab *q = tabs[t];
        for (int c = 0; c < 255; c++)
            for (int d = -2; d <= 2; d++) {
                float y = ow__bits_f32((uint32_t)((int32_t)ow__f32_bits(q->mid[c]) + d));
                ck_assert_uint_eq(ow__q8_code(q, y), ow__q8_code_ref(q, y));
                ck_assert_uint_eq(ow__q8_code(q, -y), ow__q8_code_ref(q, -y));
            }
        for (uint32_t k = 0; k < OW__QLUT_NB + 2; k++)
            for (int d = -1; d <= 1; d++) {
                uint32_t u = ((k + OW__QLUT_K0) << OW__QSHIFT) + (uint32_t)d;
                float y = ow__bits_f32(u);
                ck_assert_uint_eq(ow__q8_code(q, y), ow__q8_code_ref(q, y));
                ck_assert_uint_eq(ow__q8_code(q, -y), ow__q8_code_ref(q, -y));
            }
        uint64_t s = 7;
        long wrong = 0;
        for (int i = 0; i < 1000000; i++) {
            float y = (float)(ldexp(rng_uniform(&s), -(int)(rng_next(&s) % 30)) *
                              (rng_next(&s) & 1 ? -1 : 1));
            wrong += ow__q8_code(q, y) != ow__q8_code_ref(q, y);
        }
        ck_assert_int_eq(wrong, 0);
        ck_assert_uint_eq(ow__q8_code(q, 0.0f), ow__q8_code_ref(q, 0.0f));
        ck_assert_uint_eq(ow__q8_code(q, 1.0f), 255);
        ck_assert_uint_eq(ow__q8_code(q, 1.0000001f), 255);
    }
    ck_assert_uint_eq(ow__q8_code(&ow__qtab_signed, 0.0f), 127);
    ck_assert_uint_eq(ow__q8_code(&ow__qtab_signed, -1.0f), 0);
}
END_TEST

/* Half the gap between the two codes around y (at the ends: the end gap). */
static double half_step(const ow__qtab *q, double y)
{
    int j = 0;
    while (j < 254 && q->map[j + 1] < y)
        j++;
    return (q->map[j + 1] - q->map[j]) / 2;
}

/* quantize -> dequantize: every element within half its local code step (times its
 * block's absmax), on blocks with outliers; fast and plain codecs agree. */
START_TEST(roundtrip_within_half_step)
{
    const size_t n = 256 * 64 + 77; /* a partial last block */
    float *x = malloc(n * sizeof *x), *back = malloc(n * sizeof *back),
          *absmax = malloc((n / 256 + 1) * sizeof *absmax);
    uint8_t *codes = malloc(n), *codes_ref = malloc(n);
    for (int signed_map = 0; signed_map < 2; signed_map++) {
        const ow__qtab *q = signed_map ? &ow__qtab_signed : &ow__qtab_unsigned;
        uint64_t s = 42;
        for (size_t i = 0; i < n; i++) {
            double v = rng_normal(&s) * ldexp(1, (int)(i / 256 % 20) - 10);
            if (rng_next(&s) % 97 == 0) /* outliers, a thousand times larger */
                v *= 1000;
            x[i] = (float)(signed_map ? v : v * v);
        }
        ow__q8_quantize(q, x, n, codes, absmax);
        ow__q8_dequantize(q, codes, absmax, n, back);
        for (size_t b = 0; b * 256 < n; b++) {
            size_t m = n - b * 256 < 256 ? n - b * 256 : 256;
            float am = ow__q8_encode_ref(q, x + b * 256, m, codes_ref + b * 256);
            ck_assert(am == absmax[b]);
        }
        ck_assert_mem_eq(codes, codes_ref, n);
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            double am = absmax[i / 256], bound = half_step(q, x[i] / am) * am;
            double err = fabs((double)x[i] - back[i]);
            /* the midpoints are within 2^-15 of the true means (quant.h), and the
             * scaled value is float32: that much slack */
            double slack = am * (fabs(x[i] / am) * 0x1p-15 + 0x1p-24);
            ck_assert_msg(err <= bound + slack, "element %zu", i);
            worst = fmax(worst, err / bound);
        }
        ck_assert_double_le(worst, 1 + 0x1p-13);
    }
    free(x);
    free(back);
    free(absmax);
    free(codes);
    free(codes_ref);
}
END_TEST

/* ---- bfloat16 -----------------------------------------------------------------------
 */

static const struct {
    uint32_t f;
    uint16_t bf;
} rne_cases[] = {
    {0x3f800000u, 0x3f80}, /* 1 */
    {0x3f808000u, 0x3f80}, /* tie, even below */
    {0x3f818000u, 0x3f82}, /* tie, even above */
    {0x3f808001u, 0x3f81}, /* just above a tie */
    {0x3f807fffu, 0x3f80}, /* just below a tie */
    {0xbf818000u, 0xbf82}, /* negative tie */
    {0x80000000u, 0x8000}, /* -0 */
    {0x00008000u, 0x0000}, /* subnormal tie to even (0) */
    {0x00018000u, 0x0002}, /* subnormal tie to even (2) */
    {0x00000001u, 0x0000}, /* smallest subnormal */
    {0x007fffffu, 0x0080}, /* largest subnormal rounds to the smallest normal */
    {0x7f7fffffu, 0x7f80}, /* largest float overflows to inf */
    {0x7f800000u, 0x7f80}, /* inf */
    {0xff800000u, 0xff80}, /* -inf */
    {0x7fc00000u, 0x7fc0}, /* quiet nan */
    {0x7f800001u, 0x7fc0}, /* signalling nan with a low payload: quiet, not inf */
    {0xffc00001u, 0xffc0}, /* negative nan */
};

START_TEST(bf16_nearest_even)
{
    uint32_t f = rne_cases[_i].f;
    uint16_t out;
    float x = ow__bits_f32(f);
    ow__bf16_encode(&x, 1, &out);
    ck_assert_msg(out == rne_cases[_i].bf, "%08x: %04x, want %04x", f, out,
                  rne_cases[_i].bf);
    ck_assert_uint_eq(ow__f32_to_bf16(x), rne_cases[_i].bf);
}
END_TEST

/* Stochastic rounding: the mean of many roundings is the value (1 + 2^-9 sits a quarter
 * of a bf16 step above 1); exact values, inf and nan are kept. */
START_TEST(bf16_stochastic_unbiased)
{
    const size_t n = 1 << 20;
    float *x = malloc(n * sizeof *x);
    uint16_t *h = malloc(n * sizeof *h);
    const float vals[] = {1.0f + 0x1p-9f, -3.0f - 0x1p-8f * 3 / 4, 1e-30f * 1.3f};
    for (size_t k = 0; k < OW__ARRAY_LEN(vals); k++) {
        for (size_t i = 0; i < n; i++)
            x[i] = vals[k];
        ow__bf16_encode_sr(x, n, h, ow__sr_key(1, 2, 3), 0);
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += ow__bf16_to_f32(h[i]);
        double mean = sum / n, step = ldexp(fabs(vals[k]), -7);
        /* the standard error is below step / 2 / sqrt(n) = step / 2048 */
        ck_assert_msg(fabs(mean - vals[k]) < step / 256, "%g: mean %.9g", vals[k], mean);
    }
    const uint32_t keep[] = {0x3f800000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0};
    for (size_t k = 0; k < OW__ARRAY_LEN(keep); k++)
        for (uint32_t r = 0; r < 0x10000; r += 0x7ff) {
            uint16_t o = ow__f32_to_bf16_sr(ow__bits_f32(keep[k]), r);
            ck_assert_uint_eq(o, keep[k] >> 16);
        }
    free(x);
    free(h);
}
END_TEST

/* ---- the block loop -----------------------------------------------------------------
 */

typedef struct qstate {
    size_t n;
    float *p, *g, *m, *v, *am1, *am2;
    uint16_t *hm, *hv;
    uint8_t *cm, *cv;
} qstate;

static qstate qstate_new(size_t n, uint64_t seed)
{
    size_t nb = (n + 255) / 256;
    qstate q = {.n = n,
                .p = malloc(n * 4),
                .g = malloc(n * 4),
                .m = calloc(n, 4),
                .v = calloc(n, 4),
                .am1 = calloc(nb, 4),
                .am2 = calloc(nb, 4),
                .hm = calloc(n, 2),
                .hv = calloc(n, 2),
                .cm = calloc(n, 1),
                .cv = calloc(n, 1)};
    for (size_t i = 0; i < n; i++) {
        q.p[i] = (float)rng_normal(&seed);
        q.g[i] = (float)(rng_normal(&seed) * 1e-2);
    }
    return q;
}

static void qstate_free(qstate *q)
{
    free(q->p);
    free(q->g);
    free(q->m);
    free(q->v);
    free(q->am1);
    free(q->am2);
    free(q->hm);
    free(q->hv);
    free(q->cm);
    free(q->cv);
}

/* One AdamW step over [lo, hi) of q with state of kind k (fast or plain). */
static void qstep(qstate *q, ow__qkind k, const adamw_ctx *c, size_t lo, size_t hi,
                  bool ref, uint64_t key)
{
    ow_kernel_args a = {.n = hi - lo, .p = q->p + lo, .g = q->g + lo, .ctx = c};
    ow__qslot s[2];
    if (k == OW__Q_F32) {
        s[0] = (ow__qslot){.kind = k, .data = q->m + lo};
        s[1] = (ow__qslot){.kind = k, .data = q->v + lo};
    } else if (k == OW__Q_BF16 || k == OW__Q_BF16_SR) {
        s[0] = (ow__qslot){.kind = k, .data = q->hm + lo};
        s[1] = (ow__qslot){.kind = k, .data = q->hv + lo};
    } else {
        s[0] = (ow__qslot){
            .kind = OW__Q_I8S, .data = q->cm + lo, .absmax = q->am1 + lo / 256};
        s[1] = (ow__qslot){
            .kind = OW__Q_I8U, .data = q->cv + lo, .absmax = q->am2 + lo / 256};
    }
    ow__qrange r = {
        .a = &a, .fn = adamw_kernel, .slot = s, .nslots = 2, .key = key, .index = lo};
    ck_assert(ref ? ow__q_ref(&r) : ow__q_run(&r));
}

/* The fast loop and the plain one give the same bits; ranges cut anywhere on block
 * boundaries (threads, work units) give the same bits, stochastic rounding included. */
START_TEST(block_loop_fast_equals_ref_and_any_split)
{
    const ow__qkind kinds[] = {OW__Q_BF16, OW__Q_BF16_SR, OW__Q_I8S};
    const size_t n = 256 * 40 + 13;
    for (size_t k = 0; k < OW__ARRAY_LEN(kinds); k++) {
        qstate a = qstate_new(n, 5), b = qstate_new(n, 5), c = qstate_new(n, 5);
        for (int step = 1; step <= 5; step++) {
            adamw_ctx ctx = adamw_prepare(1e-2, 0.9, 0.999, 1e-8, 0.01, step);
            uint64_t key = ow__sr_key(9, (uint64_t)step, 0);
            qstep(&a, kinds[k], &ctx, 0, n, false, key);
            qstep(&b, kinds[k], &ctx, 0, n, true, key);
            size_t cut1 = 256 * 7, cut2 = 256 * 31; /* three "threads" */
            qstep(&c, kinds[k], &ctx, 0, cut1, false, key);
            qstep(&c, kinds[k], &ctx, cut2, n, false, key);
            qstep(&c, kinds[k], &ctx, cut1, cut2, false, key);
        }
        ck_assert_mem_eq(a.p, b.p, n * 4);
        ck_assert_mem_eq(a.p, c.p, n * 4);
        ck_assert_mem_eq(a.hm, b.hm, n * 2);
        ck_assert_mem_eq(a.hv, c.hv, n * 2);
        ck_assert_mem_eq(a.cm, b.cm, n);
        ck_assert_mem_eq(a.cv, c.cv, n);
        ck_assert_mem_eq(a.am1, b.am1, (n + 255) / 256 * 4);
        ck_assert_mem_eq(a.am2, c.am2, (n + 255) / 256 * 4);
        qstate_free(&a);
        qstate_free(&b);
        qstate_free(&c);
    }
}
END_TEST

/* The kernel sees the decoded state and its float32 arithmetic is the float32 kernel's:
 * one step from zero state gives float32's parameters exactly (the state starts at 0,
 * which every kind stores exactly). */
START_TEST(first_step_is_float32s)
{
    const ow__qkind kinds[] = {OW__Q_BF16, OW__Q_BF16_SR, OW__Q_I8S};
    const size_t n = 256 * 9;
    for (size_t k = 0; k < OW__ARRAY_LEN(kinds); k++) {
        qstate a = qstate_new(n, 11), f = qstate_new(n, 11);
        adamw_ctx ctx = adamw_prepare(1e-3, 0.9, 0.999, 1e-8, 0.05, 1);
        qstep(&a, kinds[k], &ctx, 0, n, false, 1);
        qstep(&f, OW__Q_F32, &ctx, 0, n, false, 1);
        ck_assert_mem_eq(a.p, f.p, n * 4);
        qstate_free(&a);
        qstate_free(&f);
    }
}
END_TEST

/* A kernel that only reads an 8-bit slot leaves its codes and absmax as they were (a
 * block whose largest element is negative would otherwise drift). */
START_TEST(read_only_pass_keeps_codes)
{
    const size_t n = 512;
    float x[512], p[512] = {0}, g[512] = {0}, am[2], am0[2];
    uint8_t c[512], c0[512];
    for (size_t i = 0; i < n; i++)
        x[i] = -(float)(i % 256 + 1) / 100.0f; /* largest magnitude negative */
    ow__q8_quantize(&ow__qtab_signed, x, n, c, am);
    memcpy(c0, c, n);
    memcpy(am0, am, sizeof am);
    ow_kernel_args a = {.n = n, .p = p, .g = g};
    ow__qslot s = {.kind = OW__Q_I8S, .data = c, .absmax = am};
    ow__qrange r = {.a = &a, .fn = read_only_kernel, .slot = &s, .nslots = 1};
    for (int k = 0; k < 3; k++)
        ck_assert(ow__q_run(&r));
    ck_assert_mem_eq(c, c0, n);
    ck_assert_mem_eq(am, am0, sizeof am);
    ck_assert_float_eq(p[255], 3 * ow__qtab_signed.map[c0[255]] * am0[0]);
}
END_TEST

/* 1,000 AdamW steps on a deterministic problem (n = 65,536 quadratic bowls of curvature
 * from 0.01 to 100, with gradient noise from a fixed seed): the 8-bit and bf16
 * trajectories stay within a relative distance of the float32 one, measured every 100
 * steps as |x_q - x_32| / |x_32 - x_0| (figures measured on this machine, in the
 * comments; the bounds leave about 2x room). */
START_TEST(adamw_thousand_steps_near_float32)
{
    const size_t n = 16384;
    const ow__qkind kinds[] = {OW__Q_F32, OW__Q_BF16, OW__Q_BF16_SR, OW__Q_I8S};
    const double bound[] = {0, 0.012, 0.006, 0.06}; /* measured: 0.0056, 0.0026, 0.029 */
    qstate st[4];
    float *curv = malloc(n * 4), *x0 = malloc(n * 4);
    uint64_t s = 3;
    for (size_t i = 0; i < n; i += 256) { /* a scale per block, as in a layer */
        double scale = pow(10, -2 + 4 * rng_uniform(&s));
        for (size_t j = i; j < i + 256; j++)
            curv[j] = (float)(scale * (0.5 + rng_uniform(&s)));
    }
    for (size_t k = 0; k < 4; k++)
        st[k] = qstate_new(n, 17);
    memcpy(x0, st[0].p, n * 4);
    double worst[4] = {0};
    for (int step = 1; step <= 1000; step++) {
        adamw_ctx ctx = adamw_prepare(1e-2, 0.9, 0.999, 1e-8, 0.01, step);
        uint64_t noise = (uint64_t)step * 7919;
        for (size_t k = 0; k < 4; k++) {
            uint64_t ns = noise;
            for (size_t i = 0; i < n; i++) /* grad of curv/2 (x - 1)^2, plus noise */
                st[k].g[i] =
                    curv[i] * (st[k].p[i] - 1 + (float)(rng_uniform(&ns) - 0.5) * 0.2f);
            qstep(&st[k], kinds[k], &ctx, 0, n, false, ow__sr_key(1, (uint64_t)step, 0));
        }
        if (step % 100)
            continue;
        for (size_t k = 1; k < 4; k++) {
            double d = 0, t = 0;
            for (size_t i = 0; i < n; i++) {
                d += pow(st[k].p[i] - st[0].p[i], 2);
                t += pow(st[0].p[i] - x0[i], 2);
            }
            worst[k] = fmax(worst[k], sqrt(d / t));
        }
    }
    for (size_t k = 1; k < 4; k++) {
        ck_assert_double_le(worst[k], bound[k]);
    }
    for (size_t k = 0; k < 4; k++)
        qstate_free(&st[k]);
    free(curv);
    free(x0);
}
END_TEST

/* ---- through the engine: AdamW with state_dtype ---------------------------------- */

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
    for (size_t i = 0; i < 3; i++) {
        ck_assert_mem_eq(f[0].data[i], sim[i].p, sim[i].n * 4);
        ck_assert_mem_eq(f[1].data[i], sim[i].p, sim[i].n * 4);
        qstate_free(&sim[i]);
    }
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

static Suite *make_quant_suite(void)
{
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("Codes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, maps_equal_bitsandbytes);
    tcase_add_test(tc, bucket_codes_equal_binary_search);
    tcase_add_test(tc, roundtrip_within_half_step);
    tcase_add_loop_test(tc, bf16_nearest_even, 0, OW__ARRAY_LEN(rne_cases));
    tcase_add_test(tc, bf16_stochastic_unbiased);
    suite_add_tcase(s, tc);
    TCase *tb = tcase_create("Blocks");
    tcase_set_timeout(tb, 120);
    tcase_add_test(tb, block_loop_fast_equals_ref_and_any_split);
    tcase_add_test(tb, first_step_is_float32s);
    tcase_add_test(tb, read_only_pass_keeps_codes);
    tcase_add_test(tb, adamw_thousand_steps_near_float32);
    suite_add_tcase(s, tb);
    TCase *te = tcase_create("Engine");
    tcase_set_timeout(te, 60);
    tcase_add_test(te, engine_adamw_int8);
    tcase_add_test(te, engine_adamw_bf16);
    tcase_add_test(te, ademamix_matches_bitsandbytes);
    tcase_add_loop_test(te, state_dtypes_thread_independent, 0, OW__ARRAY_LEN(wired));
    suite_add_tcase(s, te);
    return s;
}

int main(void)
{
    return ow_test_run(make_quant_suite());
}
