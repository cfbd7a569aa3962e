/* lookahead.c -- Lookahead (Zhang et al., 2019) as timm's composite: any optimizer's
 * step, then every k steps of a group its slow weights move toward the fast ones,
 * slow += alpha * (fast - slow), and the fast weights are reset to them. timm names it
 * `lookahead_<name>` for every optimizer name of its factory: the composite entry is
 * made on first lookup and kept by the registry, with the inner entry's keys followed by
 * timm's lookahead_alpha, lookahead_k and the group's counter lookahead_step (param
 * group values, as timm keeps them), and the inner slots followed by
 * lookahead_slow_buff. timm creates the slow buffer at a parameter's first sync, as a
 * copy of the fast weights (so the first sync changes nothing); optwrap allocates it
 * with the other state and fills it at that first sync. Configs may also write it as
 * {type: Lookahead, optimizer: {type: X, ...}, alpha: 0.5, k: 6} over any optimizer:
 * the readers of optim_wrapper.optimizer get the composite's flat form.
 * https://arxiv.org/abs/1907.08610 */
#include "optim_internal.h"

#include <pthread.h>
#include <string.h>

#define PREFIX "lookahead_"

typedef struct composite {
    ow_entry entry;
    ow_optimizer_ops ops;
    const ow_entry *inner;
    char name[96];
    ow_key *keys;
    ow_slot *slots;
    char summary[160];
} composite;

/* Composites made so far: registry state, kept until the process exits. */
static struct {
    composite **items;
    size_t n, cap;
} made;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* A composite's full type string: "<scope>.lookahead_<name>". */
static void full_name(const ow_entry *e, char *buf, size_t n)
{
    snprintf(buf, n, "%s.%s", e->scope ? e->scope : "mmengine", e->name);
}

static const ow_key lookahead_keys[] = {
    {.name = "lookahead_alpha",
     .type = OW_T_NUMBER,
     .def = "0.5",
     .min = 0,
     .max = 1,
     .flags = OW_KEY_RANGE,
     .doc = "how far the slow weights move toward the fast ones at a sync"},
    {.name = "lookahead_k",
     .type = OW_T_INT,
     .def = "6",
     .min = 1,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "steps between syncs"},
    {.name = "lookahead_step",
     .type = OW_T_INT,
     .def = "0",
     .min = 0,
     .max = (double)OW__COUNT_MAX,
     .flags = OW_KEY_RANGE,
     .doc = "the group's step counter (timm keeps it in the param group)"},
};

static composite *compose(const ow_entry *inner)
{
    const ow_optimizer_ops *iops = inner->ops;
    size_t nk = 0, ns = 0;
    while (inner->keys[nk].name)
        nk++;
    while (iops->slots[ns].name)
        ns++;
    composite *c = ow__calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->keys = ow__calloc(nk + OW__ARRAY_LEN(lookahead_keys) + 1, sizeof *c->keys);
    c->slots = ow__calloc(ns + 2, sizeof *c->slots);
    if (!c->keys || !c->slots) {
        ow_free(c->keys);
        ow_free(c->slots);
        ow_free(c);
        return NULL;
    }
    memcpy(c->keys, inner->keys, nk * sizeof *c->keys);
    memcpy(c->keys + nk, lookahead_keys, sizeof lookahead_keys);
    memcpy(c->slots, iops->slots, ns * sizeof *c->slots);
    c->slots[ns] = (ow_slot){.name = "lookahead_slow_buff"};
    c->ops = *iops;
    c->ops.slots = c->slots;
    c->inner = inner;
    snprintf(c->name, sizeof c->name, PREFIX "%s", inner->name);
    snprintf(c->summary, sizeof c->summary, "timm Lookahead (alpha 0.5, k 6) over '%s'",
             inner->name);
    c->entry = (ow_entry){.abi_version = OW_ABI_VERSION,
                          .name = c->name,
                          .kind = OW_KIND_OPTIMIZER,
                          .scope = inner->scope,
                          .summary = c->summary,
                          .keys = c->keys,
                          .ops = &c->ops};
    return c;
}

const ow_entry *ow__lookahead_entry(const ow_entry *inner)
{
    if (!inner || inner->kind != OW_KIND_OPTIMIZER || !inner->ops ||
        ow__lookahead_inner(inner))
        return NULL; /* schema-only entries have no step to wrap; no Lookahead twice */
    const ow_entry *out = NULL;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < made.n && !out; i++)
        if (made.items[i]->inner == inner)
            out = &made.items[i]->entry;
    if (!out && ow__grow((void **)&made.items, &made.cap, made.n + 1,
                         sizeof *made.items) == OW_OK) {
        composite *c = compose(inner);
        if (c) {
            made.items[made.n++] = c;
            out = &c->entry;
        }
    }
    pthread_mutex_unlock(&lock);
    return out;
}

const ow_entry *ow__lookahead_inner(const ow_entry *e)
{
    const ow_entry *inner = NULL;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < made.n && !inner; i++)
        if (&made.items[i]->entry == e)
            inner = made.items[i]->inner;
    pthread_mutex_unlock(&lock);
    return inner;
}

bool ow__lookahead_is_config_form(const ow_cfg *opt_cfg)
{
    const ow_cfg *t = ow__cfg_map_get(opt_cfg, "type"),
                 *inner = ow__cfg_map_get(opt_cfg, "optimizer");
    return t && t->type == OW_CFG_STRING && inner &&
           (!strcmp(t->v.s, "Lookahead") || !strcmp(t->v.s, "mmengine.Lookahead"));
}

int ow__lookahead_flatten(const ow_cfg *opt_cfg, const char *scope, ow_cfg **flat,
                          ow_error *err)
{
    *flat = NULL;
    const ow_cfg *inner = ow__cfg_map_get(opt_cfg, "optimizer");
    for (size_t i = 0; i < opt_cfg->v.c.n; i++) {
        const char *k = opt_cfg->v.c.keys[i];
        if (strcmp(k, "type") && strcmp(k, "optimizer") && strcmp(k, "alpha") &&
            strcmp(k, "k"))
            return ow__error_at(err, OW_ERR_UNKNOWN_KEY, opt_cfg->v.c.items[i],
                                "optim_wrapper.optimizer: Lookahead has no key '%s' (its "
                                "keys: optimizer, alpha, k)",
                                k);
    }
    if (inner->type != OW_CFG_MAP)
        return ow__error_at(err, OW_ERR_TYPE, inner,
                            "optim_wrapper.optimizer.optimizer: expected the map of the "
                            "optimizer Lookahead wraps, got %s",
                            ow_cfg_type_name(inner->type));
    const ow_cfg *itype = ow__cfg_map_get(inner, "type");
    if (!itype)
        return ow__error_at(err, OW_ERR_MISSING_KEY, inner,
                            "optim_wrapper.optimizer.optimizer: missing key 'type'");
    const ow_entry *e, *composite;
    int rc = ow__registry_lookup(OW_KIND_OPTIMIZER, itype, scope, &e, err);
    if (rc)
        return rc;
    if (!(composite = ow__lookahead_entry(e)))
        return ow__error_at(err, OW_ERR_UNSUPPORTED, itype,
                            "Lookahead cannot wrap '%s' (%s)", e->name,
                            ow__lookahead_inner(e) ? "it is a Lookahead already"
                                                   : "it has no kernels in optwrap");
    char name[160];
    full_name(composite, name, sizeof name);
    ow_cfg *out = ow__cfg_dup(inner), *t = ow__cfg_new_string(name);
    const ow_cfg *alpha = ow__cfg_map_get(opt_cfg, "alpha"),
                 *k = ow__cfg_map_get(opt_cfg, "k");
    ow_cfg *a2 = alpha ? ow__cfg_dup(alpha) : NULL, *k2 = k ? ow__cfg_dup(k) : NULL;
    if (!out || !t || (alpha && !a2) || (k && !k2))
        goto nomem;
    if (ow__cfg_set_pos(t, itype->file, itype->line, itype->column) != OW_OK)
        goto nomem;
    if (ow__cfg_map_set(out, "type", t) != OW_OK) /* takes t, even on failure */
        goto nomem_t;
    t = NULL;
    if (a2 && ow__cfg_map_set(out, "lookahead_alpha", a2) != OW_OK)
        goto nomem_a;
    a2 = NULL;
    if (k2 && ow__cfg_map_set(out, "lookahead_k", k2) != OW_OK)
        goto nomem_k;
    *flat = out;
    return OW_OK;
nomem:
    ow_cfg_free(t);
nomem_t:
    ow_cfg_free(a2);
nomem_a:
    ow_cfg_free(k2);
nomem_k:
    ow_cfg_free(out);
    return ow__nomem(err);
}

const char *ow__lookahead_strip(const char *name)
{
    return strncmp(name, PREFIX, strlen(PREFIX)) ? NULL : name + strlen(PREFIX);
}

/* timm keeps the counter in the group (group['lookahead_step']); optwrap keeps it in the
 * group's options, which state files save. */
int ow__lookahead_own_step(const ow_optimizer *opt, ow_cfg *opts, const ow_hparam *hp)
{
    if (opt->la_step_key < 0 || ow__cfg_map_get(opts, "lookahead_step"))
        return OW_OK;
    ow_cfg *count = ow__cfg_new_int((int64_t)hp[opt->la_step_key].v[0]);
    return count && !ow__cfg_map_set(opts, "lookahead_step", count) ? OW_OK
                                                                    : OW_ERR_NOMEM;
}

/* After each step: every group counts it; a group at a multiple of k syncs its tensors
 * that stepped (timm skips those without a gradient). */
void ow__lookahead_after_step(ow_optimizer *opt, size_t nactive)
{
    size_t slow = opt->nslots - 1;
    for (size_t gi = 0; gi < opt->ng; gi++) {
        ow__group *g = &opt->g[gi];
        ow_hparam *st = &g->hp[opt->la_step_key];
        st->v[0] += 1;
        st->n = 1;
        ow_cfg *node = ow__cfg_map_get(g->opts, "lookahead_step"); /* own_step's */
        node->type = OW_CFG_INT;
        node->v.i = (int64_t)st->v[0];
        ow__group_sync(opt, gi);
    }
    for (size_t a = 0; a < nactive; a++) {
        ow__tensor *t = &opt->t[opt->active[a]];
        const ow_hparam *hp = opt->g[t->group].hp;
        double k = hp[opt->la_k_key].v[0];
        if (k < 1 || fmod(hp[opt->la_step_key].v[0], k) != 0)
            continue;
        float *s = t->slot[slow], *p = t->p;
        if (!t->la_valid) { /* the buffer is born as a copy of the fast weights */
            memcpy(s, p, t->numel * sizeof *s);
            t->la_valid = true;
        }
        const float alpha = ow__f(hp[opt->la_alpha_key].v[0]);
        for (size_t i = 0; i < t->numel; i++) {
            s[i] = fmaf(alpha, p[i] - s[i], s[i]); /* slow.add_(fast - slow, alpha=) */
            p[i] = s[i];                           /* fast.copy_(slow) */
        }
    }
}
