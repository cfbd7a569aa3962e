/* Matrix products for the optimizers (see matmul.h): the plain _ref loops, A A^T in
 * bfloat16 and the Newton-Schulz iteration; the fast gemm and bfloat16 addmm are in
 * matmul_tile.c. Those tile rows and columns only, never k: every element's products are
 * added in k order whatever the tiling and the thread count, so the fast and the _ref
 * versions agree bit for bit. The bfloat16 products follow torch 1.13's CPU
 * BlasKernel.cpp rounding (checked against torch.addmm on bfloat16 tensors). */
#include "matmul.h"

#include "../internal.h"

#include <math.h>

static inline float at(const float *x, int64_t ld, bool t, int64_t r, int64_t c)
{
    return t ? x[c * ld + r] : x[r * ld + c];
}

void ow__sgemm_ref(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, bool ta, const float *b, int64_t ldb, bool tb, float beta,
                   float *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float s = 0.0f;
            for (int64_t l = 0; l < k; l++)
                s += at(a, lda, ta, i, l) * at(b, ldb, tb, l, j);
            c[i * ldc + j] = beta == 0.0f ? alpha * s : alpha * s + beta * c[i * ldc + j];
        }
}

/* ---- bfloat16 ------------------------------------------------------------------- */

static void aat_row(int64_t i, int64_t m, int64_t k, const uint16_t *a, uint16_t *c)
{
    const uint16_t *ai = a + i * k;
    for (int64_t j = 0; j < m; j++) {
        const uint16_t *aj = a + j * k;
        float s = 0.0f;
        for (int64_t l = 0; l < k; l++)
            s += ow__bf16_f(ai[l]) * ow__bf16_f(aj[l]); /* exact products */
        c[i * m + j] = ow__bf16(s);
    }
}

void ow__bf16_aat_ref(int64_t m, int64_t k, const uint16_t *a, uint16_t *c)
{
    for (int64_t i = 0; i < m; i++)
        aat_row(i, m, k, a, c);
}

/* The float gemm sums each element's products in k order too: widen, multiply, round. */
void ow__bf16_aat(int64_t m, int64_t k, const uint16_t *a, uint16_t *c, int threads)
{
    float *x = ow__malloc((size_t)(m * k + m * m) * sizeof *x);
    if (!x) {
        ow__bf16_aat_ref(m, k, a, c);
        return;
    }
    float *y = x + m * k;
    for (int64_t i = 0; i < m * k; i++)
        x[i] = ow__bf16_f(a[i]);
    ow__sgemm(m, m, k, 1.0f, x, k, false, x, k, true, 0.0f, y, m, threads);
    for (int64_t i = 0; i < m * m; i++)
        c[i] = ow__bf16(y[i]);
    ow_free(x);
}

void ow__bf16_addmm_ref(int64_t m, int64_t n, int64_t k, float alpha, float beta,
                        const uint16_t *a, const uint16_t *b, uint16_t *c)
{
    for (int64_t i = 0; i < m; i++) {
        uint16_t *ci = c + i * n;
        const float bb = ow__bf16_round(beta);
        for (int64_t j = 0; j < n; j++) {
            float s = beta == 0.0f   ? 0.0f
                      : beta == 1.0f ? ow__bf16_f(ci[j])
                                     : ow__bf16_round(ow__bf16_f(ci[j]) * bb);
            for (int64_t l = 0; l < k; l++) {
                float v = ow__bf16_f(a[i * k + l]) * alpha;
                s = ow__bf16_round(s + ow__bf16_round(ow__bf16_f(b[l * n + j]) * v));
            }
            ci[j] = ow__bf16(s);
        }
    }
}

/* ---- Newton-Schulz in bfloat16 (timm's zeropower_via_newtonschulz) --------------- */

/* torch 1.13's small baddbmm kernel (LinearAlgebra.cpp baddbmm_cpu_kernel) on one
 * matrix, all in bfloat16: r *= beta (beta 0 too: torch reads the uninitialised out of
 * Muon's torch.empty, finite garbage times 0 is 0), then for each l in order
 * r += (alpha * a[i,l]) * b[l,j], every product and sum rounded. bt: b is given as
 * its transpose (n x k). */
static void small_bmm(int64_t m, int64_t n, int64_t k, float alpha, float beta,
                      const uint16_t *a, const uint16_t *b, bool bt, uint16_t *c)
{
    const float al = ow__bf16_round(alpha), be = ow__bf16_round(beta);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float r = beta == 0.0f ? 0.0f : ow__bf16_round(ow__bf16_f(c[i * n + j]) * be);
            for (int64_t l = 0; l < k; l++) {
                float bl = ow__bf16_f(bt ? b[j * k + l] : b[l * n + j]);
                float p =
                    ow__bf16_round(ow__bf16_round(al * ow__bf16_f(a[i * k + l])) * bl);
                r = ow__bf16_round(r + p);
            }
            c[i * n + j] = ow__bf16(r);
        }
}

size_t ow__bf16_ns_scratch(int64_t rows, int64_t cols)
{
    int64_t m = rows < cols ? rows : cols, k = rows < cols ? cols : rows;
    return (size_t)(2 * m * k + 2 * m * m) * sizeof(uint16_t);
}

void ow__bf16_newton_schulz(int64_t rows, int64_t cols, const float *g,
                            const ow__ns_coeff *coeff, int steps, int ncoeff, float eps,
                            float safety, unsigned flags, uint16_t *out, void *scratch,
                            int threads, bool ref)
{
    const bool add_eps = flags & OW__NS_ADD_EPS, strided = flags & OW__NS_STRIDED_NORM,
               bmm = flags & OW__NS_BMM;
    bool tr = rows > cols;
    int64_t m = tr ? cols : rows, k = tr ? rows : cols;
    uint16_t *x = scratch, *c = x + m * k, *a = c + m * k, *b = a + m * m;
    /* X = G.to(bfloat16), transposed to the wide side (.mT.contiguous()) */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < k; j++)
            x[i * k + j] = ow__bf16(tr ? g[j * cols + i] : g[i * cols + j]);
    /* X /= (||X||_F * safety) clamped at eps (or + eps): a bfloat16 norm */
    float nrm;
    if (strided) { /* torch sums a strided bf16 view in bf16, row by row */
        float s = 0.0f;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t q = 0; q < cols; q++) {
                float v = ow__bf16_f(tr ? x[q * k + r] : x[r * k + q]);
                s = ow__bf16_round(s + ow__bf16_round(v * v));
            }
        nrm = ow__bf16_round(sqrtf(s));
    } else {
        double ss = 0;
        for (int64_t i = 0; i < m * k; i++) {
            double v = ow__bf16_f(x[i]);
            ss += v * v;
        }
        nrm = ow__bf16_round((float)sqrt(ss));
    }
    nrm = ow__bf16_round(nrm * ow__bf16_round(safety));
    float e = ow__bf16_round(eps);
    nrm = add_eps ? ow__bf16_round(nrm + e) : (nrm < e ? e : nrm);
    for (int64_t i = 0; i < m * k; i++)
        x[i] = ow__bf16(ow__bf16_f(x[i]) / nrm);
    for (int s = 0; s < steps; s++) {
        const ow__ns_coeff *q = &coeff[s < ncoeff ? s : ncoeff - 1];
        /* baddbmm takes its small kernel below 400 multiply-adds per matrix */
        bool sa = bmm && k * m * m < 400, sb = bmm && m * m * m < 400,
             sc = bmm && m * m * k < 400;
        if (sa) /* A = X X^T */
            small_bmm(m, m, k, 1.0f, 0.0f, x, x, true, a);
        else if (ref)
            ow__bf16_aat_ref(m, k, x, a);
        else
            ow__bf16_aat(m, k, x, a, threads);
        memcpy(b, a, (size_t)(m * m) * sizeof *b); /* B = b A + c A A */
        if (sb)
            small_bmm(m, m, m, q->c, q->b, a, a, false, b);
        else if (ref)
            ow__bf16_addmm_ref(m, m, m, q->c, q->b, a, a, b);
        else
            ow__bf16_addmm(m, m, m, q->c, q->b, a, a, b, threads);
        memcpy(c, x, (size_t)(m * k) * sizeof *c); /* C = a X + B X */
        if (sc)
            small_bmm(m, k, m, 1.0f, q->a, b, x, false, c);
        else if (ref)
            ow__bf16_addmm_ref(m, k, m, 1.0f, q->a, b, x, c);
        else
            ow__bf16_addmm(m, k, m, 1.0f, q->a, b, x, c, threads);
        uint16_t *t = x;
        x = c;
        c = t;
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < k; j++) {
            if (tr)
                out[j * m + i] = x[i * k + j];
            else
                out[i * k + j] = x[i * k + j];
        }
}
