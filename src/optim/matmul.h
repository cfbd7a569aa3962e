/* matmul.h -- the matrix products of the optimizers that need them (Muon's
 * Newton-Schulz iteration, Kron's preconditioner): a float32 gemm whose every element
 * sums its products in k order (so the result does not depend on blocking or threads),
 * and bfloat16 products that round as torch 1.13's CPU addmm does. Each has a plain
 * _ref twin that the tests compare with. */
#ifndef OW_OPTIM_MATMUL_H
#define OW_OPTIM_MATMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* float -> bfloat16, round to nearest even (torch's c10::BFloat16 conversion). */
static inline uint16_t ow__bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet */
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float ow__bf16_f(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* float rounded through bfloat16 */
static inline float ow__bf16_round(float f)
{
    return ow__bf16_f(ow__bf16(f));
}

/* C[m x n] = alpha * op(A) op(B) + beta * C (beta 0: C is not read), row-major;
 * op(A) is m x k (A[i*lda + l], or A[l*lda + i] when ta), op(B) is k x n (B[l*ldb + j],
 * or B[j*ldb + l] when tb). Each element is sum_l op(A)[i,l]*op(B)[l,j] accumulated
 * in float32 in l order from 0, then alpha*sum (+ beta*c). Cache-blocked, rows split
 * over up to `threads` threads. */
void ow__sgemm(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
               bool ta, const float *b, int64_t ldb, bool tb, float beta, float *c,
               int64_t ldc, int threads);
/* The same in three plain loops. */
void ow__sgemm_ref(int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, bool ta, const float *b, int64_t ldb, bool tb, float beta,
                   float *c, int64_t ldc);

/* bfloat16 C[m x m] = A A^T for a contiguous A[m x k]: torch 1.13's addmm(A, X, X.mT,
 * beta=0) on the CPU (BlasKernel gemm_transa_): float products summed in k order, the
 * sum rounded once. */
void ow__bf16_aat(int64_t m, int64_t k, const uint16_t *a, uint16_t *c, int threads);
/* bfloat16 C[m x n] = beta * C + alpha * A B for contiguous A[m x k], B[k x n] (C may
 * not alias A or B): torch 1.13's addmm(C, A, B, beta=, alpha=) (gemm_notrans_), which
 * works in bfloat16: C *= bf16(beta) rounded (unless beta is 1; beta 0 clears C), then
 * for each l in order C[i,j] += bf16(B[l,j] * (A[i,l] * alpha)), rounded each time. */
void ow__bf16_addmm(int64_t m, int64_t n, int64_t k, float alpha, float beta,
                    const uint16_t *a, const uint16_t *b, uint16_t *c, int threads);
void ow__bf16_aat_ref(int64_t m, int64_t k, const uint16_t *a, uint16_t *c);
void ow__bf16_addmm_ref(int64_t m, int64_t n, int64_t k, float alpha, float beta,
                        const uint16_t *a, const uint16_t *b, uint16_t *c);

/* One Newton-Schulz iteration's coefficients: X = a X + (b A + c A A) X, A = X X^T. */
typedef struct ow__ns_coeff {
    float a, b, c;
} ow__ns_coeff;

/* Bytes of scratch ow__bf16_newton_schulz needs for a rows x cols matrix. */
size_t ow__bf16_ns_scratch(int64_t rows, int64_t cols);
/* ow__bf16_newton_schulz flags */
#define OW__NS_ADD_EPS 0x1u /* scale_eps: |X| * safety + eps, not a clamp at eps */
#define OW__NS_STRIDED_NORM                                                              \
    0x2u                /* the norm of a strided view (batched, 2+ positions)            \
                         */
#define OW__NS_BMM 0x4u /* one matrix of a batch: torch's baddbmm */

/* timm's zeropower_via_newtonschulz on the CPU for a row-major rows x cols float matrix
 * g: X = bf16(G) (transposed when rows > cols), X /= max(|X|_F * safety, eps), then
 * `steps` iterations with coeff[min(s, ncoeff - 1)], every product rounded as torch
 * 1.13's bfloat16 addmm does (with OW__NS_BMM: as its baddbmm does, whose products
 * under 400 multiply-adds take a kernel that rounds every product and sum); out
 * (rows x cols) gets the bfloat16 result. scratch: ow__bf16_ns_scratch bytes. ref: the
 * plain products. The Frobenius norm is summed in double (torch sums it in float, in
 * its own order, then rounds to bfloat16: the two agree unless the sum lies within
 * float rounding of a bfloat16 rounding boundary); OW__NS_STRIDED_NORM: as torch 1.13
 * sums a strided bfloat16 view, squares and sums rounded to bfloat16 one element at a
 * time in row order. */
void ow__bf16_newton_schulz(int64_t rows, int64_t cols, const float *g,
                            const ow__ns_coeff *coeff, int steps, int ncoeff, float eps,
                            float safety, unsigned flags, uint16_t *out, void *scratch,
                            int threads, bool ref);

#endif /* OW_OPTIM_MATMUL_H */
