/* numbers.c -- Python's arithmetic on config numbers, as the reference constructors
 * compute lr and weight decay: int stays int where Python keeps it, float powers are
 * C pow() on doubles (bit-identical to Python's float ** int). */
#include "ctor_internal.h"

#include <math.h>
#include <stdint.h>

double ow__num_value(const ow_cfg *v)
{
    if (!v)
        return 0.0;
    if (v->type == OW_CFG_INT)
        return (double)v->v.i;
    return v->type == OW_CFG_FLOAT ? v->v.d : 0.0;
}

const ow_cfg *ow__num_or_null(const ow_cfg *map, const char *key)
{
    const ow_cfg *v = ow__cfg_map_get(map, key);
    return v && (v->type == OW_CFG_INT || v->type == OW_CFG_FLOAT) ? v : NULL;
}

ow_cfg ow__num_product(const ow_cfg *a, const ow_cfg *b)
{
    if (a->type == OW_CFG_INT && b->type == OW_CFG_INT)
        return (ow_cfg){.type = OW_CFG_INT, .v.i = a->v.i * b->v.i};
    double x = a->type == OW_CFG_INT ? (double)a->v.i : a->v.d;
    double y = b->type == OW_CFG_INT ? (double)b->v.i : b->v.d;
    return (ow_cfg){.type = OW_CFG_FLOAT, .v.d = x * y};
}

ow_cfg *ow__num_mul(const ow_cfg *a, const ow_cfg *b)
{
    ow_cfg p = ow__num_product(a, b);
    return p.type == OW_CFG_INT ? ow__cfg_new_int(p.v.i) : ow__cfg_new_double(p.v.d);
}

/* int ** int by squaring; false when it leaves int64 (Python would grow a big int). */
static bool int_pow(int64_t base, int64_t exp, int64_t *out)
{
    int64_t r = 1;
    while (exp > 0) {
        if (exp & 1) {
            if (__builtin_mul_overflow(r, base, &r))
                return false;
        }
        exp >>= 1;
        if (exp > 0 && __builtin_mul_overflow(base, base, &base))
            return false;
    }
    *out = r;
    return true;
}

ow_cfg *ow__num_pow(const ow_cfg *base, int64_t exp)
{
    int64_t r;
    if (base->type == OW_CFG_INT && exp >= 0 && int_pow(base->v.i, exp, &r))
        return ow__cfg_new_int(r);
    return ow__cfg_new_double(pow(ow__num_value(base), (double)exp));
}
