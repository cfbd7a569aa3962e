/* sched_test.c -- shared helpers of the scheduler suites (see sched_test.h). */
#include "sched_test.h"

#include <string.h>

static bool plain_get(void *ctx, size_t g, const char *key, double *out)
{
    plain *p = ctx;
    if (!strcmp(key, "lr"))
        *out = p->lr[g];
    else if (!strcmp(key, "momentum") && p->has_momentum)
        *out = p->momentum[g];
    else if (!strcmp(key, "lr_scale") && p->has_scale)
        *out = p->lr_scale[g];
    else if (!strcmp(key, "weight_decay") && p->has_wd)
        *out = p->weight_decay[g];
    else
        return false;
    return true;
}

static void plain_set(void *ctx, size_t g, const char *key, double v)
{
    plain *p = ctx;
    if (!strcmp(key, "lr"))
        p->lr[g] = v;
    else if (!strcmp(key, "momentum"))
        p->momentum[g] = v;
    else if (!strcmp(key, "weight_decay") && p->has_wd)
        p->weight_decay[g] = v;
    else
        ck_abort_msg("set of '%s'", key);
}

ow_sched_target plain_target(plain *p)
{
    return (ow_sched_target){.num_groups = p->n,
                             .has_base_group = p->has_base,
                             .ctx = p,
                             .get = plain_get,
                             .set = plain_set};
}

ow_cfg *sched_load(const char *text)
{
    ow_cfg *cfg = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_load_string(text, "t.yaml", &cfg, &err), &err);
    return cfg;
}

ow_cfg *sched_golden(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/sched/%s", OW_TEST_GOLDEN, rel);
    ow_cfg *cfg = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_cfg_load(path, &cfg, &err), &err);
    return cfg;
}
