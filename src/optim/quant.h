/* quant.h -- optimizer state in fewer bits (issue #12): bitsandbytes' block-wise dynamic
 * 8-bit quantization (blocks of 256, one float32 absmax each, nearest code of a signed
 * or unsigned dynamic map) and bfloat16 (nearest even, or stochastic rounding from a
 * counter-based generator keyed by seed, step, tensor and element, so no result depends
 * on the thread count). A quantized step decodes a block of each slot into float32,
 * runs the optimizer's own float32 kernel on it, and encodes it back (ow__q_run).
 * Dettmers et al., "8-bit Optimizers via Block-wise Quantization", ICLR 2022:
 * https://arxiv.org/abs/2110.02861 */
#ifndef OW_OPTIM_QUANT_H
#define OW_OPTIM_QUANT_H

#include "../util/half.h"
#include "optim_internal.h"

#include <stdint.h>

#define OW__QBLOCK     256  /* elements per absmax */
#define OW__Q8_MIN     4096 /* tensors below this keep float32 state (bnb min_8bit_size) */
#define OW__QMAX_SLOTS 4    /* quantized slots one kernel may have */
/* Nearest-code buckets (tools/gen_qmap_table.py): a bucket is 2^-OW__QLUT_M of a binade
 * of |y|, binades 2^OW__QLUT_ELO .. 2^0 (larger |y| clamp to the last, smaller to
 * bucket 0), OW__QLUT_NB buckets per sign. */
#define OW__QLUT_M   7
#define OW__QLUT_ELO (-24)
#define OW__QLUT_NB  (1 + (1 - OW__QLUT_ELO) * (1 << OW__QLUT_M))
#define OW__QSHIFT   (23 - OW__QLUT_M)
/* bucket index = (|y|'s bits >> OW__QSHIFT) - OW__QLUT_K0 */
#define OW__QLUT_K0 ((((uint32_t)(127 + OW__QLUT_ELO) << 23) >> OW__QSHIFT) - 1)

/* A dynamic map and what the nearest-code search needs. */
typedef struct ow__qtab {
    float map[256];               /* sorted; code c means map[c] * absmax */
    float mid[256];               /* (map[c] + map[c + 1]) / 2, mid[255] = inf */
    int32_t lut[2 * OW__QLUT_NB]; /* [sign][bucket of |y|] candidate code */
} ow__qtab;

/* bnb's create_dynamic_map(signed=True) (first moments) and (signed=False) */
extern const ow__qtab ow__qtab_signed, ow__qtab_unsigned;

/* How a slot is stored. */
typedef enum ow__qkind {
    OW__Q_F32,     /* float */
    OW__Q_BF16,    /* uint16_t, nearest even */
    OW__Q_BF16_SR, /* uint16_t, stochastic rounding */
    OW__Q_I8S,     /* uint8_t codes of ow__qtab_signed + absmax per block */
    OW__Q_I8U      /* uint8_t codes of ow__qtab_unsigned + absmax per block */
} ow__qkind;

/* ---- codes ------------------------------------------------------------------------ */

/* The nearest code of y (a value divided by its block's absmax): the number of
 * midpoints at or below y (ties go up), by a branchless binary search. */
static inline uint8_t ow__q8_code_ref(const ow__qtab *q, float y)
{
    unsigned c = 0;
    for (unsigned step = 128; step; step >>= 1)
        c += y >= q->mid[c + step - 1] ? step : 0;
    return (uint8_t)c;
}

/* The same from the bucket table, with one load: the bucket of y holds at most one
 * midpoint, so the code is its candidate or the next (tools/gen_qmap_table.py checks
 * this), and the entry carries the midpoint that decides. */
static inline uint8_t ow__q8_code(const ow__qtab *q, float y)
{
    uint32_t u = ow__f32_bits(y);
    int32_t k = (int32_t)((u & 0x7fffffffu) >> OW__QSHIFT) - (int32_t)OW__QLUT_K0;
    k = k < 0 ? 0 : k;
    k = k > OW__QLUT_NB - 1 ? OW__QLUT_NB - 1 : k;
    uint32_t e = q->lut[k + (int32_t)(u >> 31) * OW__QLUT_NB];
    return (uint8_t)((e & 0xffu) + (y >= ow__bits_f32(e & ~0xffu)));
}

/* The largest |x[i]| (the bits of non-negative floats order as the floats do; a nan
 * wins over inf). */
static inline float ow__q8_absmax(const float *restrict x, size_t n)
{
    uint32_t m = 0;
#pragma omp simd reduction(max : m)
    for (size_t i = 0; i < n; i++) {
        uint32_t a = ow__f32_bits(x[i]) & 0x7fffffffu;
        m = a > m ? a : m;
    }
    return ow__bits_f32(m);
}

/* 1 / absmax, 0 for an all-zero (or inf) block: every element then gets the code of 0. */
static inline float ow__q8_scale(float absmax)
{
    return absmax > 0 && absmax < INFINITY ? 1.0f / absmax : 0.0f;
}

/* ---- stochastic rounding's bits ---------------------------------------------------- */

/* A 32-bit integer hash with low bias (lowbias32, C. Wellons). */
static inline uint32_t ow__mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

/* The key of one tensor's step: every element's bits derive from it and the element's
 * index alone. */
uint64_t ow__sr_key(uint64_t seed, uint64_t step, uint64_t tensor);

/* 32 uniform bits for element i under key. */
static inline uint32_t ow__sr_bits(uint64_t key, uint64_t i)
{
    uint32_t h = ow__mix32((uint32_t)i ^ (uint32_t)key);
    return ow__mix32(h + (uint32_t)(key >> 32) + (uint32_t)(i >> 32) * 0x9e3779b9u);
}

/* The stochastic-rounding key of a block of a bf16 slot: the tensor's key this step,
 * the slot's rank among the range's bf16 slots, and the block's first gradient (so
 * optimizers without a step count still draw fresh bits each step). The bits of
 * element i are ow__sr_bits(this, i's index in the tensor). */
static inline uint64_t ow__bf16_block_key(uint64_t key, size_t rank, float g0)
{
    return key + rank * 0x9e3779b97f4a7c15ull +
           ((uint64_t)ow__mix32(ow__f32_bits(g0)) << 32);
}

/* ---- blocks --------------------------------------------------------------------------
 */

/* Decodes n codes (at most a block) into out. */
void ow__q8_decode(const ow__qtab *q, const uint8_t *codes, float absmax, float *out,
                   size_t n);
void ow__q8_decode_ref(const ow__qtab *q, const uint8_t *codes, float absmax, float *out,
                       size_t n);
/* Encodes n values (at most a block) into codes; returns the block's absmax. */
float ow__q8_encode(const ow__qtab *q, const float *x, size_t n, uint8_t *codes);
float ow__q8_encode_ref(const ow__qtab *q, const float *x, size_t n, uint8_t *codes);
/* The block loop's pair: decode also into copy (NULL: none); re-encode x unless it is
 * copy bit for bit (a pass that only read the slot: re-encoding would move the absmax
 * of a block whose largest element is negative), true when it did. */
void ow__q8_decode_copy(const ow__qtab *q, const uint8_t *codes, float absmax, float *out,
                        float *copy, size_t n);
bool ow__q8_reencode(const ow__qtab *q, const float *x, const float *copy, size_t n,
                     uint8_t *codes, float *absmax);
/* Whole tensors: blocks of OW__QBLOCK, absmax[(n + 255) / 256]. */
void ow__q8_quantize(const ow__qtab *q, const float *x, size_t n, uint8_t *codes,
                     float *absmax);
void ow__q8_dequantize(const ow__qtab *q, const uint8_t *codes, const float *absmax,
                       size_t n, float *out);
/* The 8-bit codecs in AVX2 intrinsics (qcodec_x86.c: gathers from the tables), the
 * same bits; the functions above call them where ow__q8x_available(). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define OW__Q8X 1
bool ow__q8x_available(void);
void ow__q8x_decode(const ow__qtab *q, const uint8_t *codes, float absmax, float *out,
                    float *copy, size_t n);
bool ow__q8x_encode(const ow__qtab *q, const float *x, const float *copy, size_t n,
                    uint8_t *codes, float *absmax);
void ow__bf16x_encode(const float *x, size_t n, uint16_t *out);
void ow__bf16x_encode_sr(const float *x, size_t n, uint16_t *out, uint64_t key,
                         uint64_t index);
#else
#define OW__Q8X 0
#endif
/* bfloat16 of n values: nearest even, or stochastic with element i's bits
 * ow__sr_bits(key, index + i). */
void ow__bf16_encode(const float *x, size_t n, uint16_t *out);
void ow__bf16_encode_sr(const float *x, size_t n, uint16_t *out, uint64_t key,
                        uint64_t index);
void ow__bf16_decode(const uint16_t *in, size_t n, float *out);
/* Half gradients from the host: n float16 or bfloat16 values into float32. */
void ow__f16_decode(const uint16_t *in, size_t n, float *out);

/* ---- a float32 kernel over quantized slots ------------------------------------------
 */

typedef struct ow__qslot {
    ow__qkind kind;
    void *data;    /* at the range's first element: float, uint16_t or uint8_t; NULL:
                      absent (the kernel gets NULL) */
    float *absmax; /* 8-bit kinds: [blocks] from the range's first block */
} ow__qslot;

/* One range of a tensor (starting at a block boundary) for an element kernel. */
typedef struct ow__qrange {
    const ow_kernel_args *a; /* the range: n, p, g, ctx, t, sums (its s is not read) */
    ow_kernel_fn fn;         /* the float32 kernel, called once per block */
    const ow__qslot *slot;   /* [nslots] every slot of the kernel, by slot index */
    size_t nslots;
    uint64_t key;   /* OW__Q_BF16_SR: the tensor's key this step (ow__sr_key) */
    uint64_t index; /* the range's first element's index in the tensor */
} ow__qrange;

/* Runs fn block by block: each quantized slot's block is decoded into float32, fn steps
 * it exactly as it steps float32 state, and the block is encoded back (an 8-bit block
 * fn did not change keeps its codes and absmax). _ref: the plain codecs (binary
 * search), for the tests. Returns false when more than OW__QMAX_SLOTS slots are
 * quantized (nothing runs). */
bool ow__q_run(const ow__qrange *r);
bool ow__q_ref(const ow__qrange *r);

/* ---- state_dtype: an optimizer's moments in bf16 or 8 bits ------------------------
 */

/* The `state_dtype` and `stochastic_rounding` keys of the optimizers with element-wise
 * moments (after the reference's keys; in param groups only where given). */
#define OW__KEY_STATE_DTYPE_DEF(d)                                                       \
    {                                                                                    \
        .name = "state_dtype", .type = OW_T_STRING, .def = d, .flags = OW_KEY_OPTIONAL,  \
        .doc = "moment storage: float32, bfloat16, or int8 (bitsandbytes block-wise; "   \
               "tensors under 4096 elements stay float32)"                               \
    }
#define OW__KEY_STATE_DTYPE OW__KEY_STATE_DTYPE_DEF("float32")
#define OW__KEY_STOCHASTIC_ROUNDING                                                      \
    {                                                                                    \
        .name = "stochastic_rounding", .type = OW_T_BOOL, .def = "false",                \
        .flags = OW_KEY_OPTIONAL,                                                        \
        .doc = "state_dtype bfloat16: round moments stochastically (seeded, the same "   \
               "for any thread count)"                                                   \
    }

typedef enum ow__qmode { OW__QM_F32, OW__QM_BF16, OW__QM_BF16_SR, OW__QM_I8 } ow__qmode;

/* The mode the two keys select (absent or null: float32). */
ow__qmode ow__qmode_of(const ow_hparam *state_dtype, const ow_hparam *sr);
/* The keys' rules: state_dtype one of the three names, stochastic_rounding only with
 * bfloat16. False with a message otherwise. */
bool ow__qmode_check(const ow_hparam *state_dtype, const ow_hparam *sr, char *msg,
                     size_t n);

/* One moment of an optimizer: the slot its float32 kernel reads, and under int8 the
 * slots holding its codes (bnb's state1/state2), absmax per block and map. */
typedef struct ow__qmoment {
    int slot;               /* the kernel's slot (exp_avg) */
    int code, absmax, qmap; /* int8 storage slots (state1, absmax1, qmap1); -1: none
                               (the moment stays float32 under int8) */
    bool is_signed;         /* signed map (first moments) or unsigned (squares) */
} ow__qmoment;
typedef struct ow__qplan {
    ow__qmoment m[OW__QMAX_SLOTS];
    int n;
} ow__qplan;

/* What a kernel needs of the mode, kept in the optimizer's ctx by prepare. The
 * stochastic bits of element i of a block starting at o: ow__sr_bits(key + slot's rank
 * * golden + mix(bits of g[o]) << 32, i), so optimizers without a step count still
 * draw fresh bits each step. */
typedef struct ow__qstep {
    ow__qmode mode;
    uint64_t key; /* stochastic rounding: ow__sr_key(0, step, 0), or 0 (no step) */
} ow__qstep;

/* slot_shape for the plan's slots under mode, for a tensor of this shape: -1 absent,
 * else its ndim (out written); other slots: the parameter's shape. */
int ow__qplan_shape(const ow__qplan *p, ow__qmode mode, int slot, int ndim,
                    const int64_t *shape, int64_t *out);
/* slot_dtype for the plan's slots (float32 for others and small tensors). */
ow_dtype ow__qplan_dtype(const ow__qplan *p, ow__qmode mode, int slot, size_t numel);
/* Runs a pass kernel fn (float32 state) over a range whose moments may be stored in
 * another dtype: float32 tensors go straight to fn (with int8's float32 state1/state2
 * of small tensors put where fn reads them); others through ow__q_run (ref: ow__q_ref).
 * nslots: the optimizer's slot count. */
void ow__qplan_pass(const ow__qplan *p, const ow__qstep *q, size_t nslots,
                    const ow_kernel_args *a, ow_kernel_fn fn, bool ref);

/* ---- kernels over bf16 moments in place ---------------------------------------------
 * A kernel may also read and write its moments where state_dtype bfloat16 keeps them,
 * with no block loop: each moment m is read as ow__bf16_to_f32 and written rounded as
 * the block loop would round it (ow__moment_store), block by block of OW__QBLOCK for
 * the stochastic keys. Its bits are the block loop's (check_quant.c holds them to it). */
typedef enum ow__store { OW__STORE_F32, OW__STORE_BF16, OW__STORE_BF16_SR } ow__store;
/* The kernel of a pass over bf16 moments (sr: stochastic rounding). */
typedef void (*ow__bf16_fn)(const ow_kernel_args *a, bool sr);

/* Where slot `slot` of range a is kept under st: float32 at a->s, or bf16 in place. */
static inline void *ow__moment(const ow_kernel_args *a, int slot, ow__store st)
{
    if (st == OW__STORE_F32)
        return a->s[slot];
    return a->full && a->full[slot] ? (uint16_t *)a->full[slot] + a->off : NULL;
}

/* Element i of a moment kept under st. */
#define OW__MOMENT_LOAD(st, x, i)                                                        \
    ((st) == OW__STORE_F32 ? ((const float *)(x))[i]                                     \
                           : ow__bf16_to_f32(((const uint16_t *)(x))[i]))
/* Stores v as element i (index in the tensor: idx) of a moment kept under st, bf16
 * rounded to nearest even or with the block key's bits. */
#define OW__MOMENT_STORE(st, x, i, v, key, idx)                                          \
    do {                                                                                 \
        if ((st) == OW__STORE_F32)                                                       \
            ((float *)(x))[i] = (v);                                                     \
        else if ((st) == OW__STORE_BF16)                                                 \
            ((uint16_t *)(x))[i] = ow__f32_to_bf16(v);                                   \
        else                                                                             \
            ((uint16_t *)(x))[i] = ow__f32_to_bf16_sr(v, ow__sr_bits(key, idx));         \
    } while (0)

/* As ow__qplan_pass, with `fused` (may be NULL) run instead of the block loop where the
 * range's moments are bf16. */
void ow__qplan_pass_bf16(const ow__qplan *p, const ow__qstep *q, size_t nslots,
                         const ow_kernel_args *a, ow_kernel_fn fn, ow__bf16_fn fused,
                         bool ref);

/* A pass kernel fn##_q<ref> of an optimizer file: fn over its moments wherever
 * state_dtype stores them (plan: its ow__qplan; ctx_t: its ctx type, holding an
 * ow__qstep named q; nslots: its slot count). */
#define OW__QPASS(plan, ctx_t, nslots, fn, ref)                                          \
    static void fn##_q##ref(const ow_kernel_args *a)                                     \
    {                                                                                    \
        ow__qplan_pass(&plan, &((const ctx_t *)a->ctx)->q, nslots, a, fn, ref);          \
    }

/* As OW__QPASS for the fast kernel fn##_qfalse, with `fused` (an ow__bf16_fn) over bf16
 * moments in place. */
#define OW__QPASS_BF16(plan, ctx_t, nslots, fn, fused)                                   \
    static void fn##_qfalse(const ow_kernel_args *a)                                     \
    {                                                                                    \
        ow__qplan_pass_bf16(&plan, &((const ctx_t *)a->ctx)->q, nslots, a, fn, fused,    \
                            false);                                                      \
    }

#endif /* OW_OPTIM_QUANT_H */
