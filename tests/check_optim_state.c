/* check_optim_state.c -- optimizer state files (round trips that continue bit for bit,
 * torch-readable safetensors layout, refusals that leave the optimizer untouched),
 * hyperparameter checks with their positions, and allocation failures. */
#include "optim/optim_internal.h"
#include "optim_fixture.h"
#include "util/safetensors.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/tests/optim-state-XXXXXX", OW_TEST_BUILDDIR);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    char path[512];
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", tmpdir, de->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(tmpdir);
}

static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static size_t read_bytes(const char *path, unsigned char **out)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *out = malloc((size_t)n + 1);
    ck_assert_int_eq(fread(*out, 1, (size_t)n, f), n);
    fclose(f);
    return (size_t)n;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static const int st_ndim[] = {1, 2, 3};
static const int64_t st_shapes[][3] = {{7}, {40, 50}, {3, 20, 20}};

/* ---- round trips
 * ----------------------------------------------------------------------- */

static const struct {
    const char *entry, *opts0, *opts1;
} round_trips[] = {
    {"AdamW", "{lr: 0.01, weight_decay: 0.0}",
     "{lr: 0.02, weight_decay: 0.1, amsgrad: true}"},
    {"SGD", "{lr: 0.1, momentum: 0.9}", "{lr: 0.05, momentum: 0.9, nesterov: true}"},
    {"timm.nadam", "{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1}"},
    {"timm.nadamlegacy", "{lr: 0.01}", "{lr: 0.02}"},
    {"timm.lamb", "{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1}"},
    {"timm.adafactor", "{lr: 0.01, min_dim_size_to_factor: 3}",
     "{lr: 0.02, min_dim_size_to_factor: 3, betas: [0.9]}"},
    {"timm.cadamw", "{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1}"},
    {"timm.rmsproptf", "{lr: 0.01, centered: true}", "{lr: 0.02}"},
    {"Adagrad", "{lr: 0.1, initial_accumulator_value: 0.5}", "{lr: 0.05}"},
    {"composer.DecoupledAdamW", "{lr: 0.01}", "{lr: 0.005}"},
    {"timm.adan", "{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1}"},
    {"timm.adopt", "{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1, decoupled: true}"},
    {"timm.laprop", "{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1}"},
    {"timm.madgrad", "{lr: 0.01}", "{lr: 0.02, momentum: 0}"},
    {"timm.mars", "{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1, caution: true}"},
    {"timm.novograd", "{lr: 0.01, amsgrad: true}", "{lr: 0.02, weight_decay: 0.1}"},
    /* Muon's two paths (momentum_buffer / AdamW slots), AdaMuon's step and
     * exp_avg_sq on both, a bf16 slot, Adahessian's "hessian step" and hess */
    {"timm.muon", "{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1}"},
    /* Kron draws: the built-in generator's seed and count travel with the state */
    {"timm.kron", "{lr: 0.01, preconditioner_update_probability: 0.5}",
     "{lr: 0.02, weight_decay: 0.1, preconditioner_update_probability: 0.5}"},
    {"timm.nadamuon", "{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1}"},
    {"timm.cadamp", "{lr: 0.01, delta: 10.0}", "{lr: 0.02, weight_decay: 0.1}"},
    {"timm.sgdp", "{lr: 0.1}", "{lr: 0.05, weight_decay: 0.1, delta: 10.0}"},
    {"timm.adafactorbv", "{lr: 0.01, min_dim_size_to_factor: 3}",
     "{lr: 0.02, weight_decay: 0.1, min_dim_size_to_factor: 3}"},
    {"timm.adahessian", "{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1, update_each: 2}"},
    {"fastai.ranger", "{lr: 0.01, lookahead_k: 2}",
     "{lr: 0.02, wd: 0.1, lookahead_k: 2}"},
    {"fastai.Larc", "{lr: 0.1}", "{lr: 0.2, clip: false, wd: 0.1}"},
    {"fastai.SGD", "{lr: 0.1, mom: 0.9}", "{lr: 0.05, mom: 0.0}"},
    {"fastai.Optimizer", "{lr: 0.01, cbs: [l2_reg, average_sqr_grad, rms_prop_step]}",
     "{lr: 0.02, wd: 0.1, cbs: [l2_reg, average_sqr_grad, rms_prop_step]}"},
    /* the rectified ones index a cache of ten by step % 10 */
    {"timm.radabelief", "{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1}"},
    {"timm.radamlegacy", "{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1}"},
    {"timm.lookahead_adamw", "{lr: 0.01, lookahead_k: 2}", "{lr: 0.02}"},
};

START_TEST(save_load_continues_bit_for_bit)
{
    const char *const opts[] = {round_trips[_i].opts0, round_trips[_i].opts1};
    const char *entry = round_trips[_i].entry;
    fixture a, b;
    ow_error err;
    ow_error_clear(&err);
    make_tmpdir();
    fix_make(&a, entry, 3, st_ndim, st_shapes, 2, opts, 5);
    fix_make(&b, entry, 3, st_ndim, st_shapes, 2, opts, 6);
    for (unsigned s = 0; s < 3; s++) {
        fix_grads(&a, 20 + s);
        ow_check_ok(ow_optimizer_step(a.opt, &err), &err);
    }
    ow_check_ok(ow_optimizer_save(a.opt, tmp("state.safetensors"), &err), &err);
    fix_copy_data(&b, &a);
    for (unsigned s = 3; s < 6; s++) {
        fix_grads(&a, 20 + s);
        ow_check_ok(ow_optimizer_step(a.opt, &err), &err);
    }
    ow_check_ok(ow_optimizer_load(b.opt, tmp("state.safetensors"), &err), &err);
    for (unsigned s = 3; s < 6; s++) {
        fix_grads(&b, 20 + s);
        ow_check_ok(ow_optimizer_step(b.opt, &err), &err);
    }
    for (size_t i = 0; i < a.n; i++)
        ck_assert_msg(!memcmp(a.data[i], b.data[i], a.numel[i] * sizeof(float)),
                      "%s: tensor %zu differs after load", entry, i);
    /* nothing but the state file is left behind (no temporary) */
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)))
        files += de->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(files, 1);
    fix_free(&a);
    fix_free(&b);
    remove_tmpdir();
}
END_TEST

/* Every 0-d state entry (step, hessian step, mu_product, ...) set to hostile values in
 * a file without checksums (as torch writes it): the load refuses it, or the steps after
 * it run (valgrind and the sanitizers watch them). Counters must be refused. */
START_TEST(hostile_scalars_refused_or_harmless)
{
    const char *const opts[] = {round_trips[_i].opts0, round_trips[_i].opts1};
    const char *entry = round_trips[_i].entry;
    static const double hostile[] = {NAN, INFINITY, -INFINITY, -1, -0x1p60, 0x1p60, 2.5};
    fixture a;
    ow_error err;
    ow_error_clear(&err);
    make_tmpdir();
    fix_make(&a, entry, 3, st_ndim, st_shapes, 2, opts, 5);
    for (unsigned s = 0; s < 2; s++) {
        fix_grads(&a, 20 + s);
        ow_check_ok(ow_optimizer_step(a.opt, &err), &err);
    }
    ow_check_ok(ow_optimizer_save(a.opt, tmp("good"), &err), &err);
    unsigned char *buf;
    size_t n = read_bytes(tmp("good"), &buf);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--)
        hl = hl << 8 | buf[k];
    ow_cfg *head = NULL;
    ow_check_ok(ow__cfg_parse((char *)buf + 8, (size_t)hl, "header", &head, &err), &err);
    char *sums = strstr((char *)buf + 8, "\"checksums\"");
    if (sums)
        sums[9] = 'x';
    int scalars = 0;
    for (size_t e = 0; e < head->v.c.n; e++) {
        const ow_cfg *t = head->v.c.items[e];
        const char *name = head->v.c.keys[e];
        const ow_cfg *shape = ow_cfg_find(t, "shape");
        if (strncmp(name, "state.", 6) || !shape || shape->v.c.n)
            continue;
        const char *dtype = ow_cfg_find(t, "dtype")->v.s;
        int64_t at;
        ow_check_ok(ow_cfg_get_int(ow_cfg_find(t, "data_offsets.0"), &at, &err), &err);
        bool count = strstr(name, "step") || strstr(name, "count");
        size_t es = strcmp(dtype, "F32") ? 8 : 4;
        unsigned char keep[8];
        memcpy(keep, buf + 8 + hl + at, es);
        scalars++;
        for (size_t h = 0; h < OW__ARRAY_LEN(hostile); h++) {
            double x = hostile[h];
            if (!strcmp(dtype, "F32")) {
                float f = (float)x;
                memcpy(buf + 8 + hl + at, &f, 4);
            } else if (!strcmp(dtype, "F64")) {
                memcpy(buf + 8 + hl + at, &x, 8);
            } else { /* ints: the extremes for nan and inf */
                ck_assert_str_eq(dtype, "I64");
                int64_t v = x != x ? INT64_MIN : x >= 0x1p63 ? INT64_MAX : (int64_t)x;
                memcpy(buf + 8 + hl + at, &v, 8);
                x = (double)v;
            }
            write_bytes(tmp("hostile"), buf, n);
            int rc = ow_optimizer_load(a.opt, tmp("hostile"), &err);
            ck_assert_msg(rc == OW_OK || rc == OW_ERR_STATE, "%s %s = %g: %s", entry,
                          name, x, err.message);
            ck_assert_msg(rc || !count || (x >= 0 && x == floor(x) && x <= 0x1p53),
                          "%s: %s = %g was accepted", entry, name, x);
            for (unsigned s = 0; rc == OW_OK && s < 2; s++) {
                fix_grads(&a, 30 + s);
                ow_check_ok(ow_optimizer_step(a.opt, &err), &err);
            }
            ow_check_ok(ow_optimizer_load(a.opt, tmp("good"), &err), &err);
        }
        memcpy(buf + 8 + hl + at, keep, es);
    }
    /* all but the SGD family and these fastai callbacks keep a 0-d counter */
    ck_assert_msg(scalars > 0 || strstr(entry, "SGD") || strstr(entry, "sgd") ||
                      !strcmp(entry, "fastai.Optimizer"),
                  "%s: no 0-d state", entry);
    ow_cfg_free(head);
    free(buf);
    fix_free(&a);
    remove_tmpdir();
}
END_TEST

/* A file whose group lacks lookahead_step (written before optwrap saved it) loads with
 * the counter at its default, and the next save writes it. */
START_TEST(lookahead_counter_saved_after_a_file_without_it)
{
    const char *const opts[] = {"{lr: 0.01, lookahead_k: 2}", "{lr: 0.02}"};
    fixture a;
    ow_error err;
    ow_error_clear(&err);
    make_tmpdir();
    fix_make(&a, "timm.lookahead_adamw", 3, st_ndim, st_shapes, 2, opts, 5);
    for (unsigned s = 0; s < 3; s++) {
        fix_grads(&a, 20 + s);
        ow_check_ok(ow_optimizer_step(a.opt, &err), &err);
    }
    ow_check_ok(ow_optimizer_save(a.opt, tmp("good"), &err), &err);
    unsigned char *buf;
    size_t n = read_bytes(tmp("good"), &buf);
    buf[n] = '\0'; /* read_bytes leaves room: search the header as a string */
    static const char step[] = "\\\"lookahead_step\\\": 3, ";
    char *at = strstr((char *)buf + 8, step),
         *sums = strstr((char *)buf + 8, "\"checksums\"");
    ck_assert(at && sums);
    memset(at, ' ', strlen(step)); /* group 0 without it: whitespace, still JSON */
    sums[9] = 'x';
    write_bytes(tmp("old"), buf, n);
    free(buf);
    ow_check_ok(ow_optimizer_load(a.opt, tmp("old"), &err), &err);
    ow_check_ok(ow_optimizer_save(a.opt, tmp("again"), &err), &err);
    n = read_bytes(tmp("again"), &buf);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr((char *)buf + 8, "\\\"lookahead_k\\\": 2, "
                                                  "\\\"lookahead_step\\\": 0"));
    free(buf);
    fix_free(&a);
    remove_tmpdir();
}
END_TEST

/* The layout a PyTorch user reads with safetensors: torch's keys, F32 tensors in the
 * parameter's shape, the 0-d step, the groups' hyperparameters in the metadata. */
START_TEST(file_is_torch_safetensors)
{
    const char *const opts[] = {"{lr: 0.01, weight_decay: 0.0}",
                                "{lr: 0.02, weight_decay: 0.1}"};
    fixture a;
    ow_error err;
    ow_error_clear(&err);
    make_tmpdir();
    fix_make(&a, "AdamW", 3, st_ndim, st_shapes, 2, opts, 5);
    ow_check_ok(ow_optimizer_step(a.opt, &err), &err);
    ow_check_ok(ow_optimizer_save(a.opt, tmp("s"), &err), &err);
    unsigned char *buf;
    size_t n = read_bytes(tmp("s"), &buf);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--)
        hl = hl << 8 | buf[k];
    ck_assert_uint_eq(hl % 8, 0);
    ck_assert_uint_le(8 + hl, n);
    ow_cfg *head = NULL;
    ow_check_ok(ow__cfg_parse((char *)buf + 8, (size_t)hl, "header", &head, &err), &err);
    /* indices in param_groups order: group 0 holds t0 and t2, group 1 t1 */
    const ow_cfg *t = ow__cfg_map_get(head, "state.2.exp_avg");
    ck_assert_str_eq(ow_cfg_find(t, "dtype")->v.s, "F32");
    ck_assert_int_eq(ow_cfg_find(t, "shape.0")->v.i, 40);
    ck_assert_int_eq(ow_cfg_find(t, "shape.1")->v.i, 50);
    const ow_cfg *step = ow__cfg_map_get(head, "state.0.step");
    ck_assert_str_eq(ow_cfg_find(step, "dtype")->v.s, "F32");
    ck_assert_uint_eq(ow_cfg_get_size(ow_cfg_find(step, "shape")), 0);
    ck_assert_ptr_null(ow__cfg_map_get(head, "state.0.max_exp_avg_sq")); /* amsgrad off */
    ck_assert_str_eq(ow_cfg_find(head, "__metadata__.format")->v.s,
                     "optwrap-optimizer/1");
    ck_assert_str_eq(ow_cfg_find(head, "__metadata__.optimizer")->v.s, "mmengine.AdamW");
    ck_assert_str_eq(ow_cfg_find(head, "__metadata__.param_names")->v.s,
                     "[\"t0\", \"t2\", \"t1\"]");
    ck_assert_ptr_nonnull(strstr(ow_cfg_find(head, "__metadata__.param_groups")->v.s,
                                 "\"lr\": 0.02, \"weight_decay\": 0.1"));
    ck_assert_str_eq(ow_cfg_find(head, "__metadata__.param_shapes")->v.s,
                     "[[7], [3, 20, 20], [40, 50]]");
    /* a CRC-32 of every tensor, as Python's "%08x" % zlib.crc32(bytes) writes it */
    ck_assert_ptr_nonnull(strstr(ow_cfg_find(head, "__metadata__.checksums")->v.s,
                                 "\"state.0.step\":\"aca16a6a\""));
    /* state.0.step's value: 1.0 as a little-endian float */
    int64_t b0;
    ow_cfg_get_int(ow_cfg_find(step, "data_offsets.0"), &b0, NULL);
    float one;
    memcpy(&one, buf + 8 + hl + b0, 4);
    ck_assert_float_eq(one, 1.0f);
    ow_cfg_free(head);
    free(buf);
    fix_free(&a);
    remove_tmpdir();
}
END_TEST

/* ---- refusals
 * -------------------------------------------------------------------------- */

/* Loads path into f's optimizer, expects code and message, and checks that the optimizer
 * saves exactly the same bytes as before. */
static void refused(fixture *f, const char *path, int code, const char *message)
{
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_optimizer_save(f->opt, tmp("before"), &err), &err);
    ck_assert_int_eq(ow_optimizer_load(f->opt, path, &err), code);
    ow_check_error(&err, code, NULL, 0, 0, message);
    ck_assert_str_eq(err.file, path);
    ow_error_clear(&err);
    ow_check_ok(ow_optimizer_save(f->opt, tmp("after"), &err), &err);
    unsigned char *x, *y;
    size_t nx = read_bytes(tmp("before"), &x), ny = read_bytes(tmp("after"), &y);
    ck_assert_msg(nx == ny && !memcmp(x, y, nx), "the optimizer changed after a refusal");
    free(x);
    free(y);
}

START_TEST(refuses_bad_files)
{
    const char *const opts[] = {"{lr: 0.01}", "{lr: 0.02}"};
    static const int nd2[] = {1, 2, 3};
    static const int64_t other[][3] = {{7}, {40, 51}, {3, 20, 20}};
    fixture a, sgd, shaped;
    ow_error err;
    ow_error_clear(&err);
    make_tmpdir();
    fix_make(&a, "AdamW", 3, st_ndim, st_shapes, 2, opts, 5);
    fix_make(&sgd, "SGD", 3, st_ndim, st_shapes, 2, opts, 5);
    fix_make(&shaped, "AdamW", 3, nd2, other, 2, opts, 5);
    ow_check_ok(ow_optimizer_step(a.opt, &err), &err);
    ow_check_ok(ow_optimizer_step(sgd.opt, &err), &err);
    ow_check_ok(ow_optimizer_step(shaped.opt, &err), &err);
    ow_check_ok(ow_optimizer_save(a.opt, tmp("good"), &err), &err);
    ow_check_ok(ow_optimizer_save(sgd.opt, tmp("sgd"), &err), &err);

    refused(&a, tmp("missing"), OW_ERR_IO, "cannot open: No such file or directory");
    write_bytes(tmp("empty"), "", 0);
    refused(&a, tmp("empty"), OW_ERR_STATE,
            "state file: truncated (0 bytes; a safetensors file starts with an 8-byte "
            "header length)");
    static const char junk[] = "\x0e\0\0\0\0\0\0\0{not: [json...";
    write_bytes(tmp("junk"), junk, sizeof junk - 1);
    refused(&a, tmp("junk"), OW_ERR_STATE,
            "state file: the header is not valid JSON (not a safetensors file?)");
    refused(&a, tmp("sgd"), OW_ERR_STATE,
            "state file: written by optimizer 'mmengine.SGD', not 'mmengine.AdamW'");
    refused(&shaped, tmp("good"), OW_ERR_STATE,
            "state file: parameter 't1' is [40, 50] in the file, [40, 51] in the "
            "optimizer (another model?)");
    unsigned char *buf;
    size_t n = read_bytes(tmp("good"), &buf);
    write_bytes(tmp("cut"), buf, n - 4);
    refused(&a, tmp("cut"), OW_ERR_STATE,
            "state file: 'state.2.exp_avg_sq': data offsets out of range (truncated or "
            "corrupt file)");
    write_bytes(tmp("cut-header"), buf, 100);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--)
        hl = hl << 8 | buf[k];
    char msg[200];
    snprintf(msg, sizeof msg,
             "state file: truncated or not a safetensors file (100 bytes, header length "
             "%llu)",
             (unsigned long long)hl);
    refused(&a, tmp("cut-header"), OW_ERR_STATE, msg);
    /* a step that is no count (kernels make integers of it), in a file without
     * checksums (as torch writes them) */
    {
        ow_cfg *head = NULL;
        ow_check_ok(ow__cfg_parse((char *)buf + 8, (size_t)hl, "header", &head, &err),
                    &err);
        int64_t at;
        ow_check_ok(ow_cfg_get_int(ow_cfg_find(ow__cfg_map_get(head, "state.1.step"),
                                               "data_offsets.0"),
                                   &at, &err),
                    &err);
        ow_cfg_free(head);
        unsigned char *bad = malloc(n);
        ck_assert_ptr_nonnull(bad);
        memcpy(bad, buf, n);
        char *sums = strstr((char *)bad + 8, "\"checksums\"");
        ck_assert_ptr_nonnull(sums);
        sums[9] = 'x';
        static const float steps[] = {-1.0f, 2.5f, -1.70141e38f, 1e30f, NAN, INFINITY};
        static const char *const said[] = {"-1",    "2.5", "-1.70141e+38",
                                           "1e+30", "nan", "inf"};
        for (int k = 0; k < 6; k++) {
            memcpy(bad + 8 + hl + at, &steps[k], 4);
            write_bytes(tmp("step"), bad, n);
            snprintf(msg, sizeof msg,
                     "state file: 'state.1.step' is %s, not a count (a whole number from "
                     "0 to 2^53)",
                     said[k]);
            refused(&a, tmp("step"), OW_ERR_STATE, msg);
        }
        free(bad);
    }
    /* one flipped bit in the data: the checksum names the tensor */
    buf[n - 1] ^= 0x10;
    write_bytes(tmp("flipped"), buf, n);
    refused(
        &a, tmp("flipped"), OW_ERR_STATE,
        "state file: checksum mismatch in tensor 'state.2.exp_avg_sq' (corrupt file)");
    free(buf);
    fix_free(&a);
    fix_free(&sgd);
    fix_free(&shaped);
    remove_tmpdir();
}
END_TEST

/* A state file is a new file like any other: mode 0666 less the umask (mkstemp's 0600
 * made checkpoints unreadable to the rest of a team). */
START_TEST(saved_file_mode_follows_umask)
{
    const char *const opts[] = {"{lr: 0.01}"};
    fixture a;
    ow_error err;
    ow_error_clear(&err);
    make_tmpdir();
    fix_make(&a, "AdamW", 3, st_ndim, st_shapes, 1, opts, 5);
    mode_t old = umask(022);
    int rc = ow_optimizer_save(a.opt, tmp("s"), &err);
    umask(027);
    int rc2 = ow_optimizer_save(a.opt, tmp("s2"), &err);
    umask(old);
    ow_check_ok(rc, &err);
    ow_check_ok(rc2, &err);
    struct stat st;
    ck_assert_int_eq(stat(tmp("s"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    ck_assert_int_eq(stat(tmp("s2"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    fix_free(&a);
    remove_tmpdir();
}
END_TEST

/* The optimizer as one part of a checkpoint: under a prefix, beside other parts'
 * tensors and metadata; staged, then committed or discarded. */
START_TEST(staged_part_under_prefix)
{
    const char *const opts[] = {"{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1}"};
    fixture a, b;
    ow_error err;
    ow_error_clear(&err);
    make_tmpdir();
    fix_make(&a, "timm.lamb", 3, st_ndim, st_shapes, 2, opts, 5);
    fix_make(&b, "timm.lamb", 3, st_ndim, st_shapes, 2, opts, 6);
    for (unsigned s = 0; s < 2; s++) {
        fix_grads(&a, 40 + s);
        ow_check_ok(ow_optimizer_step(a.opt, &err), &err);
    }
    ow__st_builder *bld = NULL;
    ow_check_ok(ow__st_builder_new(&bld, &err), &err);
    ow_check_ok(ow__optimizer_state_add(a.opt, bld, "optimizer.", &err), &err);
    const float other[2] = {1, 2};
    const int64_t two[] = {2};
    ow_check_ok(
        ow__st_builder_add(bld, "params.w", "F32", 1, two, other, sizeof other, &err),
        &err);
    ow_check_ok(ow__st_builder_set_meta(bld, "wrapper", "{}", &err), &err);
    void *buf = NULL;
    size_t len = 0;
    ow_check_ok(ow__st_builder_save_buffer(bld, &buf, &len, &err), &err);
    ow__st_builder_free(bld);
    ow__st_file *f = NULL;
    ow_check_ok(ow__st_file_parse(buf, len, "ckpt", &f, &err), &err);
    ck_assert_ptr_nonnull(ow__st_file_find(f, "optimizer.state.0.exp_avg"));
    ck_assert_str_eq(ow__st_file_find_meta(f, "optimizer.optimizer"), "timm.lamb");

    /* another prefix finds nothing of it */
    ow__optimizer_staged *s = NULL;
    ck_assert_int_eq(ow__optimizer_state_stage(b.opt, f, "nope.", &s, &err),
                     OW_ERR_STATE);
    ow_check_error(&err, OW_ERR_STATE, "ckpt", 0, 0,
                   "state file: metadata lacks 'nope.optimizer'");
    ck_assert_ptr_null(s);

    /* staged and discarded: nothing changes */
    ow_error_clear(&err);
    ow_check_ok(ow_optimizer_save(b.opt, tmp("before"), &err), &err);
    ow_check_ok(ow__optimizer_state_stage(b.opt, f, "optimizer.", &s, &err), &err);
    ck_assert_ptr_nonnull(ow__optimizer_staged_group(s, 1));
    ck_assert_ptr_null(ow__optimizer_staged_group(s, 2));
    ck_assert_ptr_nonnull(ow__cfg_map_get(ow__optimizer_staged_group(s, 1), "lr"));
    ck_assert_ptr_null(ow__cfg_map_get(ow__optimizer_staged_group(s, 1), "params"));
    ow__optimizer_state_discard(s);
    ow_check_ok(ow_optimizer_save(b.opt, tmp("after"), &err), &err);
    unsigned char *x, *y;
    size_t nx = read_bytes(tmp("before"), &x), ny = read_bytes(tmp("after"), &y);
    ck_assert(nx == ny && !memcmp(x, y, nx));
    free(x);
    free(y);

    /* committed: b continues exactly as a */
    ow_check_ok(ow__optimizer_state_stage(b.opt, f, "optimizer.", &s, &err), &err);
    ow__optimizer_state_commit(b.opt, s);
    fix_copy_data(&b, &a);
    for (unsigned k = 2; k < 4; k++) {
        fix_grads(&a, 40 + k);
        fix_grads(&b, 40 + k);
        ow_check_ok(ow_optimizer_step(a.opt, &err), &err);
        ow_check_ok(ow_optimizer_step(b.opt, &err), &err);
    }
    for (size_t i = 0; i < a.n; i++)
        ck_assert(!memcmp(a.data[i], b.data[i], a.numel[i] * sizeof(float)));
    ow__st_file_free(f);
    ow_free(buf);
    fix_free(&a);
    fix_free(&b);
    remove_tmpdir();
}
END_TEST

/* ---- hyperparameters
 * ------------------------------------------------------------------- */

START_TEST(set_checks_keys_and_ranges)
{
    const char *const opts[] = {"{lr: 0.01}"};
    fixture f;
    ow_error err;
    fix_make(&f, "SGD", 1, st_ndim, st_shapes, 1, opts, 5);
    ow_error_clear(&err);
    ck_assert_int_eq(ow_optimizer_set_double(f.opt, 0, "momentun", 0.9, &err),
                     OW_ERR_UNKNOWN_KEY);
    ow_check_error(
        &err, OW_ERR_UNKNOWN_KEY, NULL, 0, 0,
        "SGD: param group 0: unknown key 'momentun' (did you mean 'momentum'?)");
    ow_error_clear(&err);
    ck_assert_int_eq(ow_optimizer_set_double(f.opt, 0, "lr", -1, &err), OW_ERR_RANGE);
    ck_assert_int_eq(err.code, OW_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(err.message, "lr"));
    ow_error_clear(&err);
    ck_assert_int_eq(ow_optimizer_set_double(f.opt, 3, "lr", 1, &err), OW_ERR_MISUSE);
    ow_check_error(&err, OW_ERR_MISUSE, NULL, 0, 0,
                   "group index 3 out of range (1 groups)");
    /* a cross-key rule of torch: nothing changes when it fails */
    ow_error_clear(&err);
    ck_assert_int_eq(ow_optimizer_set_double(f.opt, 0, "nesterov", 1, &err), OW_ERR_TYPE);
    ow_cfg *yes = NULL;
    ow_check_ok(ow__cfg_parse("true", 4, "<v>", &yes, &err), &err);
    ow_error_clear(&err);
    ck_assert_int_eq(ow_optimizer_set_value(f.opt, 0, "nesterov", yes, &err),
                     OW_ERR_VALUE);
    ow_check_error(&err, OW_ERR_VALUE, NULL, 0, 0,
                   "SGD: param group 0: Nesterov momentum requires a momentum and zero "
                   "dampening");
    const ow_cfg *nest = ow__cfg_map_get(ow_optimizer_get_options(f.opt, 0), "nesterov");
    ck_assert(!nest || !nest->v.b);
    ow_cfg_free(yes);
    /* schedulers write lr between steps */
    ow_error_clear(&err);
    ow_check_ok(ow_optimizer_set_double(f.opt, 0, "lr", 0.5, &err), &err);
    double lr;
    ow_check_ok(ow_optimizer_get_double(f.opt, 0, "lr", &lr, &err), &err);
    ck_assert_double_eq(lr, 0.5);
    fix_free(&f);
}
END_TEST

/* Bad optimizer configs on disk: tests/bad/optim/<case>/{config.yaml, expected}, where
 * expected is "CODE line:column: message" for config.yaml. */
static const char *const bad_cases[] = {
    "lamb_negative_lr",          "adamw_beta_too_large",          "sgdw_unknown_key",
    "adafactor_min_dim_not_int", "sgd_nesterov_without_momentum", "adafactor_betas",
    "lookahead_k_past_2_53",
};

START_TEST(bad_configs_positioned)
{
    char dir[512], path[600], exp_path[600];
    snprintf(dir, sizeof dir, "%s/optim/%s", OW_TEST_BAD, bad_cases[_i]);
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    snprintf(exp_path, sizeof exp_path, "%s/expected", dir);
    char *expected = ow_test_slurp(exp_path);
    expected[strcspn(expected, "\n")] = '\0';
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = NULL;
    ow_model *m = NULL;
    ow_groups *groups = NULL;
    ow_optimizer *opt = NULL;
    float data[4] = {0}, grad[4] = {0};
    const int64_t shape[] = {4};
    const ow_module_info root = {.name = "", .type = "Net"};
    ow_param_info pi = {.module = "",
                        .name = "w",
                        .ndim = 1,
                        .shape = shape,
                        .requires_grad = true,
                        .data = data,
                        .grad = grad};
    ow_check_ok(ow_model_new("net", &m, &err), &err);
    ow_check_ok(ow_model_add_module(m, &root, &err), &err);
    ow_check_ok(ow_model_add_param(m, &pi, &err), &err);
    ow_check_ok(ow_cfg_load(path, &cfg, &err), &err);
    int rc = ow_groups_build(cfg, m, &groups, &err);
    if (rc == OW_OK)
        rc = ow_optimizer_new(groups, &opt, &err);
    ck_assert_int_ne(rc, OW_OK);
    char got[1024], line[1200];
    ow_error_format(&err, got, sizeof got);
    /* the file part is the absolute path: compare from "config.yaml" on */
    const char *rel = strstr(got, "config.yaml");
    snprintf(line, sizeof line, "%s %s", ow_error_code_name(rc), rel ? rel : got);
    ck_assert_str_eq(line, expected);
    ow_optimizer_free(opt);
    ow_groups_free(groups);
    ow_cfg_free(cfg);
    ow_model_free(m);
    ow_free(expected);
}
END_TEST

START_TEST(entry_without_kernels_is_unsupported)
{
    static const ow_key keys[] = {{.name = "lr", .type = OW_T_NUMBER, .def = "0.1"}, {0}};
    static const ow_entry schema_only = {.abi_version = OW_ABI_VERSION,
                                         .name = "SchemaOnly",
                                         .kind = OW_KIND_OPTIMIZER,
                                         .scope = "test",
                                         .summary = "no kernels",
                                         .keys = keys};
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow_registry_add(&schema_only, false, &err), &err);
    ow_cfg *cfg = NULL;
    ow_model *m = NULL;
    ow_groups *groups = NULL;
    ow_optimizer *opt = NULL;
    float data[2] = {0}, grad[2] = {0};
    const int64_t shape[] = {2};
    const ow_module_info root = {.name = "", .type = "Net"};
    ow_param_info pi = {.module = "",
                        .name = "w",
                        .ndim = 1,
                        .shape = shape,
                        .requires_grad = true,
                        .data = data,
                        .grad = grad};
    ow_check_ok(ow_model_new("net", &m, &err), &err);
    ow_check_ok(ow_model_add_module(m, &root, &err), &err);
    ow_check_ok(ow_model_add_param(m, &pi, &err), &err);
    ow_check_ok(ow_cfg_load_string("optim_wrapper: {optimizer: {type: test.SchemaOnly}}",
                                   NULL, &cfg, &err),
                &err);
    ow_check_ok(ow_groups_build(cfg, m, &groups, &err), &err);
    ck_assert_int_eq(ow_optimizer_new(groups, &opt, &err), OW_ERR_UNSUPPORTED);
    ow_check_error(
        &err, OW_ERR_UNSUPPORTED, NULL, 0, 0,
        "optimizer 'test.SchemaOnly' has no kernels in optwrap (only its schema)");
    ck_assert_ptr_null(opt);
    ow_groups_free(groups);
    ow_cfg_free(cfg);
    ow_model_free(m);
    ow__registry_reset();
}
END_TEST

/* ---- allocation failures
 * --------------------------------------------------------------- */

START_TEST(oom_new_step_save_load)
{
    const char *const opts[] = {"{lr: 0.01}", "{lr: 0.02, weight_decay: 0.1}"};
    fixture f;
    ow_error err;
    make_tmpdir();
    fix_make(&f, "timm.lamb", 3, st_ndim, st_shapes, 2, opts, 5);
    /* new */
    for (long k = 0;; k++) {
        ow_optimizer *opt = NULL;
        ow_error_clear(&err);
        ow__alloc_fail_after(k);
        int rc = ow_optimizer_new(f.groups, &opt, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK) {
            ow_optimizer_free(opt);
            break;
        }
        ck_assert_int_eq(rc, OW_ERR_NOMEM);
        ck_assert_ptr_null(opt);
    }
    /* the first step creates the state: a failure moves nothing */
    float before[7];
    memcpy(before, f.data[0], sizeof before);
    for (long k = 0;; k++) {
        ow_error_clear(&err);
        ow__alloc_fail_after(k);
        int rc = ow_optimizer_step(f.opt, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK)
            break;
        ck_assert_int_eq(rc, OW_ERR_NOMEM);
        ck_assert_mem_eq(f.data[0], before, sizeof before);
        ck_assert(!f.opt->t[0].has_state);
    }
    ck_assert(f.opt->t[0].has_state);
    for (long k = 0;; k++) {
        ow_error_clear(&err);
        ow__alloc_fail_after(k);
        int rc = ow_optimizer_save(f.opt, tmp("s"), &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK)
            break;
        ck_assert_int_eq(rc, OW_ERR_NOMEM);
    }
    ow_check_ok(ow_optimizer_save(f.opt, tmp("ref"), &err), &err);
    for (long k = 0;; k++) {
        ow_error_clear(&err);
        ow__alloc_fail_after(k);
        int rc = ow_optimizer_load(f.opt, tmp("s"), &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK)
            break;
        ck_assert_int_eq(rc, OW_ERR_NOMEM);
        ow_check_ok(ow_optimizer_save(f.opt, tmp("now"), &err), &err);
        unsigned char *x, *y;
        size_t nx = read_bytes(tmp("ref"), &x), ny = read_bytes(tmp("now"), &y);
        ck_assert(nx == ny && !memcmp(x, y, nx));
        free(x);
        free(y);
    }
    fix_free(&f);
    remove_tmpdir();
}
END_TEST

Suite *make_optim_state_suite(void)
{
    Suite *s = suite_create("optim_state");
    TCase *tc = tcase_create("State");
    tcase_add_loop_test(tc, hostile_scalars_refused_or_harmless, 0,
                        (int)OW__ARRAY_LEN(round_trips));
    tcase_add_loop_test(tc, save_load_continues_bit_for_bit, 0,
                        (int)OW__ARRAY_LEN(round_trips));
    tcase_add_test(tc, file_is_torch_safetensors);
    tcase_add_test(tc, lookahead_counter_saved_after_a_file_without_it);
    tcase_add_test(tc, refuses_bad_files);
    tcase_add_test(tc, saved_file_mode_follows_umask);
    tcase_add_test(tc, staged_part_under_prefix);
    suite_add_tcase(s, tc);
    tc = tcase_create("Errors");
    tcase_add_test(tc, set_checks_keys_and_ranges);
    tcase_add_loop_test(tc, bad_configs_positioned, 0, (int)OW__ARRAY_LEN(bad_cases));
    tcase_add_test(tc, entry_without_kernels_is_unsupported);
    suite_add_tcase(s, tc);
    tc = tcase_create("Limits");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, oom_new_step_save_load);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(make_optim_state_suite());
}
