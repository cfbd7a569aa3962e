/* check_safetensors.c -- the container under state files and checkpoints: round trips
 * through memory and disk, the exact refusal of every damaged or hostile file, atomic
 * saves that keep the old file, the new file's mode, and allocation failures. */
#include "testlib.h"
#include "util/safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[256];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/tests/safetensors-XXXXXX", OW_TEST_BUILDDIR);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[768];
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            if (unlink(path))
                remove_tree(path);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
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

static uint64_t header_len(const unsigned char *buf)
{
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--)
        hl = hl << 8 | buf[k];
    return hl;
}

/* ---- a sample of every kind of tensor ---------------------------------------------- */

static const float f32[6] = {1, -2, 3.5f, 0, 1e-8f, -0.0f};
static const int64_t i64[4] = {1, -1, INT64_MAX, INT64_MIN};
static const unsigned char u8[5] = {1, 2, 3, 4, 255};
static const uint16_t bf16[3] = {0x3f80, 0xbf80, 0x7fc0};
static const int64_t s23[] = {2, 3}, s4[] = {4}, s5[] = {5}, s3[] = {3}, s07[] = {0, 7};

static const struct {
    const char *name, *dtype;
    int ndim;
    size_t nbytes;
} sample_layout[] = {
    {"weights", "F32", 2, 24}, {"step", "F64", 0, 8},  {"counts", "I64", 1, 32},
    {"bytes", "U8", 1, 5},     {"half", "BF16", 1, 6}, {"empty", "F16", 2, 0},
};

static ow__st_builder *sample(ow_error *err)
{
    ow__st_builder *b = NULL;
    double step = 3;
    ow_check_ok(ow__st_builder_new(&b, err), err);
    ow_check_ok(ow__st_builder_add(b, "weights", "F32", 2, s23, f32, sizeof f32, err),
                err);
    ow_check_ok(ow__st_builder_add_copy(b, "step", "F64", 0, NULL, &step, 8, err), err);
    step = 4; /* copied: the builder keeps 3 */
    ow_check_ok(ow__st_builder_add(b, "counts", "I64", 1, s4, i64, sizeof i64, err), err);
    ow_check_ok(ow__st_builder_add(b, "bytes", "U8", 1, s5, u8, sizeof u8, err), err);
    ow_check_ok(ow__st_builder_add(b, "half", "BF16", 1, s3, bf16, sizeof bf16, err),
                err);
    ow_check_ok(ow__st_builder_add(b, "empty", "F16", 2, s07, NULL, 0, err), err);
    ow_check_ok(ow__st_builder_set_meta(b, "format", "test/1", err), err);
    ow_check_ok(
        ow__st_builder_set_meta(b, "groups", "[{\"lr\": 0.1}, {\"lr\": 1e-05}]", err),
        err);
    ow_check_ok(ow__st_builder_set_meta(b, "format", "test/2", err), err);
    return b;
}

static void check_sample(const ow__st_file *f)
{
    const void *want[] = {f32, NULL, i64, u8, bf16, NULL};
    ck_assert_uint_eq(ow__st_file_get_count(f), OW__ARRAY_LEN(sample_layout));
    for (size_t i = 0; i < OW__ARRAY_LEN(sample_layout); i++) {
        const ow__st_tensor *t = ow__st_file_get_tensor(f, i);
        ck_assert_str_eq(t->name, sample_layout[i].name);
        ck_assert_ptr_eq(ow__st_file_find(f, t->name), t);
        ck_assert_str_eq(t->dtype, sample_layout[i].dtype);
        ck_assert_int_eq(t->ndim, sample_layout[i].ndim);
        ck_assert_uint_eq(t->nbytes, sample_layout[i].nbytes);
        ck_assert_uint_eq(t->numel * t->elem_size, t->nbytes);
        unsigned char host[64];
        ow__st_copy_le(host, t->data, t->numel, t->elem_size);
        if (want[i])
            ck_assert_mem_eq(host, want[i], t->nbytes);
    }
    const ow__st_tensor *w = ow__st_file_find(f, "weights"),
                        *e = ow__st_file_find(f, "empty");
    ck_assert_int_eq(w->shape[0], 2);
    ck_assert_int_eq(w->shape[1], 3);
    ck_assert_int_eq(e->shape[0], 0);
    ck_assert_int_eq(e->shape[1], 7);
    double step;
    ow__st_copy_le(&step, ow__st_file_find(f, "step")->data, 1, 8);
    ck_assert_double_eq(step, 3);
    ck_assert_ptr_null(ow__st_file_find(f, "nope"));
    ck_assert_ptr_null(ow__st_file_get_tensor(f, 6));
    ck_assert_str_eq(ow__st_file_find_meta(f, "format"), "test/2");
    ck_assert_ptr_null(ow__st_file_find_meta(f, "nope"));
}

/* ---- round trips ------------------------------------------------------------------- */

START_TEST(round_trip_memory_and_disk)
{
    ow_error err;
    ow_error_clear(&err);
    make_tmpdir();
    ow__st_builder *b = sample(&err);
    void *buf = NULL;
    size_t len = 0;
    ow_check_ok(ow__st_builder_save_buffer(b, &buf, &len, &err), &err);
    uint64_t hl = header_len(buf);
    ck_assert_uint_eq(hl % 8, 0); /* padded with spaces: the data starts 8-aligned */
    ck_assert_uint_eq(len, 8 + hl + 24 + 8 + 32 + 5 + 6);
    ck_assert_int_eq(((char *)buf)[8], '{');
    size_t last = 8 + hl - 1; /* padding: spaces after the closing brace */
    while (((char *)buf)[last] == ' ')
        last--;
    ck_assert_int_eq(((char *)buf)[last], '}');
    ck_assert_uint_lt(8 + hl - last, 9);
    ow__st_file *f = NULL;
    ow_check_ok(ow__st_file_parse(buf, len, NULL, &f, &err), &err);
    ck_assert_str_eq(ow__st_file_get_name(f), "<buffer>");
    check_sample(f);
    ow_cfg *groups = NULL;
    ow_check_ok(ow__st_file_meta_json(f, "groups", &groups, &err), &err);
    ck_assert_uint_eq(ow_cfg_get_size(groups), 2);
    ck_assert_double_eq(ow_cfg_find(groups, "1.lr")->v.d, 1e-5);
    ow_cfg_free(groups);
    /* every tensor's CRC-32, as "%08x" % zlib.crc32(data) */
    ow_cfg *sums = NULL;
    ow_check_ok(ow__st_file_meta_json(f, "checksums", &sums, &err), &err);
    ck_assert_uint_eq(ow_cfg_get_size(sums), 7); /* the metadata's own, then 6 tensors' */
    ck_assert_str_eq(ow_cfg_get_key(sums, 0), "__metadata__");
    char want[16];
    snprintf(want, sizeof want, "%08lx",
             crc32(0, (const Bytef *)ow__st_file_find(f, "weights")->data, 24));
    ck_assert_str_eq(ow_cfg_find(sums, "weights")->v.s, want);
    ck_assert_str_eq(ow_cfg_find(sums, "empty")->v.s, "00000000");
    ow_cfg_free(sums);
    ck_assert_int_eq(ow__st_file_meta_json(f, "nope", &sums, &err), OW_ERR_STATE);
    ow_check_error(&err, OW_ERR_STATE, "<buffer>", 0, 0,
                   "state file: metadata lacks 'nope'");
    ck_assert_ptr_null(sums);
    ow__st_file_free(f);
    /* a changed character in a metadata value (lr 1e-05 -> 1e-06) is caught too */
    char *at = NULL;
    for (size_t i = 0; i + 5 <= len && !at; i++)
        if (!memcmp((char *)buf + i, "1e-05", 5))
            at = (char *)buf + i;
    ck_assert_ptr_nonnull(at);
    at[4] = '6';
    ow_error_clear(&err);
    ck_assert_int_eq(ow__st_file_parse(buf, len, NULL, &f, &err), OW_ERR_STATE);
    ow_check_error(&err, OW_ERR_STATE, "<buffer>", 0, 0,
                   "state file: checksum mismatch in the metadata (corrupt file)");
    at[4] = '5';

    /* the file holds the same bytes, and nothing else is left in its folder */
    ow_error_clear(&err);
    ow_check_ok(ow__st_builder_save(b, tmp("a.safetensors"), &err), &err);
    unsigned char *disk;
    size_t n = read_bytes(tmp("a.safetensors"), &disk);
    ck_assert_uint_eq(n, len);
    ck_assert_mem_eq(disk, buf, len);
    free(disk);
    ck_assert_int_eq(count_files(tmpdir), 1);
    ow_check_ok(ow__st_file_load(tmp("a.safetensors"), &f, &err), &err);
    ck_assert_str_eq(ow__st_file_get_name(f), tmp("a.safetensors"));
    check_sample(f);
    ow__st_file_free(f);
    /* saved again over itself: replaced */
    ow_check_ok(ow__st_builder_save(b, tmp("a.safetensors"), &err), &err);
    ck_assert_int_eq(count_files(tmpdir), 1);
    ow__st_builder_free(b);
    ow_free(buf);
    remove_tree(tmpdir);
}
END_TEST

/* A file as the safetensors library writes it: compact, no checksums. */
START_TEST(reads_files_without_checksums)
{
    static const char head[] = "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":"
                               "\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    unsigned char buf[256] = {0};
    size_t hl = sizeof head - 1;
    while (hl % 8)
        hl++;
    memset(buf + 8, ' ', hl);
    memcpy(buf + 8, head, sizeof head - 1);
    buf[0] = (unsigned char)hl;
    const float w[2] = {0.5f, -7};
    ow__st_copy_le(buf + 8 + hl, w, 2, 4);
    ow__st_file *f = NULL;
    ow_error err;
    ow_error_clear(&err);
    ow_check_ok(ow__st_file_parse(buf, 8 + hl + 8, "pt", &f, &err), &err);
    ck_assert_str_eq(ow__st_file_find_meta(f, "format"), "pt");
    const ow__st_tensor *t = ow__st_file_find(f, "w");
    float back[2];
    ow__st_copy_le(back, t->data, 2, 4);
    ck_assert_mem_eq(back, w, sizeof w);
    ow__st_file_free(f);
    /* the smallest file: no tensors, no metadata */
    static const unsigned char empty[] = {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    ow_check_ok(ow__st_file_parse(empty, sizeof empty, NULL, &f, &err), &err);
    ck_assert_uint_eq(ow__st_file_get_count(f), 0);
    ow__st_file_free(f);
}
END_TEST

START_TEST(builder_refuses_misuse)
{
    ow__st_builder *b = NULL;
    ow_error err;
    ow_error_clear(&err);
    float x[2] = {0};
    const int64_t two[] = {2};
    ow_check_ok(ow__st_builder_new(&b, &err), &err);
    ck_assert_int_eq(ow__st_builder_add(b, "x", "F32", 1, two, x, 4, &err),
                     OW_ERR_MISUSE);
    ow_check_error(&err, OW_ERR_MISUSE, NULL, 0, 0,
                   "safetensors: 'x': 4 bytes do not match its shape and dtype F32");
    ow_error_clear(&err);
    ck_assert_int_eq(ow__st_builder_add(b, "x", "F33", 1, two, x, 8, &err),
                     OW_ERR_MISUSE);
    ow_check_error(&err, OW_ERR_MISUSE, NULL, 0, 0,
                   "safetensors: 'x': unknown dtype 'F33'");
    ow_error_clear(&err);
    ck_assert_int_eq(ow__st_builder_add(b, "__metadata__", "F32", 1, two, x, 8, &err),
                     OW_ERR_MISUSE);
    ow_check_error(&err, OW_ERR_MISUSE, NULL, 0, 0,
                   "safetensors: invalid tensor name '__metadata__'");
    ow_error_clear(&err);
    ck_assert_int_eq(ow__st_builder_set_meta(b, "checksums", "{}", &err), OW_ERR_MISUSE);
    ow_check_error(&err, OW_ERR_MISUSE, NULL, 0, 0,
                   "safetensors: invalid metadata key 'checksums'");
    /* a name added twice: refused when saving, and no file appears */
    ow_error_clear(&err);
    ow_check_ok(ow__st_builder_add(b, "x", "F32", 1, two, x, 8, &err), &err);
    ow_check_ok(ow__st_builder_add(b, "y", "F32", 1, two, x, 8, &err), &err);
    ow_check_ok(ow__st_builder_add(b, "x", "F32", 1, two, x, 8, &err), &err);
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(ow__st_builder_save_buffer(b, &buf, &len, &err), OW_ERR_MISUSE);
    ow_check_error(&err, OW_ERR_MISUSE, NULL, 0, 0,
                   "safetensors: tensor 'x' added twice");
    ck_assert_ptr_null(buf);
    make_tmpdir();
    ck_assert_int_eq(ow__st_builder_save(b, tmp("dup"), &err), OW_ERR_MISUSE);
    ck_assert_int_eq(count_files(tmpdir), 0);
    remove_tree(tmpdir);
    ow__st_builder_free(b);
}
END_TEST

/* ---- damaged files ------------------------------------------------------------------
 */

/* Cut anywhere, the file is refused with what is missing. */
START_TEST(truncated_at_every_length_class)
{
    ow_error err;
    ow_error_clear(&err);
    ow__st_builder *b = sample(&err);
    unsigned char *buf = NULL;
    size_t len = 0;
    ow_check_ok(ow__st_builder_save_buffer(b, (void **)&buf, &len, &err), &err);
    ow__st_builder_free(b);
    size_t hl = (size_t)header_len(buf), hend = 8 + hl;
    const size_t cuts[] = {0,        1,    7,        8,         9,         hend / 2,
                           hend - 1, hend, hend + 1, hend + 24, hend + 31, len - 1};
    for (size_t c = 0; c < OW__ARRAY_LEN(cuts); c++) {
        size_t cut = cuts[c];
        char want[256];
        if (cut < 8) {
            snprintf(
                want, sizeof want,
                "state file: truncated (%zu bytes; a safetensors file starts with an "
                "8-byte header length)",
                cut);
        } else if (cut < hend) {
            snprintf(want, sizeof want,
                     "state file: truncated or not a safetensors file (%zu bytes, header "
                     "length %zu)",
                     cut, hl);
        } else { /* the first tensor (in header order) that ends past the cut */
            size_t end = 0, i = 0;
            while ((end += sample_layout[i].nbytes) <= cut - hend)
                i++;
            snprintf(want, sizeof want,
                     "state file: '%s': data offsets out of range (truncated or corrupt "
                     "file)",
                     sample_layout[i].name);
        }
        ow__st_file *f = NULL;
        ow_error_clear(&err);
        ck_assert_int_eq(ow__st_file_parse(buf, cut, "cut", &f, &err), OW_ERR_STATE);
        ow_check_error(&err, OW_ERR_STATE, "cut", 0, 0, want);
        ck_assert_ptr_null(f);
    }
    free(buf);
}
END_TEST

/* One flipped bit in any tensor is caught by its checksum, on disk as in memory. */
START_TEST(flipped_byte_names_the_tensor)
{
    ow_error err;
    ow_error_clear(&err);
    ow__st_builder *b = sample(&err);
    unsigned char *buf = NULL;
    size_t len = 0;
    ow_check_ok(ow__st_builder_save_buffer(b, (void **)&buf, &len, &err), &err);
    ow__st_builder_free(b);
    size_t at = 8 + (size_t)header_len(buf);
    make_tmpdir();
    for (size_t i = 0; i < OW__ARRAY_LEN(sample_layout); i++) {
        size_t nb = sample_layout[i].nbytes;
        if (!nb)
            continue;
        unsigned char *copy = malloc(len);
        memcpy(copy, buf, len);
        copy[at + nb / 2] ^= 0x04;
        char want[128];
        snprintf(want, sizeof want,
                 "state file: checksum mismatch in tensor '%s' (corrupt file)",
                 sample_layout[i].name);
        ow__st_file *f = NULL;
        ow_error_clear(&err);
        ck_assert_int_eq(ow__st_file_parse(copy, len, "flipped", &f, &err), OW_ERR_STATE);
        ow_check_error(&err, OW_ERR_STATE, "flipped", 0, 0, want);
        write_bytes(tmp("flipped"), copy, len);
        ow_error_clear(&err);
        ck_assert_int_eq(ow__st_file_load(tmp("flipped"), &f, &err), OW_ERR_STATE);
        ow_check_error(&err, OW_ERR_STATE, tmp("flipped"), 0, 0, want);
        ck_assert_ptr_null(f);
        free(copy);
        at += nb;
    }
    remove_tree(tmpdir);
    free(buf);
}
END_TEST

START_TEST(huge_header_length)
{
    unsigned char buf[16];
    memset(buf, 0xff, 8);
    memcpy(buf + 8, "{}      ", 8);
    ow__st_file *f = NULL;
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow__st_file_parse(buf, sizeof buf, "huge", &f, &err), OW_ERR_STATE);
    ow_check_error(&err, OW_ERR_STATE, "huge", 0, 0,
                   "state file: truncated or not a safetensors file (16 bytes, header "
                   "length 18446744073709551615)");
    memset(buf, 0, 8);
    buf[7] = 0x80; /* 2^63: negative as a signed length */
    ow_error_clear(&err);
    ck_assert_int_eq(ow__st_file_parse(buf, sizeof buf, "huge", &f, &err), OW_ERR_STATE);
    ow_check_error(&err, OW_ERR_STATE, "huge", 0, 0,
                   "state file: truncated or not a safetensors file (16 bytes, header "
                   "length 9223372036854775808)");
    ck_assert_ptr_null(f);
}
END_TEST

/* Headers a fuzzer (or an attacker) writes: each refused with its message, no crash. */
#define T(name, rest) "\"" name "\":{\"dtype\":\"F32\"," rest "}"
static const struct {
    const char *title, *header;
    size_t data;
    const char *message;
} hostile[] = {
    {"0-d entry without shape", "{" T("a", "\"data_offsets\":[0,4]") "}", 4,
     "'a': no shape"},
    {"negative offset", "{" T("a", "\"shape\":[1],\"data_offsets\":[-4,0]") "}", 4,
     "'a': data offsets out of range (truncated or corrupt file)"},
    {"end before begin", "{" T("a", "\"shape\":[1],\"data_offsets\":[4,0]") "}", 4,
     "'a': data offsets out of range (truncated or corrupt file)"},
    {"past the data", "{" T("a", "\"shape\":[2],\"data_offsets\":[0,8]") "}", 4,
     "'a': data offsets out of range (truncated or corrupt file)"},
    {"overlap",
     "{" T("a", "\"shape\":[2],\"data_offsets\":[0,8]") "," T(
         "b", "\"shape\":[1],\"data_offsets\":[4,8]") "}",
     8, "'a' and 'b' overlap in the data (corrupt file)"},
    {"empty tensor inside another",
     "{" T("a", "\"shape\":[2],\"data_offsets\":[0,8]") "," T(
         "b", "\"shape\":[0],\"data_offsets\":[4,4]") "}",
     8, "'a' and 'b' overlap in the data (corrupt file)"},
    {"gap",
     "{" T("a", "\"shape\":[1],\"data_offsets\":[0,4]") "," T(
         "b", "\"shape\":[1],\"data_offsets\":[8,12]") "}",
     12, "bytes 4 to 8 of the data belong to no tensor (corrupt file)"},
    {"trailing data", "{" T("a", "\"shape\":[1],\"data_offsets\":[0,4]") "}", 8,
     "8 bytes of data, the header describes 4 (truncated or corrupt file)"},
    {"data without tensors", "{}", 4,
     "4 bytes of data, the header describes 0 (truncated or corrupt file)"},
    {"header is a list", "[1, 2]", 0,
     "the header is not valid JSON (not a safetensors file?)"},
    {"header is a string", "\"x\"", 0,
     "the header is not valid JSON (not a safetensors file?)"},
    {"empty header", "", 0, "the header is not valid JSON (not a safetensors file?)"},
    {"broken JSON", "{\"a\": [", 0,
     "the header is not valid JSON (not a safetensors file?)"},
    {"YAML alias", "{\"a\": &x [1, 1], \"b\": [*x, *x]}", 0,
     "the header is not valid JSON (not a safetensors file?)"},
    {"YAML tag", "{\"a\": !!binary \"AAAA\"}", 0,
     "the header is not valid JSON (not a safetensors file?)"},
    {"control character", "{\"a\x01\": 1}", 0,
     "the header is not valid JSON (not a safetensors file?)"},
    {"duplicate tensor",
     "{" T("a", "\"shape\":[1],\"data_offsets\":[0,4]") "," T(
         "a", "\"shape\":[1],\"data_offsets\":[0,4]") "}",
     4, "the header is not valid JSON (not a safetensors file?)"},
    {"entry not a map", "{\"a\": 5}", 0,
     "'a': not a tensor entry (a map of dtype, shape and data_offsets)"},
    {"unknown key", "{" T("a", "\"shape\":[],\"data_offsets\":[0,4],\"crc\":1") "}", 4,
     "'a': unknown key 'crc'"},
    {"no dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'a': no dtype"},
    {"unknown dtype", "{\"a\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     4, "'a': unknown dtype 'Q9'"},
    {"negative size", "{" T("a", "\"shape\":[-1],\"data_offsets\":[0,4]") "}", 4,
     "'a': a shape lists sizes >= 0"},
    {"fractional size", "{" T("a", "\"shape\":[1.5],\"data_offsets\":[0,4]") "}", 4,
     "'a': a shape lists sizes >= 0"},
    {"shape against bytes", "{" T("a", "\"shape\":[3],\"data_offsets\":[0,8]") "}", 8,
     "'a': its shape and dtype F32 do not fit its 8 bytes (corrupt file)"},
    {"overflowing shape",
     "{" T("a", "\"shape\":[4611686018427387904,4611686018427387904],"
                "\"data_offsets\":[0,0]") "}",
     0, "'a': its shape and dtype F32 do not fit its 0 bytes (corrupt file)"},
    {"offset beyond int64",
     "{" T("a", "\"shape\":[0],\"data_offsets\":[0,99999999999999999999]") "}", 0,
     "'a': no data_offsets [begin, end]"},
    {"one offset", "{" T("a", "\"shape\":[0],\"data_offsets\":[0]") "}", 0,
     "'a': no data_offsets [begin, end]"},
    {"metadata not a map", "{\"__metadata__\": [1]}", 0, "'__metadata__' is not a map"},
    {"metadata not a string", "{\"__metadata__\": {\"k\": 1}}", 0,
     "metadata 'k' is not a string"},
    {"checksums not JSON", "{\"__metadata__\": {\"checksums\": \"{oops\"}}", 0,
     "metadata 'checksums' is not valid JSON"},
    {"checksums a list", "{\"__metadata__\": {\"checksums\": \"[1]\"}}", 0,
     "metadata 'checksums' is not a map of tensor names"},
    {"checksum of no tensor",
     "{\"__metadata__\": {\"checksums\": \"{\\\"b\\\": \\\"00000000\\\"}\"}}", 0,
     "a checksum names no tensor: 'b'"},
    {"checksum not hex",
     "{\"__metadata__\": {\"checksums\": \"{\\\"a\\\": \\\"2144df1g\\\"}\"}," T(
         "a", "\"shape\":[1],\"data_offsets\":[0,4]") "}",
     4, "the checksum of tensor 'a' is not 8 hex digits"},
    {"tensor without checksum",
     "{\"__metadata__\": {\"checksums\": \"{\\\"a\\\": \\\"2144DF1C\\\"}\"}," T(
         "a", "\"shape\":[1],\"data_offsets\":[0,4]") "," T("b", "\"shape\":[1],\"data_"
                                                                 "offsets\":[4,8]") "}",
     8, "tensor 'b' has no checksum"},
};
#undef T

START_TEST(hostile_headers_refused)
{
    size_t hl = strlen(hostile[_i].header), n = 8 + hl + hostile[_i].data;
    unsigned char *buf = calloc(1, n);
    for (int k = 0; k < 8; k++)
        buf[k] = (unsigned char)((uint64_t)hl >> (8 * k));
    memcpy(buf + 8, hostile[_i].header, hl);
    ow__st_file *f = NULL;
    ow_error err;
    ow_error_clear(&err);
    int rc = ow__st_file_parse(buf, n, "hostile", &f, &err);
    ck_assert_msg(rc == OW_ERR_STATE, "%s: got %d (%s)", hostile[_i].title, rc,
                  err.message);
    char want[300];
    snprintf(want, sizeof want, "state file: %s", hostile[_i].message);
    ow_check_error(&err, OW_ERR_STATE, "hostile", 0, 0, want);
    ck_assert_ptr_null(f);
    free(buf);
}
END_TEST

/* Bytes the YAML reader must never see: nesting that would recurse a million deep, and a
 * NUL inside the header. */
START_TEST(deep_nesting_and_nul_refused)
{
    size_t depth = 1000000, hl = 6 + 2 * depth;
    unsigned char *buf = malloc(8 + hl);
    for (int k = 0; k < 8; k++)
        buf[k] = (unsigned char)((uint64_t)hl >> (8 * k));
    char *h = (char *)buf + 8;
    memcpy(h, "{\"a\":", 5);
    memset(h + 5, '[', depth);
    memset(h + 5 + depth, ']', depth);
    h[hl - 1] = '}';
    ow__st_file *f = NULL;
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow__st_file_parse(buf, 8 + hl, "deep", &f, &err), OW_ERR_STATE);
    ow_check_error(&err, OW_ERR_STATE, "deep", 0, 0,
                   "state file: the header is not valid JSON (not a safetensors file?)");
    static const unsigned char nul[] = {8,   0,   0,   0,   0, 0,   0,   0,
                                        '{', '"', 'a', '"', 0, ':', '1', '}'};
    ow_error_clear(&err);
    ck_assert_int_eq(ow__st_file_parse(nul, sizeof nul, "nul", &f, &err), OW_ERR_STATE);
    ow_check_error(&err, OW_ERR_STATE, "nul", 0, 0,
                   "state file: the header is not valid JSON (not a safetensors file?)");
    free(buf);
}
END_TEST

/* ---- files ------------------------------------------------------------------------- */

START_TEST(load_refuses_what_is_not_a_file)
{
    ow__st_file *f = NULL;
    ow_error err;
    make_tmpdir();
    ck_assert_int_eq(mkfifo(tmp("fifo"), 0600), 0);
    ow_error_clear(&err);
    /* refused at once: opening must not wait for a writer */
    ck_assert_int_eq(ow__st_file_load(tmp("fifo"), &f, &err), OW_ERR_IO);
    ow_check_error(&err, OW_ERR_IO, tmp("fifo"), 0, 0, "not a regular file (a FIFO)");
    ow_error_clear(&err);
    ck_assert_int_eq(ow__st_file_load(tmpdir, &f, &err), OW_ERR_IO);
    ow_check_error(&err, OW_ERR_IO, tmpdir, 0, 0, "not a regular file (a folder)");
    ow_error_clear(&err);
    ck_assert_int_eq(ow__st_file_load("/dev/null", &f, &err), OW_ERR_IO);
    ow_check_error(&err, OW_ERR_IO, "/dev/null", 0, 0,
                   "not a regular file (a character device)");
    ow_error_clear(&err);
    ck_assert_int_eq(ow__st_file_load(tmp("missing"), &f, &err), OW_ERR_IO);
    ow_check_error(&err, OW_ERR_IO, tmp("missing"), 0, 0,
                   "cannot open: No such file or directory");
    ck_assert_ptr_null(f);
    remove_tree(tmpdir);
}
END_TEST

/* A new file gets 0666 less the umask, as any new file does (mkstemp would give 0600),
 * also when it replaces a file of another mode. */
START_TEST(saved_mode_follows_umask)
{
    ow_error err;
    ow_error_clear(&err);
    make_tmpdir();
    ow__st_builder *b = sample(&err);
    write_bytes(tmp("s"), "old", 3);
    chmod(tmp("s"), 0600);
    mode_t old = umask(022);
    int rc1 = ow__st_builder_save(b, tmp("s"), &err);
    umask(002);
    int rc2 = ow__st_builder_save(b, tmp("s2"), &err);
    umask(old);
    ow_check_ok(rc1, &err);
    ow_check_ok(rc2, &err);
    struct stat st;
    ck_assert_int_eq(stat(tmp("s"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    ck_assert_int_eq(stat(tmp("s2"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0664);
    ow__st_builder_free(b);
    remove_tree(tmpdir);
}
END_TEST

static void assert_unchanged(const char *path, const unsigned char *want, size_t n)
{
    unsigned char *now;
    size_t m = read_bytes(path, &now);
    ck_assert_msg(m == n && !memcmp(now, want, n), "%s changed after a failed save",
                  path);
    free(now);
}

/* A failed save leaves the old file as it was and no temporary behind. */
START_TEST(failed_save_keeps_old_file)
{
    ow_error err;
    ow_error_clear(&err);
    make_tmpdir();
    ow__st_builder *small = sample(&err), *big = NULL;
    static float block[16384];
    const int64_t shape[] = {16384};
    ow_check_ok(ow__st_builder_new(&big, &err), &err);
    ow_check_ok(
        ow__st_builder_add(big, "block", "F32", 1, shape, block, sizeof block, &err),
        &err);
    ow_check_ok(ow__st_builder_save(small, tmp("ckpt"), &err), &err);
    unsigned char *old;
    size_t n = read_bytes(tmp("ckpt"), &old);

    /* a folder that does not exist */
    ck_assert_int_eq(ow__st_builder_save(big, tmp("nowhere/ckpt"), &err), OW_ERR_IO);
    ow_check_error(&err, OW_ERR_IO, tmp("nowhere/ckpt"), 0, 0,
                   "cannot create a temporary file: No such file or directory");

    /* the disk fills up mid-write (a file size limit stands in for it) */
    struct rlimit lim, small_lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &lim), 0);
    small_lim = lim;
    small_lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small_lim), 0);
    ow_error_clear(&err);
    int rc = ow__st_builder_save(big, tmp("ckpt"), &err);
    setrlimit(RLIMIT_FSIZE, &lim);
    signal(SIGXFSZ, prev);
    ck_assert_int_eq(rc, OW_ERR_IO);
    ow_check_error(&err, OW_ERR_IO, tmp("ckpt"), 0, 0, "cannot write: File too large");
    assert_unchanged(tmp("ckpt"), old, n);
    ck_assert_int_eq(count_files(tmpdir), 1);

    /* the rename fails: path is a folder */
    ck_assert_int_eq(mkdir(tmp("dir"), 0700), 0);
    write_bytes(tmp("dir/inside"), "x", 1);
    ow_error_clear(&err);
    ck_assert_int_eq(ow__st_builder_save(big, tmp("dir"), &err), OW_ERR_IO);
    ck_assert_str_eq(err.file, tmp("dir"));
    ck_assert_ptr_nonnull(
        strstr(err.message, "cannot rename the temporary file over it"));
    ck_assert_int_eq(count_files(tmpdir), 2);

    /* a read-only folder (root may write there anyway) */
    if (geteuid() != 0) {
        ck_assert_int_eq(chmod(tmpdir, 0555), 0);
        ow_error_clear(&err);
        rc = ow__st_builder_save(big, tmp("ckpt"), &err);
        chmod(tmpdir, 0700);
        ck_assert_int_eq(rc, OW_ERR_IO);
        ow_check_error(&err, OW_ERR_IO, tmp("ckpt"), 0, 0,
                       "cannot create a temporary file: Permission denied");
        assert_unchanged(tmp("ckpt"), old, n);
    }
    ck_assert_int_eq(count_files(tmpdir), 2);
    free(old);
    ow__st_builder_free(small);
    ow__st_builder_free(big);
    remove_tree(tmpdir);
}
END_TEST

/* ---- allocation failures ----------------------------------------------------------- */

START_TEST(oom_build_save_parse_load)
{
    ow_error err;
    make_tmpdir();
    ow_error_clear(&err);
    ow__st_builder *ref = sample(&err);
    ow_check_ok(ow__st_builder_save(ref, tmp("ckpt"), &err), &err);
    unsigned char *old;
    size_t n = read_bytes(tmp("ckpt"), &old);
    const int64_t s23b[] = {2, 3};
    for (long k = 0;; k++) { /* build and save to memory */
        ow__st_builder *b = NULL;
        void *buf = NULL;
        size_t len = 0;
        double one = 1;
        ow_error_clear(&err);
        ow__alloc_fail_after(k);
        int rc = ow__st_builder_new(&b, &err);
        if (!rc)
            rc = ow__st_builder_add(b, "w", "F32", 2, s23b, f32, sizeof f32, &err);
        if (!rc)
            rc = ow__st_builder_add_copy(b, "one", "F64", 0, NULL, &one, 8, &err);
        if (!rc)
            rc = ow__st_builder_set_meta(b, "k", "v", &err);
        if (!rc)
            rc = ow__st_builder_save_buffer(b, &buf, &len, &err);
        ow__alloc_fail_after(-1);
        ow__st_builder_free(b);
        ow_free(buf);
        if (rc == OW_OK)
            break;
        ck_assert_int_eq(rc, OW_ERR_NOMEM);
        ck_assert_ptr_null(buf);
    }
    for (long k = 0;; k++) { /* save over the old file */
        ow_error_clear(&err);
        ow__alloc_fail_after(k);
        int rc = ow__st_builder_save(ref, tmp("ckpt"), &err);
        ow__alloc_fail_after(-1);
        ck_assert_int_eq(count_files(tmpdir), 1);
        if (rc == OW_OK)
            break;
        ck_assert_int_eq(rc, OW_ERR_NOMEM);
        assert_unchanged(tmp("ckpt"), old, n);
    }
    for (long k = 0;; k++) { /* load (and parse) */
        ow__st_file *f = NULL;
        ow_error_clear(&err);
        ow__alloc_fail_after(k);
        int rc = ow__st_file_load(tmp("ckpt"), &f, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK) {
            check_sample(f);
            ow__st_file_free(f);
            break;
        }
        ck_assert_int_eq(rc, OW_ERR_NOMEM);
        ck_assert_ptr_null(f);
    }
    free(old);
    ow__st_builder_free(ref);
    remove_tree(tmpdir);
}
END_TEST

Suite *make_safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, round_trip_memory_and_disk);
    tcase_add_test(tc, reads_files_without_checksums);
    tcase_add_test(tc, builder_refuses_misuse);
    suite_add_tcase(s, tc);
    tc = tcase_create("Errors");
    tcase_add_test(tc, truncated_at_every_length_class);
    tcase_add_test(tc, flipped_byte_names_the_tensor);
    tcase_add_test(tc, huge_header_length);
    tcase_add_loop_test(tc, hostile_headers_refused, 0, (int)OW__ARRAY_LEN(hostile));
    tcase_add_test(tc, deep_nesting_and_nul_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("Files");
    tcase_add_test(tc, load_refuses_what_is_not_a_file);
    tcase_add_test(tc, saved_mode_follows_umask);
    tcase_add_test(tc, failed_save_keeps_old_file);
    suite_add_tcase(s, tc);
    tc = tcase_create("Limits");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, oom_build_save_parse_load);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ow_test_run(make_safetensors_suite());
}
