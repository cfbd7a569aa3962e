/* half.c -- hosts whose parameters and gradients are float16 or bfloat16 (AmpOptimWrapper
 * with `dtype`): optwrap keeps fp32 master weights and gradient sums, reads the host's
 * half gradients at the end of each window and writes the stepped weights back rounded
 * to nearest even, as apex's O2 master weights do. */
#include "wrapper_internal.h"

#include <math.h>
#include <string.h>

typedef struct ow__half {
    uint16_t *data, *grad;  /* the host's */
    float *master, *grad32; /* ours: what the model's pointers now point to */
    size_t n;
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
    ow__half h = {.data = data, .grad = grad, .n = n};
    h.master = ow__malloc((n ? n : 1) * sizeof(float));
    h.grad32 = ow__calloc(n ? n : 1, sizeof(float));
    ow__half *grown = ow__realloc(w->half, (w->nhalf + 1) * sizeof *grown);
    if (!h.master || !h.grad32 || !grown) {
        ow_free(h.master);
        ow_free(h.grad32);
        if (grown)
            w->half = grown;
        return ow__nomem(err);
    }
    w->half = grown;
    int rc = ow_model_set_data(w->host_model, param_name, h.master, h.grad32, err);
    if (rc) {
        ow_free(h.master);
        ow_free(h.grad32);
        return rc;
    }
    for (size_t k = 0; k < n; k++)
        h.master[k] = to_f32(w, h.data[k]);
    w->half[w->nhalf++] = h;
    return OW_OK;
}

void ow__half_gather(const ow_optim_wrapper *w)
{
    for (size_t i = 0; i < w->nhalf; i++)
        for (size_t k = 0; k < w->half[i].n; k++)
            w->half[i].grad32[k] = to_f32(w, w->half[i].grad[k]);
}

void ow__half_scatter(ow_optim_wrapper *w, bool grads)
{
    for (size_t i = 0; i < w->nhalf; i++)
        for (size_t k = 0; k < w->half[i].n; k++) {
            w->half[i].data[k] = to_half(w, w->half[i].master[k]);
            if (grads) /* values read from half gradients: exact */
                w->half[i].grad[k] = to_half(w, w->half[i].grad32[k]);
        }
}

void ow__half_zero_grads(ow_optim_wrapper *w)
{
    for (size_t i = 0; i < w->nhalf; i++)
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
