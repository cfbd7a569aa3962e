/* Muon (timm.optim.muon.Muon): momentum orthogonalized by a Newton-Schulz iteration on
 * the weights that suit it (2-D, or conv weights flattened to out x in*kh*kw, or
 * batched over the kernel positions), with AdamW (NAdamW when nesterov) on the rest;
 * `algo: adamuon` adds AdaMuon's second moment on the orthogonalized update. The
 * Newton-Schulz products run in bfloat16 as timm does, rounded as torch 1.13's CPU
 * addmm and baddbmm round them (matmul.c), so Muon is bit-exact; AdaMuon's RMS norm of
 * the update is summed in double (torch: float32 in its own order). One caveat from
 * the reference: in batched conv mode torch 1.13's baddbmm multiplies the
 * uninitialised out of timm's torch.empty by beta 0 (NaN garbage gives NaN there);
 * optwrap takes it as zero, which torch matches whenever the garbage is finite.
 * https://kellerjordan.github.io/posts/muon/ , AdaMuon https://arxiv.org/abs/2507.11005
 */
#include "optim_internal.h"

#include "matmul.h"

#include <string.h>

#define MUON_KEYS(nesterov, algo)                                                        \
    OW__KEY_NUM("lr", "0.02", "learning rate (fallback: times fallback_lr_scale)"),      \
        OW__KEY_NUM("weight_decay", "0.0", "decoupled weight decay p *= 1 - lr*wd"),     \
        {.name = "momentum",                                                             \
         .type = OW_T_NUMBER,                                                            \
         .def = "0.9",                                                                   \
         .min = 0,                                                                       \
         .max = 1,                                                                       \
         .flags = OW_KEY_RANGE | OW_KEY_MAX_OPEN,                                        \
         .doc = "momentum of the Muon buffer"},                                          \
        OW__KEY_BOOL("nesterov", nesterov, "Nesterov momentum; NAdamW fallback"),        \
        {.name = "ns_steps",                                                             \
         .type = OW_T_INT,                                                               \
         .def = "5",                                                                     \
         .min = 0,                                                                       \
         .max = 1000,                                                                    \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "Newton-Schulz iterations"},                                             \
        {.name = "ns_coefficients",                                                      \
         .type = OW_T_ANY,                                                               \
         .def = "quintic",                                                               \
         .doc = "preset (original, quintic, polar_express, polar_express_safer) or one " \
                "[a, b, c]"},                                                            \
        {.name = "eps",                                                                  \
         .type = OW_T_FLOAT,                                                             \
         .def = "1e-07",                                                                 \
         .min = 0,                                                                       \
         .max = INFINITY,                                                                \
         .flags = OW_KEY_RANGE,                                                          \
         .doc = "floor of the Newton-Schulz norm; AdaMuon's denominator term"},          \
        OW__KEY_ANYNUM("safety_factor", "1.0", "Newton-Schulz norm multiplier"),         \
        {.name = "adjust_lr_fn",                                                         \
         .type = OW_T_STRING,                                                            \
         .def = "match_rms_adamw",                                                       \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "lr scale by shape: original, match_rms_adamw, rms_to_rms (AdaMuon: "    \
                "rsqrt_in), null: none"},                                                \
        {.name = "conv_mode",                                                            \
         .type = OW_T_STRING,                                                            \
         .def = "flatten",                                                               \
         .doc = "conv weights: flatten (out x in*k) or batched (per kernel position)"},  \
        OW__KEY_BOOL("normalize_spatial", "true",                                        \
                     "batched: scale by 1/sqrt(positions)"),                             \
        OW__KEY_ANYNUM("fallback_lr_scale", "1.0", "AdamW fallback lr = lr * this"),     \
        {.name = "betas",                                                                \
         .type = OW_T_NUMLIST,                                                           \
         .def = "[0.9, 0.95]",                                                           \
         .min = 0,                                                                       \
         .max = 1,                                                                       \
         .len = 2,                                                                       \
         .flags = OW_KEY_RANGE | OW_KEY_MAX_OPEN,                                        \
         .doc = "AdamW fallback betas; beta2 also AdaMuon's"},                           \
        {.name = "algo",                                                                 \
         .type = OW_T_STRING,                                                            \
         .def = algo,                                                                    \
         .doc = "muon, or adamuon (second moment of the orthogonalized update)"},        \
        OW__KEY_BOOL("scale_eps", "false", "Newton-Schulz eps * sqrt(in/out), added"),   \
        OW__KEY_PERF("capturable"),                                                      \
        {.name = "verbose",                                                              \
         .type = OW_T_BOOL,                                                              \
         .def = "false",                                                                 \
         .flags = OW_KEY_IGNORED,                                                        \
         .doc = "timm logs its routing; accepted, no effect on the step"},               \
        {.name = "use_fallback",                                                         \
         .type = OW_T_BOOL,                                                              \
         .def = "false",                                                                 \
         .doc = "group option: AdamW for every tensor of the group"},                    \
        {.name = "use_muon",                                                             \
         .type = OW_T_BOOL,                                                              \
         .def = "null",                                                                  \
         .flags = OW_KEY_NULLABLE,                                                       \
         .doc = "group option: Muon (true) or AdamW (false), not by shape"},             \
    {                                                                                    \
        0                                                                                \
    }
static const ow_key muon_keys[] = {MUON_KEYS("false", "muon")};
static const ow_key nmuon_keys[] = {MUON_KEYS("true", "muon")};
static const ow_key adamuon_keys[] = {MUON_KEYS("false", "adamuon")};
static const ow_key nadamuon_keys[] = {MUON_KEYS("true", "adamuon")};

enum {
    P_LR,
    P_WD,
    P_MOMENTUM,
    P_NESTEROV,
    P_NS_STEPS,
    P_NS_COEFF,
    P_EPS,
    P_SAFETY,
    P_ADJUST,
    P_CONV,
    P_NORM_SPATIAL,
    P_FALLBACK_SCALE,
    P_BETAS,
    P_ALGO,
    P_SCALE_EPS,
    P_USE_FALLBACK,
    P_USE_MUON,
    NP
};
static const char *const muon_params[NP + 1] = {
    [P_LR] = "lr",
    [P_WD] = "weight_decay",
    [P_MOMENTUM] = "momentum",
    [P_NESTEROV] = "nesterov",
    [P_NS_STEPS] = "ns_steps",
    [P_NS_COEFF] = "ns_coefficients",
    [P_EPS] = "eps",
    [P_SAFETY] = "safety_factor",
    [P_ADJUST] = "adjust_lr_fn",
    [P_CONV] = "conv_mode",
    [P_NORM_SPATIAL] = "normalize_spatial",
    [P_FALLBACK_SCALE] = "fallback_lr_scale",
    [P_BETAS] = "betas",
    [P_ALGO] = "algo",
    [P_SCALE_EPS] = "scale_eps",
    [P_USE_FALLBACK] = "use_fallback",
    [P_USE_MUON] = "use_muon",
};

enum { S_STEP, S_EXP_AVG, S_EXP_AVG_SQ, S_MOMENTUM };
static const ow_slot muon_slots[] = {
    [S_STEP] = OW__SLOT_COUNTER("step", OW_DTYPE_F32),
    [S_EXP_AVG] = {.name = "exp_avg"},
    [S_EXP_AVG_SQ] = {.name = "exp_avg_sq"},
    [S_MOMENTUM] = {.name = "momentum_buffer"},
    {0},
};

/* ---- Newton-Schulz coefficient presets (timm's _COEFFICIENTS) --------------------- */

#define MAX_COEFF 8
typedef struct preset {
    const char *name;
    int n;
    double c[MAX_COEFF][3];
} preset;
static const preset presets[] = {
    {"original", 1, {{3.4445, -4.7750, 2.0315}}},
    {"quintic",
     5,
     {{4.0848, -6.8946, 2.9270},
      {3.9505, -6.3029, 2.6377},
      {3.7418, -5.5913, 2.3037},
      {2.8769, -3.1427, 1.2046},
      {2.8366, -3.0525, 1.2012}}},
    {"polar_express",
     8,
     {{8.237312490495555, -23.157747414558198, 16.680568411445915},
      {4.082441999064835, -2.893047735332586, 0.5252849256975648},
      {3.9263479922546582, -2.8547468034765298, 0.5318022422894988},
      {3.2982187133085143, -2.424541981026706, 0.48632008358844075},
      {2.2970369434552573, -1.63662558125903, 0.4002628455953627},
      {1.8763805351440397, -1.2347896577722228, 0.35891887501668385},
      {1.8564423485617974, -1.2132449880935525, 0.3568003487825883},
      {1.8749994008682747, -1.2499988017229169, 0.3749994008546422}}},
    {"polar_express_safer",
     8,
     {{8.156554524902461, -22.48329292557795, 15.878769915207462},
      {4.0429299351667245, -2.808917465908704, 0.5000178451051299},
      {3.8916678022926563, -2.7724841532176825, 0.5060648178503389},
      {3.285753657755658, -2.3681294933425394, 0.46449024233003117},
      {2.3005307116270983, -1.6111665557258408, 0.3833374427545273},
      {1.8631210546382593, -1.2042160621002727, 0.3421879560523383},
      {1.8382572152247512, -1.1779263289537742, 0.3396513038637379},
      {1.8749999923301852, -1.2499999836060613, 0.374999991275876}}},
};

static const preset *find_preset(const char *s)
{
    for (size_t i = 0; s && i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, s))
            return &presets[i];
    return NULL;
}

enum { ADJ_NONE, ADJ_ORIGINAL, ADJ_MATCH, ADJ_RMS, ADJ_RSQRT_IN, ADJ_BAD };

static int adjust_fn(const ow_hparam *h)
{
    /* null and "" are falsy in `if adjust_lr_fn:` */
    if (h->absent || h->is_null || !h->s || !h->s[0])
        return ADJ_NONE;
    static const char *const names[] = {"original", "match_rms_adamw", "rms_to_rms",
                                        "rsqrt_in"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(h->s, names[i]))
            return ADJ_ORIGINAL + i;
    return ADJ_BAD;
}

static bool is_adamuon(const ow_hparam *hp)
{
    return hp[P_ALGO].s && !strcmp(hp[P_ALGO].s, "adamuon");
}

/* A number that Python's numbers.Real accepts (not a bool). */
static bool real(const ow_cfg *v, double *out)
{
    ow_cfg_type t = ow_cfg_get_type(v);
    return (t == OW_CFG_INT || t == OW_CFG_FLOAT) && !ow_cfg_get_double(v, out, NULL);
}

static bool triple(const ow_cfg *v, ow__ns_coeff *out)
{
    double x[3];
    if (ow_cfg_get_type(v) != OW_CFG_LIST || ow_cfg_get_size(v) != 3)
        return false;
    for (size_t i = 0; i < 3; i++)
        if (!real(ow_cfg_get_item(v, i), &x[i]))
            return false;
    *out = (ow__ns_coeff){ow__f(x[0]), ow__f(x[1]), ow__f(x[2])};
    return true;
}

/* timm's resolve_ns_coefficients: a preset name, one (a, b, c), or a list of them;
 * the number of triples, 0 when the value is none of these (or has more than 8). */
static int coefficients(const ow_hparam *h, ow__ns_coeff *out)
{
    const preset *ps = find_preset(h->s);
    if (ps) {
        for (int i = 0; i < ps->n; i++)
            out[i] = (ow__ns_coeff){ow__f(ps->c[i][0]), ow__f(ps->c[i][1]),
                                    ow__f(ps->c[i][2])};
        return ps->n;
    }
    if (h->s || !h->cfg)
        return 0;
    if (triple(h->cfg, &out[0]))
        return 1;
    size_t n = ow_cfg_get_size(h->cfg);
    if (ow_cfg_get_type(h->cfg) != OW_CFG_LIST || n == 0 || n > MAX_COEFF)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!triple(ow_cfg_get_item(h->cfg, i), &out[i]))
            return 0;
    return (int)n;
}

static bool check(const ow_hparam *hp, char *msg, size_t n)
{
    ow__ns_coeff co[MAX_COEFF];
    if (!coefficients(&hp[P_NS_COEFF], co)) {
        snprintf(msg, n,
                 "ns_coefficients: a preset name (original, quintic, polar_express, "
                 "polar_express_safer), one [a, b, c] or a list of 1 to %d of them",
                 MAX_COEFF);
        return false;
    }
    const char *conv = hp[P_CONV].s, *algo = hp[P_ALGO].s;
    if (!conv || (strcmp(conv, "flatten") && strcmp(conv, "batched"))) {
        snprintf(msg, n, "conv_mode must be 'flatten' or 'batched'");
        return false;
    }
    if (!algo || (strcmp(algo, "muon") && strcmp(algo, "adamuon"))) {
        snprintf(msg, n, "algo must be 'muon' or 'adamuon'");
        return false;
    }
    int adj = adjust_fn(&hp[P_ADJUST]);
    bool ada = is_adamuon(hp);
    if (adj == ADJ_BAD || (ada && adj == ADJ_ORIGINAL) || (!ada && adj == ADJ_RSQRT_IN)) {
        snprintf(msg, n, "adjust_lr_fn '%s' is not one of %s", hp[P_ADJUST].s,
                 ada ? "match_rms_adamw, rms_to_rms, rsqrt_in (adamuon)"
                     : "original, match_rms_adamw, rms_to_rms");
        return false;
    }
    return true;
}

/* timm's _is_suitable_for_muon (min_dim_size 4, max aspect ratio 128) after the group
 * flags use_fallback / use_muon. */
static bool takes_muon(const ow_hparam *hp, int ndim, const int64_t *shape)
{
    if (ow__hp_true(&hp[P_USE_FALLBACK]))
        return false;
    if (!hp[P_USE_MUON].absent && !hp[P_USE_MUON].is_null)
        return ow__hp_true(&hp[P_USE_MUON]);
    int big = 0;
    for (int d = 0; d < ndim; d++)
        big += shape[d] > 1;
    if (ndim < 2 || big < 2 || shape[0] == 1 || shape[1] == 1)
        return false;
    int64_t rows = shape[0], cols = 1;
    for (int d = 1; d < ndim; d++)
        cols *= shape[d];
    int64_t lo = rows < cols ? rows : cols, hi = rows < cols ? cols : rows;
    return lo >= 4 && (double)hi / (double)lo <= 128.0;
}

static bool per_tensor(const ow_hparam *hp, int ndim, const int64_t *shape)
{
    return takes_muon(hp, ndim, shape);
}

static int slot_shape(const ow_hparam *hp, int slot, int ndim, const int64_t *shape,
                      int64_t *out)
{
    bool muon = takes_muon(hp, ndim, shape), ada = is_adamuon(hp);
    bool has = slot == S_STEP || slot == S_EXP_AVG_SQ ? !muon || ada
               : slot == S_EXP_AVG                    ? !muon
                                                      : muon;
    if (!has)
        return -1;
    if (slot == S_STEP)
        return 0;
    memcpy(out, shape, (size_t)ndim * sizeof *out);
    return ndim;
}

/* ---- per-step constants ---------------------------------------------------------- */

typedef struct muon_ctx {
    /* the AdamW / NAdamW fallback (timm's _multi_tensor_adamw / _nadamw) */
    float keep, b1, omb1, b2, omb2, bc2s, eps, nss;
    bool nesterov;
    /* Muon */
    bool adamuon, batched, normalize_spatial, scale_eps;
    int adjust, ns_steps, ncoeff;
    float safety;
    double lr, wd, momentum, beta2, eps_d, step;
    ow__ns_coeff coeff[MAX_COEFF];
} muon_ctx;

static void prepare(ow_prepare_args *a)
{
    muon_ctx *c = a->ctx;
    const ow_hparam *hp = a->hp;
    double lr = a->lr, wd = hp[P_WD].v[0], b1 = hp[P_BETAS].v[0], b2 = hp[P_BETAS].v[1];
    double flr = lr * hp[P_FALLBACK_SCALE].v[0];
    double step = a->scalars[S_STEP] += 1;
    memset(c, 0, sizeof *c);
    c->keep = ow__f(1 - flr * wd);
    c->b1 = ow__f(b1);
    c->omb1 = ow__f(1 - b1);
    c->b2 = ow__f(b2);
    c->omb2 = ow__f(1 - b2);
    c->bc2s = ow__f(pow(1 - pow(b2, step), 0.5));
    c->eps = ow__f(hp[P_EPS].v[0]);
    c->nss = ow__f(-(flr / (1 - pow(b1, step))));
    c->nesterov = ow__hp_true(&hp[P_NESTEROV]);
    c->adamuon = is_adamuon(hp);
    c->batched = !strcmp(hp[P_CONV].s, "batched");
    c->normalize_spatial = ow__hp_true(&hp[P_NORM_SPATIAL]);
    c->scale_eps = ow__hp_true(&hp[P_SCALE_EPS]);
    c->adjust = adjust_fn(&hp[P_ADJUST]);
    c->ns_steps = (int)hp[P_NS_STEPS].v[0];
    c->safety = ow__f(hp[P_SAFETY].v[0]);
    c->lr = lr;
    c->wd = wd;
    c->momentum = hp[P_MOMENTUM].v[0];
    c->beta2 = b2;
    c->eps_d = hp[P_EPS].v[0];
    c->step = step;
    c->ncoeff = coefficients(&hp[P_NS_COEFF], c->coeff);
}

/* ---- the AdamW / NAdamW fallback, one element pass ------------------------------ */

static void fallback_run(const ow_kernel_args *a)
{
    const muon_ctx *c = a->ctx;
    float *restrict p = a->p, *restrict m = a->s[S_EXP_AVG],
                    *restrict v = a->s[S_EXP_AVG_SQ];
    const float *restrict g = a->g;
    const float keep = c->keep, b1 = c->b1, omb1 = c->omb1, b2 = c->b2, omb2 = c->omb2,
                bc2s = c->bc2s, eps = c->eps, nss = c->nss;
    const bool nest = c->nesterov;
    for (size_t i = 0; i < a->n; i++) {
        float gi = g[i];
        float mi = fmaf(omb1, gi, m[i] * b1); /* _foreach_mul_, _foreach_add_(alpha) */
        float vi = fmaf(omb2 * gi, gi, v[i] * b2); /* _foreach_addcmul_ */
        m[i] = mi;
        v[i] = vi;
        float num = nest ? fmaf(omb1, gi, mi * b1) : mi; /* NAdamW's look-ahead */
        float denom = sqrtf(vi) / bc2s + eps;
        p[i] = p[i] * keep + num / (denom / nss); /* denom / step_size; addcdiv_ */
    }
}

static const ow_pass muon_passes[] = {{.run = fallback_run, .ref = fallback_run}, {0}};

/* ---- Muon / AdaMuon on one tensor ------------------------------------------------ */

/* torch's lerp: self + w*(end - self) below 0.5, else end - (end - self)*(1 - w) */
static inline float lerp(float self, float end, float w)
{
    return fabsf(w) < 0.5f ? fmaf(w, end - self, self)
                           : fmaf(-(end - self), 1.0f - w, end);
}

typedef struct layout {
    int64_t rows, cols, batch; /* Newton-Schulz on batch matrices rows x cols */
    int64_t spatial;           /* kernel positions of a conv weight (1 for 2-D) */
} layout;

static layout layout_of(int ndim, const int64_t *shape, bool batched)
{
    layout l = {shape[0], 1, 1, 1};
    for (int d = 2; d < ndim; d++)
        l.spatial *= shape[d];
    if (batched && ndim >= 3) {
        l.cols = shape[1];
        l.batch = l.spatial;
    } else {
        for (int d = 1; d < ndim; d++)
            l.cols *= shape[d];
    }
    return l;
}

#define ALIGN64(x) (((x) + 63) & ~(size_t)63)

static size_t scratch_bytes(const ow_hparam *hp, int ndim, const int64_t *shape)
{
    if (!takes_muon(hp, ndim, shape))
        return 0;
    size_t numel = 1;
    for (int d = 0; d < ndim; d++)
        numel *= (size_t)shape[d];
    layout l = layout_of(ndim, shape, hp[P_CONV].s && !strcmp(hp[P_CONV].s, "batched"));
    return ALIGN64(numel * sizeof(float)) * 2 + ALIGN64(numel * sizeof(uint16_t)) +
           ALIGN64(ow__bf16_ns_scratch(l.rows, l.cols));
}

static void muon_step(const ow_tensor_args *a)
{
    const muon_ctx *c = a->ctx;
    size_t n = a->numel;
    float *p = a->p, *buf = a->s[S_MOMENTUM];
    const float *g = a->g;
    char *scr = a->scratch;
    float *u = (float *)scr; /* the update, param layout */
    float *mat = (float *)(scr + ALIGN64(n * sizeof(float))); /* one NS input matrix */
    uint16_t *o = (uint16_t *)(scr + 2 * ALIGN64(n * sizeof(float)));
    void *ns = scr + 2 * ALIGN64(n * sizeof(float)) + ALIGN64(n * sizeof(uint16_t));
    const float keep = ow__f(1 - c->lr * c->wd), w = ow__f(1. - c->momentum),
                mom = ow__f(c->momentum);
    for (size_t i = 0; i < n; i++) {
        p[i] = p[i] * keep;                /* param.mul_(1 - lr*wd) */
        buf[i] = lerp(buf[i], a->g[i], w); /* momentum_buf.lerp_(grad, 1 - momentum) */
        u[i] = c->nesterov ? lerp(g[i], buf[i], mom) : buf[i];
    }
    layout l = layout_of(a->ndim, a->shape, c->batched);
    double eps = c->eps_d;
    if (c->scale_eps) /* eps * (din / dout) ** 0.5 of the matrix NS gets */
        eps = eps * pow((double)l.cols / (double)l.rows, 0.5);
    size_t mn = (size_t)(l.rows * l.cols);
    /* batched conv weights go through baddbmm, and the norm of a strided view */
    bool bmm = c->batched && a->ndim >= 3;
    unsigned flags = (c->scale_eps ? OW__NS_ADD_EPS : 0u) | (bmm ? OW__NS_BMM : 0u) |
                     (bmm && l.batch > 1 ? OW__NS_STRIDED_NORM : 0u);
    for (int64_t b = 0; b < l.batch; b++) {
        const float *src = u;
        if (l.batch > 1) { /* (out, in, S) -> (S, out, in) */
            for (size_t e = 0; e < mn; e++)
                mat[e] = u[e * (size_t)l.batch + (size_t)b];
            src = mat;
        }
        uint16_t *dst = l.batch > 1 ? (uint16_t *)(mat + mn) : o;
        ow__bf16_newton_schulz(l.rows, l.cols, src, c->coeff, c->ns_steps, c->ncoeff,
                               ow__f(eps), c->safety, flags, l.batch > 1 ? dst : o, ns,
                               a->threads, a->ref);
        if (l.batch > 1)
            for (size_t e = 0; e < mn; e++)
                o[e * (size_t)l.batch + (size_t)b] = dst[e];
    }
    /* the lr scale from the orthogonalized matrix's (out, in) */
    double out = (double)l.rows, in = (double)l.cols, scale = 1.0;
    if (c->adamuon) { /* AdaMuon reads the parameter's own last two dims */
        out = (double)a->shape[a->ndim - 2];
        in = (double)a->shape[a->ndim - 1];
    }
    bool rms = false;
    switch (c->adjust) {
    case ADJ_ORIGINAL: scale = pow(fmax(1, out / in), 0.5); break;
    case ADJ_MATCH:
        if (c->adamuon) {
            scale = 0.2 * pow(out * in, 0.5);
            rms = true;
        } else {
            scale = 0.2 * pow(fmax(out, in), 0.5);
        }
        break;
    case ADJ_RMS: scale = pow(out / in, 0.5); break;
    case ADJ_RSQRT_IN: scale = pow(in, -0.5); break;
    default: break;
    }
    if (c->batched && a->ndim >= 3 && c->normalize_spatial)
        scale *= pow((double)l.spatial, -0.5);
    const float alpha = ow__f(-c->lr * scale);
    if (!c->adamuon) {
        for (size_t i = 0; i < n; i++) /* param.add_(update_ortho, alpha=-lr*scale) */
            p[i] = fmaf(alpha, ow__bf16_f(o[i]), p[i]);
        return;
    }
    float *v = a->s[S_EXP_AVG_SQ];
    const float b2 = ow__f(c->beta2), omb2 = ow__f(1 - c->beta2), eps_f = ow__f(c->eps_d);
    const float bc2 = ow__f(1 - pow(c->beta2, c->step));
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
        float oi = ow__bf16_f(o[i]);
        float vi = v[i] = fmaf(omb2 * oi, oi, v[i] * b2); /* mul_(b2).addcmul_ */
        float denom = rms ? sqrtf(vi) + eps_f : sqrtf(vi / bc2) + eps_f;
        u[i] = oi / denom;
        ss += (double)u[i] * u[i];
    }
    float nrm =
        rms ? (float)sqrt(ss) + eps_f : 1.0f; /* update_adaptive.norm().add_(eps) */
    for (size_t i = 0; i < n; i++)
        p[i] = fmaf(alpha, rms ? u[i] / nrm : u[i], p[i]);
}

static const ow_optimizer_ops muon_ops = {
    .abi_version = OW_ABI_VERSION,
    .slots = muon_slots,
    .params = muon_params,
    .ctx_size = sizeof(muon_ctx),
    .check = check,
    .prepare = prepare,
    .slot_shape = slot_shape,
    .passes = muon_passes,
    .tensor_step = muon_step,
    .per_tensor = per_tensor,
    .scratch_bytes = scratch_bytes,
};

OW__OPTIMIZER_ENTRY(ow__optimizer_timm_muon, "muon", "timm", muon_keys, muon_ops,
                    "timm Muon: Newton-Schulz (bf16) on weights, AdamW on the rest");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_nmuon, "nmuon", "timm", nmuon_keys, muon_ops,
                    "timm Muon, Nesterov momentum, NAdamW fallback");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_adamuon, "adamuon", "timm", adamuon_keys, muon_ops,
                    "timm Muon algo=adamuon: second moment of the orthogonalized update");
OW__OPTIMIZER_ENTRY(ow__optimizer_timm_nadamuon, "nadamuon", "timm", nadamuon_keys,
                    muon_ops, "timm Muon algo=adamuon, Nesterov, NAdamW fallback");
