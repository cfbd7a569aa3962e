/* check_quant.c -- quantized optimizer state (src/optim/quant.c): bitsandbytes' maps,
 * nearest codes and their error bound, bfloat16 rounding (nearest even, stochastic),
 * the block loop that runs a float32 kernel over quantized slots, and 1,000 AdamW steps
 * in 8 bits and bf16 against float32 (the engine's side: check_state_dtype.c). */
#include "quant_fixture.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* The fast codecs (AVX2 where the CPU has it) give the plain loops' bits for every
 * length up to a block (the vector tails) and on special values: zeros, -0, nan, inf,
 * subnormals, all-zero blocks; a re-encode of an unchanged block keeps its codes. */
START_TEST(fast_codecs_equal_plain_on_specials)
{
    static const float special[] = {0.0f,     -0.0f,     NAN,       -NAN,
                                    INFINITY, -INFINITY, 0x1p-149f, -0x1p-130f,
                                    1e-30f,   3.0f,      -2.5f,     1e-6f};
    const ow__qtab *tabs[2] = {&ow__qtab_signed, &ow__qtab_unsigned};
    float x[256], back[256], back_ref[256], copy[256];
    uint8_t c[256], c_ref[256];
    uint64_t s = 9;
    for (int t = 0; t < 2; t++)
        for (size_t n = 1; n <= 256; n += n < 40 ? 1 : 37)
            for (int kind = 0; kind < 4; kind++) {
                for (size_t i = 0; i < n; i++) {
                    x[i] =
                        (float)(rng_normal(&s) * ldexp(1, (int)(rng_next(&s) % 40) - 30));
                    if (kind == 1 && rng_next(&s) % 5 == 0)
                        x[i] = special[rng_next(&s) % OW__ARRAY_LEN(special)];
                    if (kind == 2)
                        x[i] = 0.0f;
                    if (kind == 3 && i == n / 2)
                        x[i] = special[rng_next(&s) % 6];
                }
                float am = ow__q8_encode(tabs[t], x, n, c);
                /* the plain loops (encode_ref's fmaxf would drop a nan) */
                float am_ref = ow__q8_absmax(x, n), sc = ow__q8_scale(am_ref);
                for (size_t i = 0; i < n; i++)
                    c_ref[i] = ow__q8_code(tabs[t], x[i] * sc);
                ck_assert_uint_eq(ow__f32_bits(am), ow__f32_bits(am_ref));
                ck_assert_mem_eq(c, c_ref, n);
                ow__q8_decode_copy(tabs[t], c, am, back, copy, n);
                ow__q8_decode_ref(tabs[t], c, am, back_ref, n);
                ck_assert_mem_eq(back, back_ref, n * sizeof(float));
                ck_assert_mem_eq(copy, back_ref, n * sizeof(float));
                float am2 = -1;
                ck_assert(!ow__q8_reencode(tabs[t], back, copy, n, c, &am2));
                ck_assert(am2 == -1);
                ck_assert_mem_eq(c, c_ref, n);
            }
}
END_TEST

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

/* The vector encoders give the element functions' bits at every length (tails), on
 * every rne case mixed with random values, and for stochastic rounding with element
 * indices that cross a multiple of 2^32 (the generator's high word). */
START_TEST(bf16_fast_equals_elementwise)
{
    float x[300];
    uint16_t h[300];
    uint64_t s = 5;
    const uint64_t key = ow__sr_key(4, 5, 6);
    const uint64_t index[] = {0, 12345, (1ull << 32) - 150, (5ull << 32) - 7};
    for (size_t n = 1; n <= 300; n += n < 40 ? 1 : 29) {
        for (size_t i = 0; i < n; i++)
            x[i] =
                rng_next(&s) % 3
                    ? (float)(rng_normal(&s) * 1e3)
                    : ow__bits_f32(rne_cases[rng_next(&s) % OW__ARRAY_LEN(rne_cases)].f);
        ow__bf16_encode(x, n, h);
        for (size_t i = 0; i < n; i++)
            ck_assert_uint_eq(h[i], ow__f32_to_bf16(x[i]));
        for (size_t k = 0; k < OW__ARRAY_LEN(index); k++) {
            ow__bf16_encode_sr(x, n, h, key, index[k]);
            for (size_t i = 0; i < n; i++)
                ck_assert_uint_eq(
                    h[i], ow__f32_to_bf16_sr(x[i], ow__sr_bits(key, index[k] + i)));
        }
    }
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

static Suite *make_quant_suite(void)
{
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("Codes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, maps_equal_bitsandbytes);
    tcase_add_test(tc, bucket_codes_equal_binary_search);
    tcase_add_test(tc, fast_codecs_equal_plain_on_specials);
    tcase_add_test(tc, roundtrip_within_half_step);
    tcase_add_loop_test(tc, bf16_nearest_even, 0, OW__ARRAY_LEN(rne_cases));
    tcase_add_test(tc, bf16_fast_equals_elementwise);
    tcase_add_test(tc, bf16_stochastic_unbiased);
    suite_add_tcase(s, tc);
    TCase *tb = tcase_create("Blocks");
    tcase_set_timeout(tb, 120);
    tcase_add_test(tb, block_loop_fast_equals_ref_and_any_split);
    tcase_add_test(tb, first_step_is_float32s);
    tcase_add_test(tb, read_only_pass_keeps_codes);
    tcase_add_test(tb, adamw_thousand_steps_near_float32);
    suite_add_tcase(s, tb);
    return s;
}

int main(void)
{
    return ow_test_run(make_quant_suite());
}
