/* optim_fixture.c -- see optim_fixture.h. */
#include "optim_fixture.h"
#include "internal.h"

#include <math.h>
#include <string.h>

static float rnd(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 8388608.0f - 1.0f;
}

void fix_grads(fixture *f, unsigned seed)
{
    for (size_t i = 0; i < f->n; i++)
        for (size_t k = 0; k < f->numel[i]; k++)
            f->grad[i][k] = rnd(&seed);
}

/* The fixture tensor at position k of param_groups order (group 0's tensors, then
 * group 1's, ...). */
static size_t tensor_of(const fixture *f, size_t k)
{
    for (size_t g = 0, pos = 0; g < f->ngroups; g++)
        for (size_t i = g; i < f->n; i += f->ngroups)
            if (pos++ == k)
                return i;
    return k;
}

/* A Hessian for optimizers that read Hessian-vector products: diagonal, 1 + p^2 (the
 * host is told param_groups indices: tensor_of maps them back). */
static int fixture_hvp(void *user, size_t n, const size_t *params, const float *const *v,
                       float *const *out)
{
    const fixture *f = user;
    for (size_t k = 0; k < n; k++) {
        size_t t = tensor_of(f, params[k]);
        for (size_t j = 0; j < f->numel[t]; j++) {
            float p = f->data[t][j];
            out[k][j] = (1.0f + p * p) * v[k][j];
        }
    }
    return 0;
}

/* Values for keys an entry needs that the suites' generic options (lr, weight_decay)
 * lack: fastai's Optimizer has no default list of callbacks, and lamb_step's eps has no
 * default (this list uses every kind of state and the scratch). */
static const struct {
    const char *entry, *key, *value;
} needed[] = {
    {"fastai.Optimizer", "cbs",
     "[l2_reg, average_grad, average_sqr_grad, step_stat, lamb_step]"},
    {"fastai.Optimizer", "eps", "1e-6"},
};

static void add_needed(const char *entry, ow_cfg *o)
{
    ow_error err;
    ow_error_clear(&err);
    for (size_t i = 0; i < sizeof needed / sizeof *needed; i++) {
        ow_cfg *v = NULL;
        if (strcmp(entry, needed[i].entry) || ow__cfg_map_get(o, needed[i].key))
            continue;
        ow_check_ok(
            ow__cfg_parse(needed[i].value, strlen(needed[i].value), "<needed>", &v, &err),
            &err);
        ow_check_ok(ow__cfg_map_set(o, needed[i].key, v), &err);
    }
}

void fix_make(fixture *f, const char *entry, size_t n, const int *ndim,
              const int64_t (*shapes)[3], size_t ngroups, const char *const *opts,
              unsigned seed)
{
    memset(f, 0, sizeof *f);
    ow_error err;
    ow_error_clear(&err);
    const ow_entry *e = ow_registry_find(OW_KIND_OPTIMIZER, entry);
    ck_assert_msg(e != NULL, "no optimizer '%s'", entry);
    const ow_module_info root = {.name = "", .type = "Fixture"};
    ow_check_ok(ow_model_new("fixture", &f->model, &err), &err);
    ow_check_ok(ow_model_add_module(f->model, &root, &err), &err);
    f->n = n;
    f->ngroups = ngroups ? ngroups : 1;
    for (size_t i = 0; i < n; i++) {
        size_t m = 1;
        for (int d = 0; d < ndim[i]; d++)
            m *= (size_t)shapes[i][d];
        f->numel[i] = m;
        f->data[i] = ow__malloc(m * sizeof(float));
        f->grad[i] = ow__malloc(m * sizeof(float));
        ck_assert(f->data[i] && f->grad[i]);
        for (size_t k = 0; k < m; k++)
            f->data[i][k] = rnd(&seed);
        char name[24];
        snprintf(name, sizeof name, "t%zu", i);
        ow_param_info pi = {.module = "",
                            .name = name,
                            .ndim = ndim[i],
                            .shape = shapes[i],
                            .requires_grad = true,
                            .data = f->data[i],
                            .grad = f->grad[i]};
        ow_check_ok(ow_model_add_param(f->model, &pi, &err), &err);
    }
    fix_grads(f, seed + 7);
    f->groups = ow__groups_new(f->model);
    ck_assert_ptr_nonnull(f->groups);
    for (size_t g = 0; g < ngroups; g++) {
        size_t index;
        ow_check_ok(ow_groups_add(f->groups, &index, &err), &err);
        for (size_t i = g; i < n; i += ngroups)
            ow_check_ok(ow_groups_add_param(f->groups, index, i, &err), &err);
        ow_cfg *o = NULL;
        ow_check_ok(ow__cfg_parse(opts[g], strlen(opts[g]), "<opts>", &o, &err), &err);
        add_needed(entry, o);
        for (size_t k = 0; k < o->v.c.n; k++)
            ow_check_ok(ow_groups_set_value(f->groups, index, o->v.c.keys[k],
                                            o->v.c.items[k], &err),
                        &err);
        ow_cfg_free(o);
    }
    /* the optimizer-level defaults: group 0's options (timm's defaults['lr']) */
    ow_cfg *defaults = NULL;
    ow_check_ok(ow__cfg_parse(opts[0], strlen(opts[0]), "<opts>", &defaults, &err), &err);
    add_needed(entry, defaults);
    ow__groups_set_optimizer(f->groups, e, defaults);
    ow_check_ok(ow_optimizer_new(f->groups, &f->opt, &err), &err);
    ow_optimizer_set_hvp(f->opt, fixture_hvp, f);
    ow_optimizer_set_seed(f->opt, seed);
}

void fix_copy_data(fixture *b, const fixture *a)
{
    for (size_t i = 0; i < a->n; i++) {
        memcpy(b->data[i], a->data[i], a->numel[i] * sizeof(float));
        memcpy(b->grad[i], a->grad[i], a->numel[i] * sizeof(float));
    }
}

void fix_free(fixture *f)
{
    ow_optimizer_free(f->opt);
    ow_groups_free(f->groups);
    ow_model_free(f->model);
    for (size_t i = 0; i < f->n; i++) {
        ow_free(f->data[i]);
        ow_free(f->grad[i]);
    }
    memset(f, 0, sizeof *f);
}

/* With a tolerance, an element is held to the larger of its own magnitude and its
 * tensor's RMS, as optwrap replay does: an element near zero in a tensor of ordinary
 * values (p - lr*u cancelling) is judged at the tensor's scale. */
void fix_expect_same(const fixture *a, const fixture *b, double tol, const char *what)
{
    for (size_t i = 0; i < a->n; i++) {
        double ss = 0;
        for (size_t k = 0; k < a->numel[i]; k++)
            ss += (double)b->data[i][k] * b->data[i][k];
        double rms = a->numel[i] ? sqrt(ss / (double)a->numel[i]) : 0;
        for (size_t k = 0; k < a->numel[i]; k++) {
            float x = a->data[i][k], y = b->data[i][k];
            double scale = fmax(fabs((double)y), rms);
            bool same = tol == 0 ? x == y || (isnan(x) && isnan(y))
                                 : fabs((double)x - y) <= tol * scale + 1e-12;
            if (!same)
                ck_abort_msg("%s: tensor %zu[%zu]: %.9g against %.9g", what, i, k, x, y);
        }
    }
}
