/* The fast matrix products of matmul.h: register tiles of TR rows x TC columns over B
 * packed into column panels. Each output element still takes its products in k order
 * (the tiles split rows and columns only, never k), so the results are those of the
 * _ref loops bit for bit whatever the thread count: the vectors run across columns,
 * eight independent outputs to a register, and the bfloat16 rounding of every
 * multiply-add is done with integer operations on the register. GCC's vector
 * extensions let the OW_SIMD clones pick SSE, AVX2 or AVX-512 code. */
#include "matmul.h"

#include "../internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define TR       4         /* rows of a tile */
#define TC       16        /* columns of a panel: two vectors of eight floats */
#define WORK_MIN (1 << 16) /* multiply-adds below which one thread does it all */

/* the vector helpers are static and inlined: no ABI crosses a clone boundary */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float vf __attribute__((vector_size(32)));
typedef uint32_t vu __attribute__((vector_size(32)));

static inline vf vload(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* bfloat16 rounding of finite floats, nearest even (rnd in matmul.c, eight at once) */
static inline vf vrnd(vf x)
{
    vu u = (vu)x;
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    return (vf)u;
}

/* B (k x n, B[l*ldb + j], or B[j*ldb + l] when tb; bf16: bfloat16 values) as float
 * panels of TC columns, panel p at out + p*k*TC, row l of it at + l*TC, the columns
 * past n zero. */
static void pack_b(int64_t k, int64_t n, const void *b, int64_t ldb, bool tb, bool bf16,
                   float *out)
{
    const float *bf = b;
    const uint16_t *bh = b;
    for (int64_t j0 = 0; j0 < n; j0 += TC) {
        float *p = out + j0 * k;
        for (int64_t l = 0; l < k; l++)
            for (int64_t j = 0; j < TC; j++) {
                int64_t jj = j0 + j, at = tb ? jj * ldb + l : l * ldb + jj;
                p[l * TC + j] = jj >= n ? 0.0f : bf16 ? ow__bf16_f(bh[at]) : bf[at];
            }
    }
}

/* The tiles of the calling thread: every nt-th from its number on (interleaved, so
 * that the triangle of a symmetric product shares out evenly). */
static void share(int64_t *first, int64_t *step)
{
#ifdef _OPENMP
    *first = omp_get_thread_num(), *step = omp_get_num_threads();
#else
    *first = 0, *step = 1;
#endif
}

/* ---- float32 -------------------------------------------------------------------- */

/* One 4x16 tile (or one row of it) over k: for l in order, each accumulator takes the
 * row's a[r*lda + l] times the panel's row l, either as float32 (a multiply then an
 * add, as the _ref loop with -ffp-contract=off) or as torch's bf16 addmm
 * (acc = bf16(acc + bf16(panel * a))). bf is a constant at every call, so each use
 * compiles to its own loop; the accumulators are named variables so that they stay in
 * registers. */
#define TILE_STEP(x0, x1, s)                                                             \
    do {                                                                                 \
        const float s_ = (s);                                                            \
        if (bf) {                                                                        \
            x0 = vrnd(x0 + vrnd(b0 * s_));                                               \
            x1 = vrnd(x1 + vrnd(b1 * s_));                                               \
        } else {                                                                         \
            x0 += s_ * b0;                                                               \
            x1 += s_ * b1;                                                               \
        }                                                                                \
    } while (0)

static inline __attribute__((always_inline)) void tile(bool bf, int rows, int64_t k,
                                                       const float *a, int64_t lda,
                                                       const float *pb, vf acc[TR][2])
{
    if (rows == TR) {
        vf x0 = acc[0][0], x1 = acc[0][1], y0 = acc[1][0], y1 = acc[1][1];
        vf z0 = acc[2][0], z1 = acc[2][1], w0 = acc[3][0], w1 = acc[3][1];
        for (int64_t l = 0; l < k; l++) {
            vf b0 = vload(pb + l * TC), b1 = vload(pb + l * TC + 8);
            TILE_STEP(x0, x1, a[l]);
            TILE_STEP(y0, y1, a[lda + l]);
            TILE_STEP(z0, z1, a[2 * lda + l]);
            TILE_STEP(w0, w1, a[3 * lda + l]);
        }
        acc[0][0] = x0, acc[0][1] = x1, acc[1][0] = y0, acc[1][1] = y1;
        acc[2][0] = z0, acc[2][1] = z1, acc[3][0] = w0, acc[3][1] = w1;
    } else {
        vf x0 = acc[0][0], x1 = acc[0][1];
        for (int64_t l = 0; l < k; l++) {
            vf b0 = vload(pb + l * TC), b1 = vload(pb + l * TC + 8);
            TILE_STEP(x0, x1, a[l]);
        }
        acc[0][0] = x0, acc[0][1] = x1;
    }
}

/* upper: the panels wholly left of the tile's first row are skipped (a symmetric
 * product, mirrored afterwards) */
OW_SIMD static void sg_rows(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                            int64_t lda, const float *pb, float beta, float *c,
                            int64_t ldc, bool upper)
{
    int64_t first, step;
    share(&first, &step);
    for (int64_t j0 = 0; j0 < n; j0 += TC) {
        const float *panel = pb + j0 * k;
        int64_t nj = n - j0 < TC ? n - j0 : TC;
        for (int64_t i = first * TR; i < m; i += step * TR) {
            int rows = m - i < TR ? (int)(m - i) : TR;
            if (upper && j0 + TC <= i)
                continue;
            vf acc[TR][2] = {{{0}}};
            if (rows == TR)
                tile(false, TR, k, a + i * lda, lda, panel, acc);
            else
                for (int r = 0; r < rows; r++)
                    tile(false, 1, k, a + (i + r) * lda, lda, panel, acc + r);
            for (int r = 0; r < rows; r++) {
                float s[TC], *cr = c + (i + r) * ldc + j0;
                memcpy(s, acc[r], sizeof s);
                for (int64_t j = 0; j < nj; j++)
                    cr[j] = beta == 0.0f ? alpha * s[j] : alpha * s[j] + beta * cr[j];
            }
        }
    }
}

void ow__sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
               bool ta, const float *b, int64_t ldb, bool tb, float beta, float *c,
               int64_t ldc, int threads)
{
    if (n < TC / 2 && m > n) { /* narrow C: C^T = op(B)^T op(A)^T (a*b is b*a) */
        float *ct = ow__malloc((size_t)(n * m > 0 ? n * m : 1) * sizeof *ct);
        if (ct) {
            for (int64_t i = 0; beta != 0.0f && i < m; i++)
                for (int64_t j = 0; j < n; j++)
                    ct[j * m + i] = c[i * ldc + j];
            ow__sgemm(n, m, k, alpha, b, ldb, !tb, a, lda, !ta, beta, ct, m, threads);
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++)
                    c[i * ldc + j] = ct[j * m + i];
            ow_free(ct);
            return;
        }
    }
    int64_t panels = (n + TC - 1) / TC;
    size_t nb = (size_t)(panels * TC * k), na = ta ? (size_t)(m * k) : 0;
    float *pb = ow__malloc((nb + na > 0 ? nb + na : 1) * sizeof *pb);
    if (!pb) {
        ow__sgemm_ref(m, n, k, alpha, a, lda, ta, b, ldb, tb, beta, c, ldc);
        return;
    }
    /* A A^T or A^T A (Kron's Gram matrices, bfloat16 X X^T): the upper triangle, mirrored
     */
    const bool sym = a == b && ta != tb && lda == ldb && m == n && beta == 0.0f;
    pack_b(k, n, b, ldb, tb, false, pb);
    if (ta) { /* op(A) as a row-major m x k copy */
        float *pa = pb + nb;
        for (int64_t i = 0; i < m; i++)
            for (int64_t l = 0; l < k; l++)
                pa[i * k + l] = a[l * lda + i];
        a = pa;
        lda = k;
    }
    int nt = (double)m * (double)n * (double)k < WORK_MIN || threads < 1 ? 1 : threads;
#pragma omp parallel num_threads(nt) if (nt > 1)
    sg_rows(m, n, k, alpha, a, lda, pb, beta, c, ldc, sym);
    if (sym) /* C = A A^T: element (j, i) adds the same products in the same order */
        for (int64_t i = 1; i < m; i++)
            for (int64_t j = 0; j < i; j++)
                c[i * ldc + j] = c[j * ldc + i];
    ow_free(pb);
}

/* ---- bfloat16 ------------------------------------------------------------------- */

OW_SIMD static void bf_rows(int64_t m, int64_t n, int64_t k, float beta, const float *v,
                            const float *pb, uint16_t *c)
{
    int64_t first, step;
    share(&first, &step);
    const float bb = ow__bf16_round(beta);
    for (int64_t j0 = 0; j0 < n; j0 += TC) {
        const float *panel = pb + j0 * k;
        int64_t nj = n - j0 < TC ? n - j0 : TC;
        for (int64_t i = first * TR; i < m; i += step * TR) {
            int rows = m - i < TR ? (int)(m - i) : TR;
            vf acc[TR][2];
            for (int r = 0; r < rows; r++) { /* C *= beta, as addmm_row */
                float s[TC] = {0};
                const uint16_t *cr = c + (i + r) * n + j0;
                for (int64_t j = 0; j < nj; j++)
                    s[j] = beta == 0.0f   ? 0.0f
                           : beta == 1.0f ? ow__bf16_f(cr[j])
                                          : ow__bf16_round(ow__bf16_f(cr[j]) * bb);
                memcpy(acc[r], s, sizeof s);
            }
            if (rows == TR)
                tile(true, TR, k, v + i * k, k, panel, acc);
            else
                for (int r = 0; r < rows; r++)
                    tile(true, 1, k, v + (i + r) * k, k, panel, acc + r);
            for (int r = 0; r < rows; r++) {
                float s[TC];
                uint16_t *cr = c + (i + r) * n + j0;
                memcpy(s, acc[r], sizeof s);
                for (int64_t j = 0; j < nj; j++)
                    cr[j] = ow__bf16(s[j]);
            }
        }
    }
}

void ow__bf16_addmm(int64_t m, int64_t n, int64_t k, float alpha, float beta,
                    const uint16_t *a, const uint16_t *b, uint16_t *c, int threads)
{
    int64_t panels = (n + TC - 1) / TC;
    size_t nb = (size_t)(panels * TC * k), na = (size_t)(m * k);
    float *pb = ow__malloc((nb + na > 0 ? nb + na : 1) * sizeof *pb);
    if (!pb) {
        ow__bf16_addmm_ref(m, n, k, alpha, beta, a, b, c);
        return;
    }
    pack_b(k, n, b, n, false, true, pb);
    float *v = pb + nb; /* A[i,l] * alpha in float, as the _ref loop */
    for (size_t i = 0; i < na; i++)
        v[i] = ow__bf16_f(a[i]) * alpha;
    int nt = (double)m * (double)n * (double)k < WORK_MIN || threads < 1 ? 1 : threads;
#pragma omp parallel num_threads(nt) if (nt > 1)
    bf_rows(m, n, k, beta, v, pb, c);
    ow_free(pb);
}
