/* half.c -- hosts whose parameters and gradients are float16 or bfloat16 (AmpOptimWrapper
 * with `dtype`): optwrap keeps fp32 master weights and writes the stepped weights back
 * rounded to nearest even, as apex's O2 master weights do. The optimizer reads the
 * host's half gradients where they are (ow_model_set_grad_half: the wrapper's passes
 * see their float32 values, the step unscales and clips them as it reads them); a
 * data-parallel run, which sums float32 gradients, copies them into float32 ones at the
 * end of each window instead. */
#include "wrapper_internal.h"

#include <math.h>
#include <string.h>

typedef struct ow__half {
    uint16_t *data, *grad;  /* the host's */
    float *master, *grad32; /* ours: what the model's pointers now point to (grad32:
                               data-parallel runs only, else NULL: grad is read) */
    size_t n, index;        /* elements; the parameter's occurrence in the model */
} ow__half;

static float to_f32(const ow_optim_wrapper *w, uint16_t h)
{
    return w->o.half == OW__HALF_BF16 ? ow__bf16_to_f32(h) : ow__f16_to_f32(h);
}

static uint16_t to_half(const ow_optim_wrapper *w, float f)
{
    return w->o.half == OW__HALF_BF16 ? ow__f32_to_bf16(f) : ow__f32_to_f16(f);
}

int ow_optim_wrapper_bind_half(ow_optim_wrapper *w, const char *param_name, void *data,
                               void *grad, ow_error *err)
{
    ow__error_reset(err);
    if (!w || !param_name || !data || !grad)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_bind_half: NULL argument");
    if (!w->host_model || w->nchildren)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_bind_half: bind on a wrapper made by "
                         "ow_optim_wrapper_new (of a dict: on its members)");
    if (w->o.half == OW__HALF_NONE)
        return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                         "ow_optim_wrapper_bind_half: the wrapper is not an "
                         "AmpOptimWrapper with dtype float16 or bfloat16");
    long i = ow_model_find_param(w->host_model, param_name);
    ow_param_view pv;
    if (i < 0 || ow_model_get_param(w->host_model, (size_t)i, &pv) != OW_OK)
        return ow__error(err, OW_ERR_MODEL, NULL, 0, 0,
                         "ow_optim_wrapper_bind_half: the model has no parameter '%s'",
                         param_name);
    for (size_t k = 0; k < w->nhalf; k++)
        if (w->half[k].master == pv.data && pv.data)
            return ow__error(err, OW_ERR_DUPLICATE, NULL, 0, 0,
                             "ow_optim_wrapper_bind_half: '%s' is bound already",
                             param_name);
    size_t n = (size_t)pv.numel;
    ow__half h = {.data = data, .grad = grad, .n = n, .index = (size_t)i};
    h.master = ow__malloc((n ? n : 1) * sizeof(float));
    ow__half *grown = ow__realloc(w->half, (w->nhalf + 1) * sizeof *grown);
    if (grown)
        w->half = grown;
    if (!h.master || !grown) {
        ow_free(h.master);
        return ow__nomem(err);
    }
    int rc = ow_model_set_data(w->host_model, param_name, h.master, NULL, err);
    if (rc == OW_OK)
        rc = ow_model_set_grad_half(
            w->host_model, (size_t)i, grad,
            w->o.half == OW__HALF_BF16 ? OW_GRAD_BF16 : OW_GRAD_F16, err);
    if (rc) {
        ow_free(h.master);
        return rc;
    }
    for (size_t k = 0; k < n; k++)
        h.master[k] = to_f32(w, h.data[k]);
    w->half[w->nhalf++] = h;
    if (w->dist && (rc = ow__half_copies(w, err)))
        return rc;
    return OW_OK;
}

bool ow__half_copied(const ow_optim_wrapper *w, size_t i)
{
    return i < w->nhalf && w->half[i].grad32;
}

int ow__half_copies(ow_optim_wrapper *w, ow_error *err)
{
    for (size_t i = 0; i < w->nhalf; i++) {
        ow__half *h = &w->half[i];
        if (h->grad32)
            continue;
        float *g = ow__malloc((h->n ? h->n : 1) * sizeof *g);
        if (!g)
            return ow__nomem(err);
        ow_param_view pv;
        ow_model_get_param(w->host_model, h->index, &pv);
        int rc = ow_model_set_data(w->host_model, pv.full_name, h->master, g, err);
        if (rc) {
            ow_free(g);
            return rc;
        }
        for (size_t k = 0; k < h->n; k++) /* an open window's sums so far */
            g[k] = to_f32(w, h->grad[k]);
        h->grad32 = g;
    }
    return OW_OK;
}

void ow__half_gather(const ow_optim_wrapper *w)
{
    for (size_t i = 0; i < w->nhalf; i++)
        for (size_t k = 0; w->half[i].grad32 && k < w->half[i].n; k++)
            w->half[i].grad32[k] = to_f32(w, w->half[i].grad[k]);
}

void ow__half_scatter(ow_optim_wrapper *w, bool grads)
{
    for (size_t i = 0; i < w->nhalf; i++)
        for (size_t k = 0; k < w->half[i].n; k++) {
            w->half[i].data[k] = to_half(w, w->half[i].master[k]);
            if (grads && w->half[i].grad32) /* read from half gradients: exact */
                w->half[i].grad[k] = to_half(w, w->half[i].grad32[k]);
        }
}

void ow__half_zero_grads(ow_optim_wrapper *w)
{
    for (size_t i = 0; i < w->nhalf; i++) /* the others: zeroed as the step's gradients */
        if (w->half[i].grad32)
            memset(w->half[i].grad, 0, w->half[i].n * sizeof(uint16_t));
}

void ow__half_free(ow_optim_wrapper *w)
{
    for (size_t i = 0; i < w->nhalf; i++) {
        ow_free(w->half[i].master);
        ow_free(w->half[i].grad32);
    }
    ow_free(w->half);
}
