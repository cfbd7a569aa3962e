/* check_state_convert.c -- a state file saved under one state_dtype loaded into an
 * optimizer with another (issue #12): converted with quant.c's codecs, noted, and the
 * same dtype loaded byte for byte. */
#include "optim_fixture.h"
#include "quant_fixture.h"
#include "testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* AdamW over 8,000 elements (int8 codes, a partial last block) and 100 (float32 state1
 * under int8), stepped 3 times under state_dtype dt. */
static void make(fixture *f, const char *dt)
{
    static const int nd[2] = {2, 2};
    static const int64_t shapes[2][3] = {{100, 80}, {10, 10}};
    char opts[128];
    snprintf(opts, sizeof opts, "{lr: 0.01, weight_decay: 0.05, state_dtype: %s}", dt);
    const char *o[1] = {opts};
    fix_make(f, "AdamW", 2, nd, shapes, 1, o, 7);
}

static void stepped(fixture *f, const char *dt)
{
    make(f, dt);
    for (int step = 1; step <= 3; step++) {
        if (step > 1)
            fix_grads(f, 40u + (unsigned)step);
        ow_error err;
        ow_check_ok(ow_optimizer_step(f->opt, &err), &err);
    }
}

static size_t slot(const ow_optimizer *opt, const char *name)
{
    for (size_t k = 0; k < opt->nslots; k++)
        if (!strcmp(opt->ops->slots[k].name, name))
            return k;
    ck_abort_msg("no slot %s", name);
    return 0;
}

static void *get(const ow_optimizer *opt, size_t i, const char *name)
{
    return opt->t[i].slot[slot(opt, name)];
}

static char *save(const fixture *f)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/check_state_convert_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ow_error err;
    ow_check_ok(ow_optimizer_save(f->opt, path, &err), &err);
    return path;
}

static void load(fixture *f, const char *path, const char *from, const char *to)
{
    ow_error err;
    ow_check_ok(ow_optimizer_load(f->opt, path, &err), &err);
    if (!strcmp(from, to)) {
        ck_assert_uint_eq(ow_optimizer_get_num_notes(f->opt), 0);
        return;
    }
    char want[256];
    snprintf(want, sizeof want,
             "%s: state saved with state_dtype %s, converted to %s (param group 0)", path,
             from, to);
    ck_assert_uint_eq(ow_optimizer_get_num_notes(f->opt), 1);
    ck_assert_str_eq(ow_optimizer_get_note(f->opt, 0), want);
    ck_assert_ptr_null(ow_optimizer_get_note(f->opt, 1));
}

/* The codec's error bound per unit of absmax: the farthest a value between two codes
 * lies from the code its midpoint picks, or the distance from the map's ends to -1 (0
 * unsigned) and 1. */
static float code_bound(const ow__qtab *q, float lo)
{
    float g = fmaxf(q->map[0] - lo, 1 - q->map[255]);
    for (int c = 0; c + 1 < 256; c++)
        g = fmaxf(g, fmaxf(q->mid[c] - q->map[c], q->map[c + 1] - q->mid[c]));
    return g;
}

/* float32 -> int8: the codes and absmax are quant.c's of the moments; back to float32:
 * its decoding (bit for bit), within the codec's bound times the block's absmax of the
 * original; the
 * small tensor's moments bit for bit; both optimizers step on. */
START_TEST(f32_int8_f32)
{
    fixture a, b, c;
    stepped(&a, "float32");
    make(&b, "int8");
    make(&c, "float32");
    char *path = save(&a), p1[64];
    snprintf(p1, sizeof p1, "%s", path);
    load(&b, p1, "float32", "int8");
    const size_t n = 8000, nb = (n + 255) / 256;
    static const char *const mom[2] = {"exp_avg", "exp_avg_sq"};
    const ow__qtab *tab[2] = {&ow__qtab_signed, &ow__qtab_unsigned};
    uint8_t codes[8000];
    float absmax[32], back[8000];
    for (int m = 0; m < 2; m++) {
        const float *x = get(a.opt, 0, mom[m]);
        ow__q8_quantize(tab[m], x, n, codes, absmax);
        ck_assert_mem_eq(get(b.opt, 0, m ? "state2" : "state1"), codes, n);
        ck_assert_mem_eq(get(b.opt, 0, m ? "absmax2" : "absmax1"), absmax, nb * 4);
        ck_assert_mem_eq(get(b.opt, 0, m ? "qmap2" : "qmap1"), tab[m]->map, 1024);
        ck_assert_mem_eq(get(b.opt, 1, m ? "state2" : "state1"), get(a.opt, 1, mom[m]),
                         400);
    }
    char *path2 = save(&b), p2[64];
    snprintf(p2, sizeof p2, "%s", path2);
    load(&c, p2, "int8", "float32");
    for (int m = 0; m < 2; m++) {
        const float *x = get(a.opt, 0, mom[m]), *y = get(c.opt, 0, mom[m]);
        ow__q8_quantize(tab[m], x, n, codes, absmax);
        ow__q8_dequantize(tab[m], codes, absmax, n, back);
        ck_assert_mem_eq(y, back, n * 4);
        float bound = code_bound(tab[m], m ? 0.0f : -1.0f), worst = 0;
        for (size_t i = 0; i < n; i++)
            worst = fmaxf(worst, fabsf(y[i] - x[i]) / (absmax[i / 256] * bound));
        ck_assert_msg(worst <= 1.0f + 0x1p-20f, "%s: error %g of the bound", mom[m],
                      (double)worst);
        ck_assert_mem_eq(get(c.opt, 1, mom[m]), get(a.opt, 1, mom[m]), 400);
    }
    ow_error err;
    fix_grads(&b, 99);
    fix_grads(&c, 99);
    ow_check_ok(ow_optimizer_step(b.opt, &err), &err);
    ow_check_ok(ow_optimizer_step(c.opt, &err), &err);
    unlink(p1);
    unlink(p2);
    fix_free(&a);
    fix_free(&b);
    fix_free(&c);
}
END_TEST

/* bfloat16 -> float32 is exact (every bf16 is a float32); float32 -> bfloat16 rounds
 * to nearest even; the same dtype loads byte for byte, without a note. */
START_TEST(bf16_and_same)
{
    fixture a, b, c, d;
    stepped(&a, "bfloat16");
    make(&b, "float32");
    make(&c, "bfloat16");
    stepped(&d, "float32");
    char *path = save(&a), p1[64];
    snprintf(p1, sizeof p1, "%s", path);
    load(&b, p1, "bfloat16", "float32");
    load(&c, p1, "bfloat16", "bfloat16");
    static const char *const mom[2] = {"exp_avg", "exp_avg_sq"};
    float f[8000];
    uint16_t h[8000];
    for (size_t i = 0; i < 2; i++)
        for (int m = 0; m < 2; m++) {
            size_t n = a.numel[i];
            ow__bf16_decode(get(a.opt, i, mom[m]), n, f);
            ck_assert_mem_eq(get(b.opt, i, mom[m]), f, n * 4);
            ck_assert_mem_eq(get(c.opt, i, mom[m]), get(a.opt, i, mom[m]), n * 2);
        }
    char *path2 = save(&d), p2[64];
    snprintf(p2, sizeof p2, "%s", path2);
    load(&c, p2, "float32", "bfloat16");
    load(&b, p2, "float32", "float32");
    for (size_t i = 0; i < 2; i++)
        for (int m = 0; m < 2; m++) {
            size_t n = d.numel[i];
            ow__bf16_encode(get(d.opt, i, mom[m]), n, h);
            ck_assert_mem_eq(get(c.opt, i, mom[m]), h, n * 2);
            ck_assert_mem_eq(get(b.opt, i, mom[m]), get(d.opt, i, mom[m]), n * 4);
        }
    unlink(p1);
    unlink(p2);
    fix_free(&a);
    fix_free(&b);
    fix_free(&c);
    fix_free(&d);
}
END_TEST

/* int8 -> int8: the codes, absmax and maps byte for byte. */
START_TEST(int8_same)
{
    fixture a, b;
    stepped(&a, "int8");
    make(&b, "int8");
    char *path = save(&a);
    load(&b, path, "int8", "int8");
    static const char *const names[6] = {"state1",  "state2", "absmax1",
                                         "absmax2", "qmap1",  "qmap2"};
    static const size_t bytes[6] = {8000, 8000, 32 * 4, 32 * 4, 1024, 1024};
    for (int k = 0; k < 6; k++)
        ck_assert_mem_eq(get(b.opt, 0, names[k]), get(a.opt, 0, names[k]), bytes[k]);
    unlink(path);
    fix_free(&a);
    fix_free(&b);
}
END_TEST

/* The other optimizers: float32 -> int8 codes each moment with its own map (RMSprop's
 * square_avg and Adagrad's sum unsigned), back to float32 decodes them; AdEMAMix (a
 * per-tensor step) converts float32 <-> bfloat16 and refuses int8 with a message. */
static const struct {
    const char *entry, *opts, *moment[2]; /* the float32 layout's moments, in order */
    bool is_signed[2];
} others[] = {
    {"lion", "lr: 0.0001", {"exp_avg", NULL}, {true}},
    {"SGD", "lr: 0.01, momentum: 0.9", {"momentum_buffer", NULL}, {true}},
    {"RMSprop", "lr: 0.001, momentum: 0.9", {"square_avg", "momentum_buffer"}, {0, 1}},
    {"Adagrad", "lr: 0.01", {"sum", NULL}, {false}},
    {"lamb", "lr: 0.001", {"exp_avg", "exp_avg_sq"}, {true, false}},
    {"lars", "lr: 0.1", {"momentum_buffer", NULL}, {true}},
};

static void make_other(fixture *f, const char *entry, const char *opts, const char *dt)
{
    static const int nd[1] = {2};
    static const int64_t shapes[1][3] = {{100, 80}};
    char o[160];
    snprintf(o, sizeof o, "{%s, state_dtype: %s}", opts, dt);
    const char *og[1] = {o};
    fix_make(f, entry, 1, nd, shapes, 1, og, 5);
}

START_TEST(other_optimizers)
{
    fixture a, b, c;
    make_other(&a, others[_i].entry, others[_i].opts, "float32");
    for (int step = 1; step <= 3; step++) {
        if (step > 1)
            fix_grads(&a, 60u + (unsigned)step);
        ow_error err;
        ow_check_ok(ow_optimizer_step(a.opt, &err), &err);
    }
    make_other(&b, others[_i].entry, others[_i].opts, "int8");
    make_other(&c, others[_i].entry, others[_i].opts, "float32");
    char p1[64], *path = save(&a);
    snprintf(p1, sizeof p1, "%s", path);
    load(&b, p1, "float32", "int8");
    char *path2 = save(&b), p2[64];
    snprintf(p2, sizeof p2, "%s", path2);
    load(&c, p2, "int8", "float32");
    uint8_t codes[8000];
    float absmax[32], back[8000];
    for (int m = 0; m < 2 && others[_i].moment[m]; m++) {
        const ow__qtab *q =
            others[_i].is_signed[m] ? &ow__qtab_signed : &ow__qtab_unsigned;
        ow__q8_quantize(q, get(a.opt, 0, others[_i].moment[m]), 8000, codes, absmax);
        ck_assert_mem_eq(get(b.opt, 0, m ? "state2" : "state1"), codes, 8000);
        ck_assert_mem_eq(get(b.opt, 0, m ? "qmap2" : "qmap1"), q->map, 1024);
        ow__q8_dequantize(q, codes, absmax, 8000, back);
        ck_assert_mem_eq(get(c.opt, 0, others[_i].moment[m]), back, 8000 * 4);
    }
    unlink(p1);
    unlink(p2);
    fix_free(&a);
    fix_free(&b);
    fix_free(&c);
}
END_TEST

START_TEST(ademamix)
{
    fixture a, b, c;
    make_other(&a, "AdEMAMix", "lr: 0.001", "float32");
    ow_error err;
    ow_check_ok(ow_optimizer_step(a.opt, &err), &err);
    make_other(&b, "AdEMAMix", "lr: 0.001", "bfloat16");
    make_other(&c, "AdEMAMix", "lr: 0.001", "int8");
    char *path = save(&a);
    load(&b, path, "float32", "bfloat16");
    uint16_t h[16000];
    ow__bf16_encode(get(a.opt, 0, "state1"), 16000, h); /* [2, 100, 80]: m1, m2 */
    ck_assert_mem_eq(get(b.opt, 0, "state1"), h, 16000 * 2);
    ck_assert_int_eq(ow_optimizer_load(c.opt, path, &err), OW_ERR_STATE);
    char want[256];
    snprintf(want, sizeof want,
             "%s: state file: AdEMAMix cannot convert the state of parameter 0 into int8 "
             "(it converts between float32 and bfloat16 only)",
             path);
    char got[1024];
    ow_error_format(&err, got, sizeof got);
    ck_assert_str_eq(got, want);
    unlink(path);
    fix_free(&a);
    fix_free(&b);
    fix_free(&c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("state_convert");
    TCase *tc = tcase_create("convert");
    tcase_add_test(tc, f32_int8_f32);
    tcase_add_test(tc, bf16_and_same);
    tcase_add_test(tc, int8_same);
    tcase_add_loop_test(tc, other_optimizers, 0, OW__ARRAY_LEN(others));
    tcase_add_test(tc, ademamix);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(suite());
}
