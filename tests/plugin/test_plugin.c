/* test_plugin.c -- a plugin as a user would write one: ow_plugin_init registers an
 * optimizer schema (PluginSGD, scope owtest), an optimizer with kernels written against
 * optwrap-plugin.h (PluginSignum), and a constructor (PluginConstructor) that puts every
 * parameter in one group. Linked against nothing: the host provides ow_*. */
#include "optwrap-plugin.h"

#include <math.h>
#include <string.h>

/* Weak: the host resolves them when it has them, so a test binary that only checks
 * registration can load this plugin without the groups and model code. */
#pragma weak ow_groups_add
#pragma weak ow_groups_add_param
#pragma weak ow_model_get_num_params
#pragma weak ow_model_get_param

static const ow_key plugin_sgd_keys[] = {
    {.name = "lr",
     .type = OW_T_NUMBER,
     .def = "0.1",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "learning rate"},
    {.name = "momentum", .type = OW_T_NUMBER, .def = "0", .doc = "momentum factor"},
    {0},
};

static const ow_entry plugin_sgd = {
    .abi_version = OW_ABI_VERSION,
    .name = "PluginSGD",
    .kind = OW_KIND_OPTIMIZER,
    .scope = "owtest",
    .summary = "test plugin: an SGD schema",
    .keys = plugin_sgd_keys,
};

/* PluginSignum: m = beta*m + (1-beta)*g; p = p*(1 - lr*wd) - step*sign(m), with step =
 * lr on the element passes and lr/sqrt(rows) for 2-D tensors, which take a per-tensor
 * step (sign(m) built in scratch first): one optimizer mixing both paths. */
static const ow_key signum_keys[] = {
    {.name = "lr",
     .type = OW_T_NUMBER,
     .def = "0.1",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "learning rate"},
    {.name = "beta", .type = OW_T_NUMBER, .def = "0.9", .doc = "momentum"},
    {.name = "weight_decay", .type = OW_T_NUMBER, .def = "0", .doc = "decoupled decay"},
    {0},
};
enum { P_LR, P_BETA, P_WD };
static const char *const signum_params[] = {
    [P_LR] = "lr", [P_BETA] = "beta", [P_WD] = "weight_decay", NULL};
static const ow_slot signum_slots[] = {{.name = "momentum"}, {0}};

typedef struct signum_ctx {
    float beta, omb, keep, lr;
} signum_ctx;

static bool signum_check(const ow_hparam *hp, char *msg, size_t n)
{
    if (hp[P_BETA].v[0] < 0 || hp[P_BETA].v[0] >= 1) {
        strncpy(msg, "beta must be in [0, 1)", n - 1);
        msg[n - 1] = 0;
        return false;
    }
    return true;
}

static void signum_prepare(ow_prepare_args *a)
{
    signum_ctx *c = a->ctx;
    c->beta = (float)a->hp[P_BETA].v[0];
    c->omb = (float)(1 - a->hp[P_BETA].v[0]);
    c->keep = (float)(1 - a->lr * a->hp[P_WD].v[0]);
    c->lr = (float)a->lr;
}

static float sign_of(float x)
{
    return x > 0 ? 1.0f : x < 0 ? -1.0f : 0.0f;
}

static void signum_run(const ow_kernel_args *a)
{
    const signum_ctx *c = a->ctx;
    for (size_t i = 0; i < a->n; i++) {
        float m = a->s[0][i] = c->beta * a->s[0][i] + c->omb * a->g[i];
        a->p[i] = a->p[i] * c->keep - c->lr * sign_of(m);
    }
}

static bool signum_per_tensor(const ow_hparam *hp, int ndim, const int64_t *shape)
{
    (void)hp;
    (void)shape;
    return ndim == 2;
}

static size_t signum_scratch(const ow_hparam *hp, int ndim, const int64_t *shape)
{
    (void)hp;
    return (size_t)(shape[0] * (ndim == 2 ? shape[1] : 1)) * sizeof(float);
}

static void signum_tensor(const ow_tensor_args *a)
{
    const signum_ctx *c = a->ctx;
    float *sgn = a->scratch, *m = a->s[0];
    for (size_t i = 0; i < a->numel; i++) {
        m[i] = c->beta * m[i] + c->omb * a->g[i];
        sgn[i] = sign_of(m[i]);
    }
    float step = c->lr / sqrtf((float)a->shape[0]);
    for (size_t i = 0; i < a->numel; i++)
        a->p[i] = a->p[i] * c->keep - step * sgn[i];
}

static const ow_pass signum_passes[] = {{.run = signum_run, .ref = signum_run}, {0}};
static const ow_optimizer_ops signum_ops = {.abi_version = OW_ABI_VERSION,
                                            .slots = signum_slots,
                                            .params = signum_params,
                                            .ctx_size = sizeof(signum_ctx),
                                            .check = signum_check,
                                            .prepare = signum_prepare,
                                            .passes = signum_passes,
                                            .tensor_step = signum_tensor,
                                            .per_tensor = signum_per_tensor,
                                            .scratch_bytes = signum_scratch};
static const ow_entry plugin_signum = {
    .abi_version = OW_ABI_VERSION,
    .name = "PluginSignum",
    .kind = OW_KIND_OPTIMIZER,
    .scope = "owtest",
    .summary = "test plugin: signSGD with momentum, per-tensor steps for matrices",
    .keys = signum_keys,
    .ops = &signum_ops,
};

/* One group with every distinct tensor, as torch's model.parameters(). */
static int plugin_build(const ow_constructor_ctx *ctx, ow_groups *groups, ow_error *err)
{
    if (!ow_groups_add || !ow_groups_add_param || !ow_model_get_num_params ||
        !ow_model_get_param)
        return OW_ERR_UNSUPPORTED;
    size_t group;
    int rc = ow_groups_add(groups, &group, err);
    size_t n = ow_model_get_num_params(ctx->model);
    for (size_t i = 0; i < n && rc == OW_OK; i++) {
        ow_param_view view;
        rc = ow_model_get_param(ctx->model, i, &view);
        if (rc == OW_OK && !view.is_shared)
            rc = ow_groups_add_param(groups, group, i, err);
    }
    return rc;
}

static const ow_key plugin_constructor_keys[] = {{0}};
static const ow_constructor_ops plugin_constructor_ops = {.build = plugin_build};

static const ow_entry plugin_constructor = {
    .abi_version = OW_ABI_VERSION,
    .name = "PluginConstructor",
    .kind = OW_KIND_CONSTRUCTOR,
    .summary = "test plugin: one group holding every parameter",
    .keys = plugin_constructor_keys,
    .ops = &plugin_constructor_ops,
};

OW_API int ow_plugin_init(ow_error *err);

int ow_plugin_init(ow_error *err)
{
    int rc = ow_registry_add(&plugin_sgd, /*force=*/false, err);
    if (!rc)
        rc = ow_registry_add(&plugin_signum, /*force=*/false, err);
    return rc ? rc : ow_registry_add(&plugin_constructor, /*force=*/false, err);
}
