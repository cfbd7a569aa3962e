/* test_plugin.c -- a plugin as a user would write one: ow_plugin_init registers an
 * optimizer schema (PluginSGD, scope owtest) and a constructor (PluginConstructor) that
 * puts every parameter in one group. Linked against nothing: the host provides ow_*. */
#include "optwrap.h"

#include <math.h>

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
    return rc ? rc : ow_registry_add(&plugin_constructor, /*force=*/false, err);
}
