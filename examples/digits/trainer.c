/* trainer.c -- the digits example: a 64 -> H -> LayerNorm -> ReLU/GELU -> 10 perceptron
 * trained on the UCI handwritten digits with plain loops. optwrap builds its optimizer,
 * schedule, accumulation, clipping and checkpoints from one YAML config.
 *
 * Glossary: B = rows in a batch, D = 64 pixels, H = hidden width, C = 10 classes. */
#define _POSIX_C_SOURCE 200809L /* mkdir, clock_gettime under -std=c11 */
#include "trainer.h"

#include <optwrap.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

enum { D = 64, C = 10 };

/* ---- errors: stored in optwrap's ow_error, so that every failure prints alike ------ */

static int vfail(ow_error *err, int code, const char *file, int line, int column,
                 const char *fmt, va_list ap)
{
    if (err->code) /* the first error wins, as in optwrap */
        return err->code;
    err->code = code;
    err->line = line;
    err->column = column;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    return code;
}

static int fail(ow_error *err, int code, const char *file, int line, int column,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, code, file, line, column, fmt, ap);
    va_end(ap);
    return err->code;
}

/* An error at a config node, pointing at its file:line:column. */
static int fail_at(ow_error *err, const ow_cfg *node, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, code, ow_cfg_get_file(node), ow_cfg_get_line(node),
          ow_cfg_get_column(node), fmt, ap);
    va_end(ap);
    return err->code;
}

/* "dir/name", refusing a path that does not fit rather than truncating it. */
static int join(char *buf, size_t n, const char *dir, const char *name, ow_error *err)
{
    if ((size_t)snprintf(buf, n, "%s/%s", dir, name) >= n)
        return fail(err, OW_ERR_IO, dir, 0, 0, "path too long");
    return OW_OK;
}

/* ---- random numbers: one seed gives the same run on every machine ------------------ */

/* splitmix64 spreads a small seed over 64 bits; xorshift64* needs a non-zero state.
 * https://prng.di.unimi.it/splitmix64.c */
static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15u;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

/* The generator of stream `stream` (0: initialisation, e + 1: the shuffle of epoch e):
 * an epoch's order depends on seed and epoch only, so a resumed run sees the same. */
static uint64_t rng_new(uint64_t seed, uint64_t stream)
{
    uint64_t s = splitmix64(splitmix64(seed) ^ stream);
    return s ? s : 1;
}

static uint32_t rng_u32(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 0x2545F4914F6CDD1Du) >> 32);
}

/* uniform in [-bound, bound) */
static float rng_uniform(uint64_t *s, float bound)
{
    return ((float)(rng_u32(s) >> 8) / 16777216.0f * 2.0f - 1.0f) * bound;
}

/* ---- data: 1797 rows of 64 pixel values 0..16, then the label ---------------------- */

typedef struct dataset {
    int n;
    float *x;         /* [n, D] pixels / 16, in 0..1 */
    unsigned char *y; /* [n] labels 0..9 */
} dataset;

static void dataset_free(dataset *ds)
{
    free(ds->x);
    free(ds->y);
}

/* Parses one CSV row into row n of ds. */
static int parse_row(const char *line, const char *path, int lineno, dataset *ds,
                     ow_error *err)
{
    const char *p = line;
    for (int i = 0; i <= D; i++) {
        char *end;
        long v = strtol(p, &end, 10);
        bool last = i == D;
        bool sep = last ? (*end == '\0' || *end == '\n' || *end == '\r') : *end == ',';
        if (end == p || !sep || v < 0 || v > (last ? C - 1 : 16))
            return fail(err, OW_ERR_SYNTAX, path, lineno, (int)(p - line) + 1,
                        "expected %s, got '%.*s'",
                        last ? "the label 0..9 at the end of the row"
                             : "a pixel value 0..16 followed by ','",
                        (int)strcspn(p, "\r\n"), p);
        if (last)
            ds->y[ds->n] = (unsigned char)v;
        else
            ds->x[(size_t)ds->n * D + i] = (float)v / 16.0f;
        p = end + 1;
    }
    ds->n++;
    return OW_OK;
}

/* Reads the whole file (gzip, or plain CSV: zlib reads both). */
static int load_digits(const char *path, dataset *ds, ow_error *err)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return fail(err, OW_ERR_IO, path, 0, 0,
                    "cannot open the digits data: %s (give it with --data, or set "
                    "OW_DIGITS_DATA)",
                    strerror(errno ? errno : ENOENT));
    char line[1024];
    int cap = 0, lineno = 0, rc = OW_OK;
    while (!rc && gzgets(f, line, sizeof line)) {
        lineno++;
        if (line[strspn(line, " \r\n")] == '\0')
            continue; /* blank lines, such as a trailing one */
        if (ds->n == cap) {
            cap = cap ? 2 * cap : 2048;
            float *x = realloc(ds->x, (size_t)cap * D * sizeof *x);
            if (x)
                ds->x = x;
            unsigned char *y = realloc(ds->y, (size_t)cap);
            if (y)
                ds->y = y;
            if (!x || !y) {
                rc = fail(err, OW_ERR_NOMEM, path, 0, 0, "out of memory");
                break;
            }
        }
        rc = parse_row(line, path, lineno, ds, err);
    }
    int zerr = Z_OK;
    const char *zmsg = gzerror(f, &zerr);
    if (!rc && zerr != Z_OK && zerr != Z_STREAM_END)
        rc = fail(err, OW_ERR_IO, path, 0, 0, "read error: %s", zmsg);
    gzclose(f);
    if (!rc && ds->n == 0)
        rc = fail(err, OW_ERR_VALUE, path, 0, 0, "no rows");
    return rc;
}

/* ---- the model: parameters, gradients and activations, forward and backward -------- */

typedef struct mlp_tensors {
    float *w1;    /* [H, D] fc1.weight */
    float *b1;    /* [H] fc1.bias */
    float *gamma; /* [H] norm.weight */
    float *beta;  /* [H] norm.bias */
    float *w2;    /* [C, H] fc2.weight */
    float *b2;    /* [C] fc2.bias */
} mlp_tensors;

typedef struct mlp {
    int H, B; /* hidden width, largest batch */
    bool gelu;
    size_t num_params;
    float *params_memory, *grads_memory; /* [num_params] each, laid out alike */
    mlp_tensors p, g;                    /* views into them */
    /* what forward keeps for backward */
    float *acts_memory;
    float *xhat;  /* [B, H] fc1 output normalised: (h - mean) * rstd */
    float *rstd;  /* [B] 1 / sqrt(var + eps) of each row's fc1 output */
    float *a;     /* [B, H] LayerNorm output, before the activation */
    float *r;     /* [B, H] activation output */
    float *probs; /* [B, C] softmax of the logits */
    float *dx;    /* [H] backward scratch of one row */
} mlp;

static void point_tensors(float *mem, int H, mlp_tensors *t)
{
    t->w1 = mem;
    t->b1 = t->w1 + (size_t)H * D;
    t->gamma = t->b1 + H;
    t->beta = t->gamma + H;
    t->w2 = t->beta + H;
    t->b2 = t->w2 + (size_t)C * H;
}

static void mlp_free(mlp *m)
{
    free(m->params_memory);
    free(m->grads_memory);
    free(m->acts_memory);
}

/* torch's initialisation: nn.Linear draws weight and bias from U(-1/sqrt(in),
 * 1/sqrt(in)); nn.LayerNorm starts as the identity. */
static int mlp_new(mlp *m, int H, int B, bool gelu, uint64_t seed, ow_error *err)
{
    m->H = H;
    m->B = B;
    m->gelu = gelu;
    m->num_params = (size_t)H * D + 3 * (size_t)H + (size_t)C * H + C;
    m->params_memory = malloc(m->num_params * sizeof(float));
    m->grads_memory = calloc(m->num_params, sizeof(float));
    size_t num_acts = 3 * (size_t)B * H + B + (size_t)B * C + H;
    m->acts_memory = malloc(num_acts * sizeof(float));
    if (!m->params_memory || !m->grads_memory || !m->acts_memory)
        return fail(err, OW_ERR_NOMEM, NULL, 0, 0, "out of memory for the model");
    point_tensors(m->params_memory, H, &m->p);
    point_tensors(m->grads_memory, H, &m->g);
    m->xhat = m->acts_memory;
    m->rstd = m->xhat + (size_t)B * H;
    m->a = m->rstd + B;
    m->r = m->a + (size_t)B * H;
    m->probs = m->r + (size_t)B * H;
    m->dx = m->probs + (size_t)B * C;

    uint64_t rng = rng_new(seed, 0);
    float bound1 = 1.0f / sqrtf((float)D), bound2 = 1.0f / sqrtf((float)H);
    for (size_t i = 0; i < (size_t)H * D; i++)
        m->p.w1[i] = rng_uniform(&rng, bound1);
    for (int j = 0; j < H; j++) {
        m->p.b1[j] = rng_uniform(&rng, bound1);
        m->p.gamma[j] = 1.0f;
        m->p.beta[j] = 0.0f;
    }
    for (size_t i = 0; i < (size_t)C * H; i++)
        m->p.w2[i] = rng_uniform(&rng, bound2);
    for (int k = 0; k < C; k++)
        m->p.b2[k] = rng_uniform(&rng, bound2);
    return OW_OK;
}

/* GELU, tanh approximation (GPT-2's): https://arxiv.org/abs/1606.08415 */
#define GELU_SCALE 0.7978845608f /* sqrt(2 / pi) */

static float activation(const mlp *m, float x)
{
    if (!m->gelu)
        return x > 0.0f ? x : 0.0f;
    float u = GELU_SCALE * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}

static float activation_grad(const mlp *m, float x)
{
    if (!m->gelu)
        return x > 0.0f ? 1.0f : 0.0f;
    float t = tanhf(GELU_SCALE * (x + 0.044715f * x * x * x));
    float sech2 = 1.0f - t * t;
    return 0.5f * (1.0f + t) +
           0.5f * x * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
}

/* Forward over n <= B rows; keeps the activations for backward. Returns the summed
 * cross-entropy; *correct (may be NULL) gets the rows whose argmax is the label. */
static double mlp_forward(mlp *m, const dataset *ds, const int *rows, int n, int *correct)
{
    const int H = m->H;
    double loss = 0.0;
    int right = 0;
    for (int b = 0; b < n; b++) {
        const float *x = ds->x + (size_t)rows[b] * D;
        float *xhat = m->xhat + (size_t)b * H, *a = m->a + (size_t)b * H;
        float *r = m->r + (size_t)b * H, *probs = m->probs + (size_t)b * C;
        /* fc1, into xhat before normalising it in place */
        float mean = 0.0f;
        for (int j = 0; j < H; j++) {
            const float *w = m->p.w1 + (size_t)j * D;
            float s = m->p.b1[j];
            for (int i = 0; i < D; i++)
                s += w[i] * x[i];
            xhat[j] = s;
            mean += s;
        }
        /* LayerNorm over the hidden features (biased variance, eps 1e-5 as torch) */
        mean /= (float)H;
        float var = 0.0f;
        for (int j = 0; j < H; j++)
            var += (xhat[j] - mean) * (xhat[j] - mean);
        float rstd = 1.0f / sqrtf(var / (float)H + 1e-5f);
        m->rstd[b] = rstd;
        for (int j = 0; j < H; j++) {
            xhat[j] = (xhat[j] - mean) * rstd;
            a[j] = xhat[j] * m->p.gamma[j] + m->p.beta[j];
            r[j] = activation(m, a[j]);
        }
        /* fc2, then softmax with the max subtracted so exp cannot overflow */
        int argmax = 0;
        for (int k = 0; k < C; k++) {
            const float *w = m->p.w2 + (size_t)k * H;
            float s = m->p.b2[k];
            for (int j = 0; j < H; j++)
                s += w[j] * r[j];
            probs[k] = s;
            argmax = s > probs[argmax] ? k : argmax;
        }
        const float maxv = probs[argmax];
        float sum = 0.0f;
        for (int k = 0; k < C; k++) {
            probs[k] = expf(probs[k] - maxv);
            sum += probs[k];
        }
        for (int k = 0; k < C; k++)
            probs[k] /= sum;
        loss -= log(probs[ds->y[rows[b]]]);
        right += argmax == ds->y[rows[b]];
    }
    if (correct)
        *correct = right;
    return loss;
}

/* Backward of upstream * (mean cross-entropy of the rows of the last forward), ADDED to
 * the gradients: the optim wrapper accumulates micro-batches and zeroes after a step. */
static void mlp_backward(mlp *m, const dataset *ds, const int *rows, int n,
                         float upstream)
{
    const int H = m->H;
    const float scale = upstream / (float)n;
    float *dx = m->dx;
    for (int b = 0; b < n; b++) {
        const float *x = ds->x + (size_t)rows[b] * D;
        const float *xhat = m->xhat + (size_t)b * H, *a = m->a + (size_t)b * H;
        const float *r = m->r + (size_t)b * H, *probs = m->probs + (size_t)b * C;
        /* softmax + cross-entropy: dlogits = probs - onehot(label) */
        float dlogits[C];
        for (int k = 0; k < C; k++)
            dlogits[k] = (probs[k] - (k == ds->y[rows[b]] ? 1.0f : 0.0f)) * scale;
        /* fc2 */
        for (int k = 0; k < C; k++) {
            float *gw = m->g.w2 + (size_t)k * H;
            m->g.b2[k] += dlogits[k];
            for (int j = 0; j < H; j++)
                gw[j] += dlogits[k] * r[j];
        }
        /* back through fc2's input and the activation, into dx = dL/da */
        for (int j = 0; j < H; j++) {
            float s = 0.0f;
            for (int k = 0; k < C; k++)
                s += dlogits[k] * m->p.w2[(size_t)k * H + j];
            dx[j] = s * activation_grad(m, a[j]);
        }
        /* LayerNorm: dxhat = da * gamma, then dh = rstd * (dxhat - mean(dxhat)
         * - xhat * mean(dxhat * xhat)) */
        float mean_dxhat = 0.0f, mean_dxhat_xhat = 0.0f;
        for (int j = 0; j < H; j++) {
            m->g.gamma[j] += dx[j] * xhat[j];
            m->g.beta[j] += dx[j];
            dx[j] *= m->p.gamma[j];
            mean_dxhat += dx[j];
            mean_dxhat_xhat += dx[j] * xhat[j];
        }
        mean_dxhat /= (float)H;
        mean_dxhat_xhat /= (float)H;
        /* fc1 (the input needs no gradient) */
        for (int j = 0; j < H; j++) {
            float dh = (dx[j] - mean_dxhat - xhat[j] * mean_dxhat_xhat) * m->rstd[b];
            float *gw = m->g.w1 + (size_t)j * D;
            m->g.b1[j] += dh;
            for (int i = 0; i < D; i++)
                gw[i] += dh * x[i];
        }
    }
}

/* Test accuracy (percent) and mean loss, in batches of at most B rows. */
static double evaluate(mlp *m, const dataset *ds, const int *rows, int n, double *loss)
{
    int correct = 0;
    double sum = 0.0;
    for (int i = 0; i < n; i += m->B) {
        int c, nb = n - i < m->B ? n - i : m->B;
        sum += mlp_forward(m, ds, rows + i, nb, &c);
        correct += c;
    }
    *loss = sum / n;
    return 100.0 * correct / n;
}

/* The train/test split: every test_every-th row is a test row (1797 rows, test_every
 * 5: 1438 training rows, 359 test rows). */
typedef struct split {
    int test_every;
    int n_train, n_test;
    int *train; /* [n_train] this epoch's order of the training rows */
    int *test;  /* [n_test] */
} split;

static bool is_test_row(const split *sp, int row)
{
    return row % sp->test_every == sp->test_every - 1;
}

/* The training rows in the order of epoch `epoch`: a shuffle drawn from the seed and
 * the epoch alone, so that a resumed run sees the batches of an uninterrupted one. */
static void shuffle_epoch(split *sp, int n_rows, uint64_t seed, int64_t epoch)
{
    for (int row = 0, i = 0; row < n_rows; row++)
        if (!is_test_row(sp, row))
            sp->train[i++] = row;
    uint64_t rng = rng_new(seed, (uint64_t)epoch + 1);
    for (int i = sp->n_train - 1; i > 0; i--) {
        int j = (int)(rng_u32(&rng) % (uint32_t)(i + 1)), tmp = sp->train[i];
        sp->train[i] = sp->train[j];
        sp->train[j] = tmp;
    }
}

static int split_rows(const dataset *ds, int test_every, const ow_cfg *cfg, split *sp,
                      ow_error *err)
{
    sp->test_every = test_every;
    sp->train = malloc((size_t)ds->n * sizeof *sp->train);
    sp->test = malloc((size_t)ds->n * sizeof *sp->test);
    if (!sp->train || !sp->test)
        return fail(err, OW_ERR_NOMEM, NULL, 0, 0, "out of memory");
    for (int row = 0; row < ds->n; row++)
        if (is_test_row(sp, row))
            sp->test[sp->n_test++] = row;
    sp->n_train = ds->n - sp->n_test;
    if (!sp->n_train || !sp->n_test)
        return fail_at(err, ow_cfg_find(cfg, "data.test_every"), OW_ERR_RANGE,
                       "data.test_every: %d leaves no %s rows out of %d", test_every,
                       sp->n_test ? "training" : "test", ds->n);
    return OW_OK;
}

/* ---- the config sections the trainer reads itself ---------------------------------- */

typedef struct settings {
    int64_t batch_size, test_every, seed; /* data: */
    int64_t hidden;                       /* model: */
    bool gelu;                            /* model.activation: relu | gelu */
    int64_t max_epochs;                   /* train_cfg: */
} settings;

/* A section is a map of known keys only: a misspelling is an error, not a default. */
static int check_section(const ow_cfg *cfg, const char *section, const char *const *keys,
                         ow_error *err)
{
    const ow_cfg *map = ow_cfg_find(cfg, section);
    if (!map)
        return OW_OK;
    if (ow_cfg_get_type(map) != OW_CFG_MAP)
        return fail_at(err, map, OW_ERR_TYPE, "%s: expected map, got %s", section,
                       ow_cfg_type_name(ow_cfg_get_type(map)));
    for (size_t i = 0; i < ow_cfg_get_size(map); i++) {
        const char *key = ow_cfg_get_key(map, i);
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], key))
            k++;
        if (keys[k])
            continue;
        char known[256] = "";
        for (size_t len = 0, j = 0; keys[j] && len < sizeof known; j++)
            len += (size_t)snprintf(known + len, sizeof known - len, "%s%s",
                                    j ? ", " : "", keys[j]);
        return fail_at(err, ow_cfg_get_item(map, i), OW_ERR_UNKNOWN_KEY,
                       "%s: unknown key '%s' (the trainer reads %s)", section, key,
                       known);
    }
    return OW_OK;
}

/* An integer at path, def when absent (def < 0: required), within [min, max]. */
static int read_int(const ow_cfg *cfg, const char *path, int64_t def, int64_t min,
                    int64_t max, int64_t *out, ow_error *err)
{
    const ow_cfg *node = ow_cfg_find(cfg, path);
    *out = def;
    if (!node && def < 0)
        return fail(err, OW_ERR_MISSING_KEY, ow_cfg_get_file(cfg), 0, 0,
                    "%s is missing: the trainer runs an epoch-based loop", path);
    if (!node)
        return OW_OK;
    if (ow_cfg_get_type(node) != OW_CFG_INT)
        return fail_at(err, node, OW_ERR_TYPE, "%s: expected int, got %s", path,
                       ow_cfg_type_name(ow_cfg_get_type(node)));
    int rc = ow_cfg_get_int(node, out, err);
    if (!rc && (*out < min || *out > max))
        rc = fail_at(err, node, OW_ERR_RANGE,
                     "%s: must be between %lld and %lld, got %lld", path, (long long)min,
                     (long long)max, (long long)*out);
    return rc;
}

static int read_settings(const ow_cfg *cfg, settings *s, ow_error *err)
{
    static const char *const data_keys[] = {"batch_size", "test_every", "seed", NULL};
    static const char *const model_keys[] = {"hidden", "activation", NULL};
    int rc = check_section(cfg, "data", data_keys, err);
    if (!rc)
        rc = check_section(cfg, "model", model_keys, err);
    if (!rc)
        rc = read_int(cfg, "data.batch_size", 32, 1, 1 << 16, &s->batch_size, err);
    if (!rc)
        rc = read_int(cfg, "data.test_every", 5, 2, 1 << 16, &s->test_every, err);
    if (!rc)
        rc = read_int(cfg, "data.seed", 0, 0, INT64_MAX, &s->seed, err);
    if (!rc)
        rc = read_int(cfg, "model.hidden", 128, 1, 1 << 16, &s->hidden, err);
    if (!rc)
        rc = read_int(cfg, "train_cfg.max_epochs", -1, 1, 1 << 20, &s->max_epochs, err);
    const ow_cfg *act = ow_cfg_find(cfg, "model.activation");
    const char *name = "relu";
    if (!rc && act && !(rc = ow_cfg_get_string(act, &name, err)) &&
        strcmp(name, "relu") && strcmp(name, "gelu"))
        rc = fail_at(err, act, OW_ERR_VALUE,
                     "model.activation: expected relu or gelu, got '%s'", name);
    s->gelu = !strcmp(name, "gelu");
    return rc;
}

/* ---- checkpoints, named as mmengine names them ------------------------------------- */

static int make_dirs(const char *dir, ow_error *err)
{
    char buf[4096];
    if (!dir[0])
        return fail(err, OW_ERR_IO, NULL, 0, 0, "the work dir is an empty path");
    if ((size_t)snprintf(buf, sizeof buf, "%s", dir) >= sizeof buf)
        return fail(err, OW_ERR_IO, dir, 0, 0, "path too long");
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST)
            return fail(err, OW_ERR_IO, buf, 0, 0, "cannot create the work dir: %s",
                        strerror(errno));
        *p = c;
        if (!c)
            return OW_OK;
    }
}

/* <work_dir>/last_checkpoint names the newest checkpoint; written aside and renamed,
 * so that an interrupted run leaves the old name or the new one. */
static int write_last_checkpoint(const char *work_dir, const char *name, ow_error *err)
{
    char path[4096], tmp[4096];
    if (join(path, sizeof path, work_dir, "last_checkpoint", err) ||
        join(tmp, sizeof tmp, work_dir, "last_checkpoint.tmp", err))
        return err->code;
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", name) < 0 || fclose(f) || rename(tmp, path)) {
        int e = errno;
        if (f)
            remove(tmp);
        return fail(err, OW_ERR_IO, path, 0, 0, "cannot write: %s", strerror(e));
    }
    return OW_OK;
}

/* The checkpoint named in <work_dir>/last_checkpoint (relative to the work dir, or
 * absolute as mmengine writes it) into path; *found false when there is none. */
static int find_last_checkpoint(const char *work_dir, char *path, size_t n, bool *found,
                                ow_error *err)
{
    char list[4096], name[4096] = "";
    *found = false;
    if (join(list, sizeof list, work_dir, "last_checkpoint", err))
        return err->code;
    FILE *f = fopen(list, "r");
    if (!f && errno == ENOENT)
        return OW_OK;
    if (!f)
        return fail(err, OW_ERR_IO, list, 0, 0, "cannot read: %s", strerror(errno));
    bool ok = fgets(name, sizeof name, f) != NULL;
    fclose(f);
    name[strcspn(name, "\r\n")] = '\0';
    if (!ok || !name[0])
        return fail(err, OW_ERR_IO, list, 0, 0, "empty: it should name a checkpoint");
    *found = true;
    if (name[0] == '/')
        return (size_t)snprintf(path, n, "%s", name) < n
                   ? OW_OK
                   : fail(err, OW_ERR_IO, list, 1, 1, "path too long");
    return join(path, n, work_dir, name, err);
}

/* ---- where the trainer meets optwrap: the model tree, checkpoints, the loop -------- */

/* The model tree as torch would name it: paramwise_cfg's bias_decay_mult and
 * norm_decay_mult find the biases by name and the LayerNorm by its kind. */
static int register_model(const mlp *m, ow_model **out, ow_error *err)
{
    char tree[1024]; /* the module tree, as optwrap-model/1 YAML */
    snprintf(tree, sizeof tree,
             "format: optwrap-model/1\n"
             "name: digits_mlp\n"
             "modules:\n"
             "- {name: '', type: DigitsMLP}\n"
             "- {name: fc1, type: Linear, kind: linear,\n"
             "   params: [{name: weight, shape: [%d, %d]}, {name: bias, shape: [%d]}]}\n"
             "- {name: norm, type: LayerNorm, kind: norm,\n"
             "   params: [{name: weight, shape: [%d]}, {name: bias, shape: [%d]}]}\n"
             "- {name: fc2, type: Linear, kind: linear,\n"
             "   params: [{name: weight, shape: [%d, %d]}, {name: bias, shape: [%d]}]}\n",
             m->H, D, m->H, m->H, m->H, C, m->H, C);
    /* the tensors lie in walk order in one allocation, their gradients in another */
    if (ow_model_load_string(tree, "digits_mlp", out, err) ||
        ow_model_set_buffers(*out, m->params_memory, m->grads_memory, m->num_params, err))
        return err->code;
    return OW_OK;
}

/* epoch_<n>.safetensors with the parameters in it, then last_checkpoint naming it. */
static int save_checkpoint(const ow_optim_wrapper *w, const char *work_dir, int64_t epoch,
                           bool writer, ow_error *err)
{
    char name[64], path[4096];
    snprintf(name, sizeof name, "epoch_%lld.safetensors", (long long)epoch);
    if (join(path, sizeof path, work_dir, name, err) ||
        ow_optim_wrapper_save(w, path, OW_CKPT_PARAMS, err)) /* every rank calls it */
        return err->code;
    return writer ? write_last_checkpoint(work_dir, name, err) : OW_OK;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int digits_train(const digits_options *o, double *test_acc)
{
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = NULL;
    ow_model *model = NULL;
    ow_optim_wrapper *w = NULL;
    dataset ds = {0};
    mlp m = {0};
    settings s;
    split sp = {0};
    const char *data = o->data ? o->data : digits_default_data();

    int rc = ow_cfg_load(o->config, &cfg, &err);
    for (int i = 0; !rc && i < o->n_cfg_options; i++)
        rc = ow_cfg_set(cfg, o->cfg_options[i], &err);
    if (rc || (rc = read_settings(cfg, &s, &err)) ||
        (rc = load_digits(data, &ds, &err)) ||
        (rc = split_rows(&ds, (int)s.test_every, cfg, &sp, &err)))
        goto done;
    const int B = (int)(s.batch_size < sp.n_train ? s.batch_size : sp.n_train);
    const int64_t epoch_length = (sp.n_train + B - 1) / B; /* the last may be short */
    if ((rc = mlp_new(&m, (int)s.hidden, B, s.gelu, (uint64_t)s.seed, &err)) ||
        (rc = register_model(&m, &model, &err)))
        goto done;

    /* optimizer, param groups and schedule, for a run of max_epochs x epoch_length */
    ow_sched_loop loop = {.epoch_length = epoch_length, .max_epochs = s.max_epochs};
    const digits_parallel *par = o->parallel;
    const bool writer = !par || par->rank == 0; /* prints and writes */
    if ((rc = ow_optim_wrapper_new(cfg, model, &loop, &w, &err)) ||
        (par && (rc = par->attach(par->user, w, &err))) ||
        (rc = make_dirs(o->work_dir, &err)))
        goto done;
    char ckpt[4096] = "";
    bool found = false;
    if (o->resume &&
        (rc = find_last_checkpoint(o->work_dir, ckpt, sizeof ckpt, &found, &err)))
        goto done;
    if (found && (rc = ow_optim_wrapper_load(w, ckpt, OW_CKPT_PARAMS, &err)))
        goto done;
    const ow_optimizer *opt = ow_optim_wrapper_get_optimizer(w); /* what the load noted */
    for (size_t i = 0; found && i < ow_optimizer_get_num_notes(opt); i++)
        fprintf(stderr, "%s: note: %s\n", o->prog, ow_optimizer_get_note(opt, i));
    /* checkpoints are taken at epoch ends: the iteration must be that epoch's end */
    int64_t epoch = ow_optim_wrapper_get_epoch(w);
    if (ow_optim_wrapper_get_iteration(w) != epoch * epoch_length) {
        rc = fail(&err, OW_ERR_STATE, ckpt, 0, 0,
                  "iteration %lld is not the end of an epoch of %lld iterations (was "
                  "data.batch_size changed?)",
                  (long long)ow_optim_wrapper_get_iteration(w), (long long)epoch_length);
        goto done;
    }
    if (o->resume && !o->quiet && writer)
        printf(found ? "resumed from %s at epoch %lld\n"
                     : "nothing to resume in %s: training from scratch\n",
               found ? ckpt : o->work_dir, (long long)epoch);

    for (; epoch < s.max_epochs && !(o->stop_after > 0 && epoch >= o->stop_after);
         epoch++) {
        shuffle_epoch(&sp, ds.n, (uint64_t)s.seed, epoch);
        double t0 = seconds(), loss = 0.0;
        for (int64_t it = 0; it < epoch_length; it++) {
            const int *rows = sp.train + it * B;
            int n = sp.n_train - it * B < B ? (int)(sp.n_train - it * B) : B;
            if (par) { /* this rank's part of the batch (the ranks' losses averaged) */
                int first = (int)((int64_t)n * par->rank / par->size);
                int next = (int)((int64_t)n * (par->rank + 1) / par->size);
                rows += first;
                n = next - first;
            }
            loss += n ? mlp_forward(&m, &ds, rows, n, NULL) / n : 0.0;
            /* backward(loss x multiplier): the multiplier is 1 / accumulative_counts
             * (x the loss scale under AMP); the wrapper steps at a window's end */
            if (n)
                mlp_backward(&m, &ds, rows, n, ow_optim_wrapper_get_loss_multiplier(w));
            if ((rc = ow_optim_wrapper_update(w, NULL, &err)))
                goto done;
        }
        double lr = ow_optim_wrapper_get_lr(w, 0),
               steps_per_s = epoch_length / (seconds() - t0);
        if ((rc = ow_optim_wrapper_end_epoch(w, NULL, &err)) ||
            (rc = save_checkpoint(w, o->work_dir, epoch + 1, writer, &err)))
            goto done;
        double test_loss, acc = evaluate(&m, &ds, sp.test, sp.n_test, &test_loss);
        if (!o->quiet && writer)
            printf("epoch %lld/%lld  loss %.3f  test acc %.1f%%  lr %.3g  steps/s %.0f\n",
                   (long long)epoch + 1, (long long)s.max_epochs, loss / epoch_length,
                   acc, lr, steps_per_s);
        fflush(stdout);
    }
    double test_loss, acc = evaluate(&m, &ds, sp.test, sp.n_test, &test_loss);
    if (writer)
        printf("final test acc %.1f%%  test loss %.6f\n", acc, test_loss);
    if (test_acc)
        *test_acc = acc;

done:
    if (rc) {
        char msg[OW_ERROR_FILE_LEN + OW_ERROR_TEXT_LEN + 32];
        ow_error_format(&err, msg, sizeof msg);
        fprintf(stderr, "%s: %s\n", o->prog ? o->prog : "digits", msg);
    }
    ow_optim_wrapper_free(w);
    ow_model_free(model);
    ow_cfg_free(cfg);
    mlp_free(&m);
    dataset_free(&ds);
    free(sp.train);
    free(sp.test);
    return rc ? 1 : 0;
}

/* ---- defaults ---------------------------------------------------------------------- */

const char *digits_default_data(void)
{
    const char *env = getenv("OW_DIGITS_DATA");
    if (env && env[0])
        return env;
#ifdef DIGITS_DATA_INSTALLED
    struct stat st;
    if (!stat(DIGITS_DATA_INSTALLED, &st))
        return DIGITS_DATA_INSTALLED;
#endif
#ifdef DIGITS_DATA_SRCDIR
    return DIGITS_DATA_SRCDIR;
#else
    return "digits.csv.gz";
#endif
}

void digits_default_work_dir(const char *config, char *buf, size_t n)
{
    const char *base = strrchr(config, '/');
    base = base ? base + 1 : config;
    size_t len = strlen(base);
    if (len > 5 && !strcmp(base + len - 5, ".yaml"))
        len -= 5;
    else if (len > 4 && !strcmp(base + len - 4, ".yml"))
        len -= 4;
    snprintf(buf, n, "work_dirs/%.*s", (int)len, base);
}
