/* draws.c -- what some optimizers take from outside the parameters and gradients:
 * random draws (Kron's probe vectors and update-probability draws, Adahessian's
 * Rademacher vectors) and Hessian-vector products (Adahessian). Draws come from the
 * host's generator when it set one (optwrap replay feeds the recorded ones), else from
 * a counter-based generator (splitmix64 of the seed and the draw's number): a tensor's
 * draws are taken in param_groups order by one thread, so the stream never depends on
 * the thread count. */
#include "optim_internal.h"

#include <string.h>

void ow_optimizer_set_rng(ow_optimizer *opt, ow_rng_fn fn, void *user)
{
    if (opt) {
        opt->rng = fn;
        opt->rng_user = user;
    }
}

void ow_optimizer_set_seed(ow_optimizer *opt, uint64_t seed)
{
    if (opt) {
        opt->seed = seed;
        opt->draws = 0;
    }
}

void ow_optimizer_set_hvp(ow_optimizer *opt, ow_hvp_fn fn, void *user)
{
    if (opt) {
        opt->hvp = fn;
        opt->hvp_user = user;
    }
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* A uniform double in [0, 1) with 53 random bits. */
static double next_uniform(ow_optimizer *opt)
{
    uint64_t x = splitmix64(opt->seed ^ splitmix64(opt->draws++));
    return (double)(x >> 11) * 0x1.0p-53;
}

static void builtin_draws(ow_optimizer *opt, ow_rng_kind kind, double *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double u = next_uniform(opt);
        switch (kind) {
        case OW_RNG_NORMAL: { /* Box-Muller, one value per pair of uniforms */
            double v = next_uniform(opt);
            out[i] = sqrt(-2.0 * log1p(-u)) * cos(2 * 3.14159265358979323846 * v);
            break;
        }
        case OW_RNG_RADEMACHER: out[i] = u < 0.5 ? -1.0 : 1.0; break;
        default: out[i] = u; break;
        }
    }
}

static void draw(ow_optimizer *opt, ow_rng_kind kind, size_t param, double *out, size_t n)
{
    if (opt->rng)
        opt->rng(opt->rng_user, kind, param, out, n);
    else
        builtin_draws(opt, kind, out, n);
}

void ow__tensor_rand(const ow_tensor_args *a, ow_rng_kind kind, float *out, size_t n)
{
    /* one host call per request: a host such as optwrap replay hands out the recorded
     * draws one torch.randn call (a whole tensor) at a time */
    double stack[256], *buf = n <= 256 ? stack : ow__malloc(n * sizeof *buf);
    size_t chunk = buf ? n : 256; /* no memory: in pieces (a replay then refuses) */
    if (!buf)
        buf = stack;
    for (size_t done = 0; done < n;) {
        size_t m = n - done < chunk ? n - done : chunk;
        draw(a->engine, kind, a->param, buf, m);
        for (size_t i = 0; i < m; i++)
            out[done + i] = (float)buf[i];
        done += m;
    }
    if (buf != stack)
        ow_free(buf);
}

double ow__tensor_rand_scalar(const ow_tensor_args *a)
{
    double u;
    draw(a->engine, OW_RNG_UNIFORM, (size_t)-1, &u, 1);
    return u;
}

int ow__hvp_prepare(ow_optimizer *opt, size_t from, size_t nactive, ow_error *err)
{
    if (!opt->hvp)
        return ow__error(err, OW_ERR_UNSUPPORTED, NULL, 0, 0,
                         "optimizer '%s' needs Hessian-vector products: the host must "
                         "set them with ow_optimizer_set_hvp",
                         opt->entry->name);
    size_t n = 0, elems = 0;
    for (size_t a = from; a < nactive; a++) {
        ow__tensor *t = &opt->t[opt->active[a]];
        bool wants =
            !opt->ops->wants_hvp || opt->ops->wants_hvp(opt->g[t->group].php, t->scalar);
        t->z = t->hz = NULL;
        t->wants_hvp = wants;
        n += wants;
        elems += wants ? t->numel : 0;
    }
    if (!n)
        return OW_OK;
    /* z and H z for every tensor, then the host's argument arrays */
    size_t nz = (2 * elems + 1) & ~(size_t)1; /* floats, rounded to 8 bytes */
    size_t need = nz * sizeof(float) + n * (sizeof(size_t) + 2 * sizeof(float *));
    if (need > opt->hvp_cap) {
        float *b = ow__malloc(need);
        if (!b)
            return ow__nomem(err);
        ow_free(opt->hvp_buf);
        opt->hvp_buf = b;
        opt->hvp_cap = need;
    }
    float *z = opt->hvp_buf, *hz = z + elems;
    size_t *params = (size_t *)(void *)(z + nz);
    const float **v = (const float **)(void *)(params + n);
    float **out = (float **)(void *)(v + n);
    for (size_t a = from, off = 0, k = 0; a < nactive; a++) {
        ow__tensor *t = &opt->t[opt->active[a]];
        if (!t->wants_hvp)
            continue;
        ow_tensor_args ta = {.param = opt->active[a], .engine = opt};
        ow__tensor_rand(&ta, OW_RNG_RADEMACHER, z + off, t->numel);
        t->z = v[k] = z + off;
        t->hz = out[k] = hz + off;
        params[k++] = opt->active[a];
        off += t->numel;
    }
    int rc = opt->hvp(opt->hvp_user, n, params, v, out);
    if (rc)
        return ow__error(err, rc, NULL, 0, 0,
                         "optimizer '%s': the host's Hessian-vector product failed",
                         opt->entry->name);
    return OW_OK;
}
