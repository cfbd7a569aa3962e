/* torch 1.13's float32 reductions on the CPU (one thread), in its order, for fastai's
 * per-tensor norms: torch.norm(x) (norm_kernel_tensor_iterator_impl's last-dim path: 8
 * lanes of fused x*x, folded left, then the tail) and x.sum() (cascade_sum: fewer than 8
 * elements as scalars, else 8-lane vectors summed 4 rows at a time in 4 levels, the tail,
 * then the lanes). Checked against torch in check_fastai. Above torch's grain (32768
 * elements) torch splits the sum between its threads, an order that depends on their
 * count: from there the result can differ from torch's in the last place. */
#include "fastai_internal.h"

#include <string.h>

/* An element as a reduction loads it: x, or x*x rounded (x.pow(2) then summed). */
static inline float load(const float *x, size_t i, bool sq)
{
    return sq ? x[i] * x[i] : x[i];
}

static int ceil_log2(size_t x) /* torch's utils::CeilLog2 */
{
    if (x <= 2)
        return 1;
    int b = 0;
    for (size_t v = x - 1; v; v >>= 1)
        b++;
    return b;
}

/* torch's row_sum over `size` units of `lanes` consecutive elements (lanes 8: one
 * Vectorized<float>, lanes 1: a scalar): rows of 4 units summed in a cascade of 4
 * levels (multi_row_sum), the rest into row 0, then rows 1..3 into row 0; out[lanes] */
static inline __attribute__((always_inline)) void row_sum(const float *x, size_t size,
                                                          int lanes, bool sq, float *out)
{
    float acc[4][4][8] = {{{0}}};
    size_t rows = size / 4;
    int power = ceil_log2(rows) / 4;
    if (power < 4)
        power = 4;
    size_t step = (size_t)1 << power, mask = step - 1, i = 0;
    while (i + step <= rows) {
        for (size_t j = 0; j < step; j++, i++)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < lanes; l++)
                    acc[0][k][l] +=
                        load(x, (i * 4 + (size_t)k) * (size_t)lanes + (size_t)l, sq);
        for (int j = 1; j < 4; j++) {
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < lanes; l++) {
                    acc[j][k][l] += acc[j - 1][k][l];
                    acc[j - 1][k][l] = 0;
                }
            if (i & (mask << (j * power)))
                break;
        }
    }
    for (; i < rows; i++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < lanes; l++)
                acc[0][k][l] +=
                    load(x, (i * 4 + (size_t)k) * (size_t)lanes + (size_t)l, sq);
    for (int j = 1; j < 4; j++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < lanes; l++)
                acc[0][k][l] += acc[j][k][l];
    for (size_t u = rows * 4; u < size; u++)
        for (int l = 0; l < lanes; l++)
            acc[0][0][l] += load(x, u * (size_t)lanes + (size_t)l, sq);
    for (int k = 1; k < 4; k++)
        for (int l = 0; l < lanes; l++)
            acc[0][0][l] += acc[0][k][l];
    memcpy(out, acc[0][0], (size_t)lanes * sizeof *out);
}

/* the lanes are independent sums: SIMD clones keep every lane's order */
OW_SIMD static void row_sum8(const float *x, size_t size, float *out)
{
    row_sum(x, size, 8, false, out);
}
OW_SIMD static void row_sum8_sq(const float *x, size_t size, float *out)
{
    row_sum(x, size, 8, true, out);
}

/* torch's cascade_sum of a contiguous float32 row: fewer than 8 elements as scalars,
 * else 8-lane vectors, then the tail, then the lanes in order. */
static float cascade_sum(const float *x, size_t n, bool sq)
{
    float v[8];
    if (n < 8) {
        row_sum(x, n, 1, sq, v);
        return v[0];
    }
    size_t nv = n / 8;
    if (sq)
        row_sum8_sq(x, nv, v);
    else
        row_sum8(x, nv, v);
    float s = 0;
    for (size_t k = nv * 8; k < n; k++)
        s += load(x, k, sq);
    for (int l = 0; l < 8; l++)
        s += v[l];
    return s;
}

float ow__fa_sum(const float *x, size_t n)
{
    return cascade_sum(x, n, false);
}

/* static: clang emits a target_clones function's dispatcher only where it is called,
 * so the clones stay in this file and the exported name calls them */
OW_SIMD static float fa_norm(const float *x, size_t n)
{
    float acc[8] = {0};
    size_t d = 0;
    for (; d + 8 <= n; d += 8)
        for (int l = 0; l < 8; l++)
            acc[l] = fmaf(x[d + (size_t)l], x[d + (size_t)l], acc[l]);
    float b = acc[0];
    for (int l = 1; l < 8; l++)
        b = b + acc[l];
    for (; d < n; d++)
        b = fmaf(x[d], x[d], b);
    return sqrtf(b);
}

float ow__fa_norm(const float *x, size_t n)
{
    return fa_norm(x, n);
}

/* x.pow(2).mean().sqrt(): torch's CPU mean is the sum divided by the count */
float ow__fa_rms(const float *x, size_t n)
{
    return sqrtf(cascade_sum(x, n, true) / (float)n);
}
