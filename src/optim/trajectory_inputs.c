/* trajectory_inputs.c -- what a replayed trajectory feeds an optimizer besides its
 * gradients: the random draws the reference took (extra.randn_draws: torch.randn probe
 * vectors in call order; extra.python_rng_draws: python random.random() values;
 * extra.rademacher_z: Hutchinson's vectors), and Hessian-vector products of the golden
 * loss sum(a*x^2 + b*x^3) (coef_a, coef_b), whose Hessian is diagonal: H v = (2a + 6bx)
 * v. Also what each optimizer is held to: bit for bit, unless the table says otherwise.
 */
#include "optim_internal.h"

#include <string.h>

/* Optimizers whose reference sums norms in an order optwrap does not reproduce (torch's
 * float32 reductions; optwrap sums in double, in a fixed order for any thread count):
 * held to a relative error instead of 0 ulp. Matched on the entry name, lower case. */
static const struct {
    const char *contains;
    double tolerance;
} tolerances[] = {
    {"lamb", 1e-5},       /* trust ratio: |p| and |u| */
    {"lars", 1e-5},       /* trust ratio: |p| and |g| */
    {"larc", 1e-5},       /* the same, clipped */
    {"adafactor", 1e-5},  /* row and column means, the update's RMS */
    {"adamuon", 1e-5},    /* AdaMuon's RMS norm of the update (Muon itself: 0 ulp) */
    {"adamp", 1e-5},      /* AdamP's projection: row norms, cosines, radial sums */
    {"sgdp", 1e-5},       /* the same projection in SGDP */
    {"adahessian", 1e-5}, /* hessian_power != 1: torch's vectorized pow is Sleef's;
                             avg_conv_kernel's means (power 1 alone: 0 ulp) */
    {"kron", 1e-5},       /* einsum, triangular solves and Q's norms in torch's order */
};

static bool contains_lower(const char *s, const char *part)
{
    size_t n = strlen(part);
    for (; *s; s++) {
        size_t i = 0;
        while (i < n && s[i] && (s[i] | 0x20) == part[i])
            i++;
        if (i == n)
            return true;
    }
    return false;
}

double ow__trajectory_tolerance(const ow_entry *e)
{
    if (e->scope && !strcmp(e->scope, "fastai"))
        return 0; /* fastai's Lamb and Larc reproduce torch's reductions: exact */
    for (size_t i = 0; i < OW__ARRAY_LEN(tolerances); i++)
        if (contains_lower(e->name, tolerances[i].contains))
            return tolerances[i].tolerance;
    return 0;
}

/* The next recorded draw of a kind in step k (one cursor per kind and step). */
static const ow_cfg *next_draw(ow__traj_inputs *in, int kind)
{
    static const char *const keys[] = {[OW_RNG_NORMAL] = "randn_draws",
                                       [OW_RNG_UNIFORM] = "python_rng_draws",
                                       [OW_RNG_RADEMACHER] = "rademacher_z"};
    const ow_cfg *list = ow__cfg_map_get(in->extra, keys[kind]);
    const ow_cfg *step = ow_cfg_get_item(list, (size_t)in->step);
    return ow_cfg_get_item(step, in->cursor[kind]++);
}

static void replay_rng(void *user, ow_rng_kind kind, size_t param, double *out, size_t n)
{
    ow__traj_inputs *in = user;
    const ow_cfg *d = next_draw(in, kind);
    (void)param;
    if (kind == OW_RNG_UNIFORM && ow_cfg_get_type(d) == OW_CFG_LIST)
        d = ow_cfg_get_item(d, 1); /* ["random", value] */
    if (ow_cfg_get_type(d) == OW_CFG_MAP)
        d = ow__cfg_map_get(d, "data"); /* {shape, data} */
    if (ow_cfg_get_type(d) != OW_CFG_LIST) {
        if (n == 1 && !ow_cfg_get_double(d, out, NULL))
            return;
        in->failed = true;
        memset(out, 0, n * sizeof *out);
        return;
    }
    if (ow_cfg_get_size(d) != n)
        in->failed = true;
    for (size_t i = 0; i < n; i++)
        if (i >= ow_cfg_get_size(d) ||
            ow_cfg_get_double(ow_cfg_get_item(d, i), &out[i], NULL))
            out[i] = 0;
}

static int replay_hvp(void *user, size_t n, const size_t *params, const float *const *v,
                      float *const *out)
{
    ow__traj_inputs *in = user;
    for (size_t k = 0; k < n; k++) {
        /* the replay's model has one parameter per golden tensor, in file order */
        size_t i = ow__optimizer_tensor_param(in->opt, params[k]), m = in->numel[i];
        const ow_cfg *a = ow_cfg_get_item(in->coef_a, i),
                     *b = ow_cfg_get_item(in->coef_b, i);
        if (ow_cfg_get_size(a) != m || ow_cfg_get_size(b) != m)
            return OW_ERR_VALUE;
        for (size_t j = 0; j < m; j++) {
            double aj, bj;
            if (ow_cfg_get_double(ow_cfg_get_item(a, j), &aj, NULL) ||
                ow_cfg_get_double(ow_cfg_get_item(b, j), &bj, NULL))
                return OW_ERR_VALUE;
            /* torch's double backward of the golden's loss sum(a*x*x + b*x*x*x) in
             * float32 (its grads match that form bit for bit, not x**2): the terms of
             * H 1 arrive in the order a, bx, 2bx, bx, 2bx, a (found against
             * extra.hess, every element of every step); v = +-1 scales them exactly */
            float a1 = (float)aj, bx = (float)bj * in->data[i][j], b2 = bx + bx;
            float h = ((((a1 + bx) + b2) + bx) + b2) + a1;
            out[k][j] = h * v[k][j];
        }
    }
    return OW_OK;
}

void ow__traj_inputs_attach(ow__traj_inputs *in, const ow_cfg *doc, ow_optimizer *opt,
                            float *const *data, const size_t *numel)
{
    memset(in, 0, sizeof *in);
    in->extra = ow__cfg_map_get(doc, "extra");
    in->coef_a = ow__cfg_map_get(doc, "coef_a");
    in->coef_b = ow__cfg_map_get(doc, "coef_b");
    in->data = data;
    in->numel = numel;
    in->opt = opt;
    if (in->extra)
        ow_optimizer_set_rng(opt, replay_rng, in);
    if (in->coef_a && in->coef_b)
        ow_optimizer_set_hvp(opt, replay_hvp, in);
}

void ow__traj_inputs_step(ow__traj_inputs *in, int step)
{
    in->step = step;
    memset(in->cursor, 0, sizeof in->cursor);
}
