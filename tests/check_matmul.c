/* check_matmul.c -- the fast matrix products of src/optim/matmul*.c (register tiles over
 * packed column panels, threads over rows) against their plain _ref loops, bit for bit,
 * on random matrices of awkward sizes at 1 and 2 threads: the float gemm (every
 * transpose), bfloat16 A A^T and addmm, and the whole bfloat16 Newton-Schulz. */
#include "../src/optim/matmul.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

/* a fixed xorshift stream: the same matrices every run */
static float uniform(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((double)(*s >> 40) / (double)(1u << 24)) * 2.0f - 1.0f;
}

static float *rand_f(size_t n, uint64_t seed)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = uniform(&seed);
    return x;
}

static uint16_t *rand_h(size_t n, uint64_t seed)
{
    uint16_t *x = malloc((n ? n : 1) * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = ow__bf16(uniform(&seed));
    return x;
}

/* m x n x k: the sizes around the tiles' 4 rows and 16 columns */
static const int64_t sizes[][3] = {
    {1, 1, 1},     {1, 7, 17},      {7, 1, 17},      {17, 7, 1},
    {4, 16, 5},    {5, 17, 33},     {33, 31, 7},     {64, 64, 64},
    {61, 95, 130}, {20, 3072, 768}, {24, 768, 3072},
};

START_TEST(sgemm_fast_equals_ref)
{
    const int64_t m = sizes[_i][0], n = sizes[_i][1], k = sizes[_i][2];
    float *a = rand_f((size_t)(m * k), 1 + (uint64_t)_i),
          *b = rand_f((size_t)(k * n), 2 + (uint64_t)_i),
          *c0 = rand_f((size_t)(m * n), 3 + (uint64_t)_i);
    float *want = malloc((size_t)(m * n) * sizeof *want),
          *got = malloc((size_t)(m * n) * sizeof *got);
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t & 2;
        float beta = t == 3 ? 0.5f : 0.0f;
        memcpy(want, c0, (size_t)(m * n) * sizeof *want);
        ow__sgemm_ref(m, n, k, 1.5f, a, ta ? m : k, ta, b, tb ? k : n, tb, beta, want, n);
        for (int threads = 1; threads <= 2; threads++) {
            memcpy(got, c0, (size_t)(m * n) * sizeof *got);
            ow__sgemm(m, n, k, 1.5f, a, ta ? m : k, ta, b, tb ? k : n, tb, beta, got, n,
                      threads);
            ck_assert_msg(memcmp(got, want, (size_t)(m * n) * sizeof *got) == 0,
                          "%ldx%ldx%ld ta %d tb %d, %d threads", (long)m, (long)n,
                          (long)k, ta, tb, threads);
        }
    }
    /* A A^T: the symmetric path (upper triangle, mirrored) */
    float *sw = malloc((size_t)(m * m) * sizeof *sw),
          *sg = malloc((size_t)(m * m) * sizeof *sg);
    ow__sgemm_ref(m, m, k, 1.5f, a, k, false, a, k, true, 0.0f, sw, m);
    for (int threads = 1; threads <= 2; threads++) {
        ow__sgemm(m, m, k, 1.5f, a, k, false, a, k, true, 0.0f, sg, m, threads);
        ck_assert_msg(memcmp(sg, sw, (size_t)(m * m) * sizeof *sg) == 0,
                      "A A^T %ldx%ld, %d threads", (long)m, (long)k, threads);
    }
    free(sw), free(sg);
    free(a), free(b), free(c0), free(want), free(got);
}
END_TEST

START_TEST(bf16_products_fast_equal_ref)
{
    const int64_t m = sizes[_i][0], n = sizes[_i][1], k = sizes[_i][2];
    uint16_t *a = rand_h((size_t)(m * k), 4 + (uint64_t)_i),
             *b = rand_h((size_t)(k * n), 5 + (uint64_t)_i),
             *c0 = rand_h((size_t)(m * n), 6 + (uint64_t)_i);
    size_t big = (size_t)(m * (n > m ? n : m));
    uint16_t *want = malloc(big * sizeof *want), *got = malloc(big * sizeof *got);
    const float beta[] = {0.0f, 1.0f, -4.7750f};
    for (int t = 0; t < 3; t++) {
        memcpy(want, c0, (size_t)(m * n) * sizeof *want);
        ow__bf16_addmm_ref(m, n, k, 2.0315f, beta[t], a, b, want);
        for (int threads = 1; threads <= 2; threads++) {
            memcpy(got, c0, (size_t)(m * n) * sizeof *got);
            ow__bf16_addmm(m, n, k, 2.0315f, beta[t], a, b, got, threads);
            ck_assert_msg(memcmp(got, want, (size_t)(m * n) * sizeof *got) == 0,
                          "addmm %ldx%ldx%ld beta %g, %d threads", (long)m, (long)n,
                          (long)k, (double)beta[t], threads);
        }
    }
    ow__bf16_aat_ref(m, k, a, want);
    for (int threads = 1; threads <= 2; threads++) {
        ow__bf16_aat(m, k, a, got, threads);
        ck_assert_msg(memcmp(got, want, (size_t)(m * m) * sizeof *got) == 0,
                      "aat %ldx%ld, %d threads", (long)m, (long)k, threads);
    }
    free(a), free(b), free(c0), free(want), free(got);
}
END_TEST

/* rows x cols, flags */
static const int64_t ns_cases[][3] = {
    {1, 1, 0},          {1, 7, 0},
    {7, 17, 0},         {17, 7, OW__NS_ADD_EPS},
    {5, 3, OW__NS_BMM}, {33, 50, OW__NS_STRIDED_NORM},
    {64, 200, 0},       {130, 61, 0},
};

START_TEST(newton_schulz_fast_equals_ref)
{
    const int64_t rows = ns_cases[_i][0], cols = ns_cases[_i][1];
    const unsigned flags = (unsigned)ns_cases[_i][2];
    const ow__ns_coeff coeff[] = {{3.4445f, -4.7750f, 2.0315f}};
    float *g = rand_f((size_t)(rows * cols), 7 + (uint64_t)_i);
    size_t n = (size_t)(rows * cols);
    void *scratch = malloc(ow__bf16_ns_scratch(rows, cols));
    uint16_t *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
    ow__bf16_newton_schulz(rows, cols, g, coeff, 5, 1, 1e-7f, 1.0f, flags, want, scratch,
                           1, true);
    for (int threads = 1; threads <= 2; threads++) {
        ow__bf16_newton_schulz(rows, cols, g, coeff, 5, 1, 1e-7f, 1.0f, flags, got,
                               scratch, threads, false);
        ck_assert_msg(memcmp(got, want, n * sizeof *got) == 0, "%ldx%ld, %d threads",
                      (long)rows, (long)cols, threads);
    }
    free(g), free(scratch), free(want), free(got);
}
END_TEST

static Suite *make_matmul_suite(void)
{
    Suite *s = suite_create("matmul");
    TCase *tc = tcase_create("Products");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, sgemm_fast_equals_ref, 0, OW__ARRAY_LEN(sizes));
    tcase_add_loop_test(tc, bf16_products_fast_equal_ref, 0, OW__ARRAY_LEN(sizes));
    tcase_add_loop_test(tc, newton_schulz_fast_equals_ref, 0, OW__ARRAY_LEN(ns_cases));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(make_matmul_suite());
}
