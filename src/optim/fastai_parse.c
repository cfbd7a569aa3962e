/* fastai.Optimizer's `cbs:` list read into a program: each item a callback's name
 * (`weight_decay`) or a map with `type` and the callback's option (`{type:
 * average_grad, dampening: true}`, fastai's partial(average_grad, dampening=True)).
 * Checked as fastai would fail, but before the first step: unknown names and keys
 * (with the closest one), a callback reading state no earlier callback creates
 * (fastai: a TypeError on the first step), and a hyperparameter the list reads that
 * neither the config nor a callback's defaults give (fastai: a TypeError). */
#include "fastai_internal.h"

#include <string.h>

/* The callbacks a list may name (Lookahead is a wrapper in fastai, not a callback). */
static const char *const cb_names[] = {
    "weight_decay",  "l2_reg",        "average_grad",  "average_sqr_grad", "step_stat",
    "momentum_step", "sgd_step",      "rms_prop_step", "adam_step",        "radam_step",
    "qhadam_step",   "larc_layer_lr", "larc_step",     "lamb_step",        NULL,
};

static const char *const state_names[FS__N] = {
    [FS_GRAD_AVG] = "grad_avg",
    [FS_SQR_AVG] = "sqr_avg",
    [FS_STEP] = "step",
    [FS_LOCAL_LR] = "local_lr",
    [FS_SLOW_WEIGHTS] = "slow_weights",
    [FS_LOOKAHEAD_COUNT] = "lookahead_count",
};

/* The callback creating state s first. */
static const char *creator(unsigned s)
{
    for (int c = 0; c < FA_LOOKAHEAD; c++)
        if (ow__fa_cbs[c].creates & (1u << s))
            return ow__fa_cbs[c].name;
    return "?";
}

static int find_cb(const char *name)
{
    for (int c = 0; cb_names[c]; c++)
        if (!strcmp(cb_names[c], name))
            return c;
    return -1;
}

static int unknown_cb(const ow_cfg *node, size_t i, const char *name, ow_error *err)
{
    const char *near = ow__closest(name, cb_names);
    if (near)
        return ow__error_at(err, OW_ERR_VALUE, node,
                            "cbs[%zu]: unknown callback '%s' (did you mean '%s'?)", i,
                            name, near);
    return ow__error_at(
        err, OW_ERR_VALUE, node,
        "cbs[%zu]: unknown callback '%s' (fastai's: weight_decay, l2_reg, "
        "average_grad, average_sqr_grad, step_stat, momentum_step, "
        "sgd_step, rms_prop_step, adam_step, radam_step, qhadam_step, "
        "larc_layer_lr, larc_step, lamb_step)",
        i, name);
}

/* One item: a name, or {type: name, <option>: bool}. */
static int parse_item(const ow_cfg *item, size_t i, int *cb, bool *opt, bool *bare,
                      ow_error *err)
{
    *bare = false;
    const char *name;
    if (ow_cfg_get_type(item) == OW_CFG_STRING) {
        name = item->v.s;
        if ((*cb = find_cb(name)) < 0)
            return unknown_cb(item, i, name, err);
        *opt = ow__fa_cbs[*cb].option_default;
        *bare = true;
        return OW_OK;
    }
    if (ow_cfg_get_type(item) != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, item,
                            "cbs[%zu]: expected a callback name or a map with 'type'", i);
    const ow_cfg *type = ow__cfg_map_get(item, "type");
    if (!type)
        return ow__error_at(err, OW_ERR_MISSING_KEY, item,
                            "cbs[%zu]: a callback map needs 'type' (its name)", i);
    if (ow_cfg_get_type(type) != OW_CFG_STRING)
        return ow__error_at(err, OW_ERR_TYPE, type,
                            "cbs[%zu].type: expected a callback name", i);
    if ((*cb = find_cb(type->v.s)) < 0)
        return unknown_cb(type, i, type->v.s, err);
    const ow__fa_cb_info *info = &ow__fa_cbs[*cb];
    *opt = info->option_default;
    for (size_t k = 0; k < ow_cfg_get_size(item); k++) {
        const char *key = ow_cfg_get_key(item, k);
        const ow_cfg *v = ow_cfg_get_item(item, k);
        if (!strcmp(key, "type"))
            continue;
        if (!info->option || strcmp(key, info->option)) {
            const char *const opts[] = {info->option, NULL};
            const char *near = info->option ? ow__closest(key, opts) : NULL;
            return ow__error_at(err, OW_ERR_UNKNOWN_KEY, v,
                                "cbs[%zu]: unknown key '%s' for %s%s%s%s (%s%s)", i, key,
                                info->name, near ? " (did you mean '" : "",
                                near ? near : "", near ? "'?)" : "",
                                info->option ? "its option is " : "it takes no option",
                                info->option ? info->option : "");
        }
        if (ow_cfg_get_type(v) != OW_CFG_BOOL)
            return ow__error_at(err, OW_ERR_TYPE, v, "cbs[%zu].%s: expected a bool", i,
                                key);
        *opt = v->v.b;
    }
    return OW_OK;
}

int ow__fa_parse_cbs(const ow_cfg *list, ow__fa_prog *prog, ow_error *err)
{
    memset(prog, 0, sizeof *prog);
    if (ow_cfg_get_type(list) != OW_CFG_LIST)
        return ow__error_at(err, OW_ERR_TYPE, list,
                            "cbs: expected a list of fastai step callbacks");
    size_t n = ow_cfg_get_size(list);
    if (n == 0 || n > OW__FA_MAX_CBS)
        return ow__error_at(err, OW_ERR_VALUE, list,
                            "cbs: %zu callbacks; between 1 and %d are accepted", n,
                            OW__FA_MAX_CBS);
    unsigned have = 0;
    for (size_t i = 0; i < n; i++) {
        int cb = 0;
        bool opt = false, bare = false;
        int rc = parse_item(ow_cfg_get_item(list, i), i, &cb, &opt, &bare, err);
        if (rc)
            return rc;
        ow__fa_prog_add(prog, (ow__fa_cb)cb, opt);
        if (bare)
            prog->flags[i] |= FA_BARE;
    }
    for (size_t i = 0; i < n; i++) {
        const ow__fa_cb_info *info = &ow__fa_cbs[prog->cb[i]];
        unsigned after = 0;
        for (size_t j = i + 1; j < n; j++)
            after |= ow__fa_cbs[prog->cb[j]].creates;
        for (unsigned s = 0; s < FS__N; s++) {
            unsigned bit = 1u << s;
            bool need = info->needs & bit, opt = info->optional & bit;
            if ((!need && !opt) || (have & bit))
                continue;
            if (need || (after & bit))
                return ow__error_at(err, OW_ERR_VALUE, ow_cfg_get_item(list, i),
                                    "cbs[%zu]: %s reads %s, which %s; put %s before it",
                                    i, info->name, state_names[s],
                                    after & bit ? "a later callback creates"
                                                : "no earlier callback creates",
                                    creator(s));
        }
        have |= info->creates;
    }
    return OW_OK;
}
