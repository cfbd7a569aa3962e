/* check_model.c -- the model tree: building by API (walk order, full names, tied
 * tensors, lookups), every misuse with its exact message, the optwrap-model/1 files of
 * tests/golden/models (counts, round trips) and the corpus of bad files. */
#include "testlib.h"

#include "model/model_internal.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------------- */

static void add_module(ow_model *m, const char *name, const char *type,
                       ow_module_kind kind)
{
    ow_error err;
    ow_error_clear(&err);
    ow_module_info info = {.name = name, .type = type, .kind = kind};
    ow_check_ok(ow_model_add_module(m, &info, &err), &err);
}

/* shape as a list ended by -1 */
static void add_param(ow_model *m, const char *module, const char *name,
                      const int64_t *shape, bool requires_grad, const char *shared)
{
    ow_error err;
    ow_error_clear(&err);
    int ndim = 0;
    while (shape && shape[ndim] >= 0)
        ndim++;
    ow_param_info info = {.module = module,
                          .name = name,
                          .ndim = ndim,
                          .shape = shape,
                          .requires_grad = requires_grad,
                          .shared = shared};
    ow_check_ok(ow_model_add_param(m, &info, &err), &err);
}

static ow_param_view param_at(const ow_model *m, long i)
{
    ow_param_view v;
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(ow_model_get_param(m, (size_t)i, &v), OW_OK);
    return v;
}

static ow_model *load_golden(const char *file)
{
    char path[1024];
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL;
    ow_test_path(path, sizeof path, OW_TEST_GOLDEN "/models", file);
    ow_check_ok(ow_model_load(path, &m, &err), &err);
    return m;
}

/* Everything a reader of the model can see must be equal. */
static void assert_models_equal(const ow_model *a, const ow_model *b)
{
    ck_assert_str_eq(ow_model_get_name(a), ow_model_get_name(b));
    ck_assert_uint_eq(ow_model_get_num_modules(a), ow_model_get_num_modules(b));
    for (size_t i = 0; i < ow_model_get_num_modules(a); i++) {
        const ow_module_info *x = ow_model_get_module(a, i),
                             *y = ow_model_get_module(b, i);
        ck_assert_str_eq(x->name, y->name);
        ck_assert_str_eq(x->type, y->type);
        ck_assert_int_eq(x->kind, y->kind);
        ck_assert_int_eq(x->in_channels, y->in_channels);
        ck_assert_int_eq(x->out_channels, y->out_channels);
        ck_assert_int_eq(x->groups, y->groups);
    }
    ck_assert_uint_eq(ow_model_get_num_params(a), ow_model_get_num_params(b));
    for (size_t i = 0; i < ow_model_get_num_params(a); i++) {
        ow_param_view x = param_at(a, (long)i), y = param_at(b, (long)i);
        ck_assert_str_eq(x.full_name, y.full_name);
        ck_assert_str_eq(x.module, y.module);
        ck_assert_str_eq(x.name, y.name);
        ck_assert_int_eq(x.ndim, y.ndim);
        for (int d = 0; d < x.ndim; d++)
            ck_assert_int_eq(x.shape[d], y.shape[d]);
        ck_assert_int_eq(x.numel, y.numel);
        ck_assert_int_eq(x.requires_grad, y.requires_grad);
        ck_assert_uint_eq(x.tensor, y.tensor);
        ck_assert_int_eq(x.is_shared, y.is_shared);
    }
    ck_assert_uint_eq(ow_model_get_num_tensors(a), ow_model_get_num_tensors(b));
    ck_assert_int_eq(ow_model_get_numel(a), ow_model_get_numel(b));
    ck_assert(ow__cfg_equal(ow_model_get_facts(a, NULL), ow_model_get_facts(b, NULL)));
}

static const int64_t S_SCALAR[] = {-1};
static const int64_t S_VEC4[] = {4, -1};
static const int64_t S_TOKEN[] = {1, 1, 4, -1};
static const int64_t S_MAT[] = {10, 4, -1};
static const int64_t S_EMPTY[] = {0, 4, -1};

/* root("") > backbone > backbone.ln ; head ; tied head.weight */
static ow_model *small_model(void)
{
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL;
    ow_check_ok(ow_model_new("small", &m, &err), &err);
    add_module(m, "", "Net", OW_MODULE_OTHER);
    add_param(m, "", "logit_scale", S_SCALAR, true, NULL);
    add_module(m, "backbone", "Backbone", OW_MODULE_OTHER);
    add_param(m, "backbone", "cls_token", S_TOKEN, true, NULL);
    add_module(m, "backbone.embed", "Embedding", OW_MODULE_EMBEDDING);
    add_param(m, "backbone.embed", "weight", S_MAT, true, NULL);
    add_module(m, "backbone.ln", "LayerNorm", OW_MODULE_NORM);
    add_param(m, "backbone.ln", "weight", S_VEC4, false, NULL);
    add_param(m, "backbone.ln", "bias", S_VEC4, true, NULL);
    add_module(m, "head", "Linear", OW_MODULE_LINEAR);
    add_param(m, "head", "weight", NULL, true, "backbone.embed.weight");
    add_param(m, "head", "bias", S_EMPTY, true, NULL);
    return m;
}

/* ---- Core: building by API --------------------------------------------------------- */

START_TEST(build_gives_walk_order_and_full_names)
{
    ow_model *m = small_model();
    static const struct {
        const char *full, *module, *name;
        int ndim;
        int64_t numel;
        bool requires_grad, is_shared;
        size_t tensor;
    } want[] = {
        {"logit_scale", "", "logit_scale", 0, 1, true, false, 0},
        {"backbone.cls_token", "backbone", "cls_token", 3, 4, true, false, 1},
        {"backbone.embed.weight", "backbone.embed", "weight", 2, 40, true, false, 2},
        {"backbone.ln.weight", "backbone.ln", "weight", 1, 4, false, false, 3},
        {"backbone.ln.bias", "backbone.ln", "bias", 1, 4, true, false, 4},
        {"head.weight", "head", "weight", 2, 40, true, true, 2},
        {"head.bias", "head", "bias", 2, 0, true, false, 5},
    };
    ck_assert_str_eq(ow_model_get_name(m), "small");
    ck_assert_uint_eq(ow_model_get_num_modules(m), 5);
    ck_assert_uint_eq(ow_model_get_num_params(m), OW__ARRAY_LEN(want));
    for (size_t i = 0; i < OW__ARRAY_LEN(want); i++) {
        ow_param_view v = param_at(m, (long)i);
        ck_assert_str_eq(v.full_name, want[i].full);
        ck_assert_str_eq(v.module, want[i].module);
        ck_assert_str_eq(v.name, want[i].name);
        ck_assert_ptr_eq(v.module_info->name, v.module);
        ck_assert_int_eq(v.ndim, want[i].ndim);
        ck_assert_int_eq(v.numel, want[i].numel);
        ck_assert_int_eq(v.requires_grad, want[i].requires_grad);
        ck_assert_int_eq(v.is_shared, want[i].is_shared);
        ck_assert_uint_eq(v.tensor, want[i].tensor);
        ck_assert_int_eq(ow_model_find_param(m, want[i].full), (long)i);
    }
    /* the tied occurrence takes the shape of its tensor */
    ow_param_view head = param_at(m, 5);
    ck_assert_int_eq(head.shape[0], 10);
    ck_assert_int_eq(head.shape[1], 4);
    ck_assert_uint_eq(ow_model_get_num_tensors(m), 6);
    ck_assert_int_eq(ow_model_get_numel(m), 1 + 4 + 40 + 4 + 4 + 0);
    ck_assert_int_eq(ow_model_find_param(m, "head"), -1);
    ck_assert_int_eq(ow_model_find_param(m, ".logit_scale"), -1);
    ck_assert_int_eq(ow_model_find_param(NULL, "head.bias"), -1);
    const ow_module_info *ln = ow_model_get_module(m, 3);
    ck_assert_str_eq(ln->name, "backbone.ln");
    ck_assert_str_eq(ln->type, "LayerNorm");
    ck_assert_int_eq(ln->kind, OW_MODULE_NORM);
    ck_assert_ptr_null(ow_model_get_module(m, 5));
    ow_param_view v;
    ck_assert_int_eq(ow_model_get_param(m, 7, &v), OW_ERR_MISUSE);
    ow_model_free(m);
}
END_TEST

/* Params added to an earlier module after later ones still come in module order. */
START_TEST(late_params_keep_walk_order)
{
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL;
    ow_check_ok(ow_model_new(NULL, &m, &err), &err);
    ck_assert_str_eq(ow_model_get_name(m), "");
    add_module(m, "", "Net", OW_MODULE_OTHER);
    add_module(m, "a", "A", OW_MODULE_OTHER);
    add_module(m, "a.x", "X", OW_MODULE_LINEAR);
    add_module(m, "b", "B", OW_MODULE_OTHER);
    add_param(m, "b", "w", S_VEC4, true, NULL);
    add_param(m, "a.x", "w", S_MAT, true, NULL);
    add_param(m, "a", "w", S_TOKEN, true, NULL);
    add_param(m, "b", "tied", NULL, true, "a.x.w");
    add_param(m, "", "w", S_SCALAR, true, NULL);
    add_param(m, "a", "v", S_VEC4, true, NULL);
    static const char *const order[] = {"w", "a.w", "a.v", "a.x.w", "b.w", "b.tied"};
    static const size_t tensor[] = {0, 1, 2, 3, 4, 3};
    ck_assert_uint_eq(ow_model_get_num_params(m), 6);
    for (size_t i = 0; i < 6; i++) {
        ow_param_view v = param_at(m, (long)i);
        ck_assert_str_eq(v.full_name, order[i]);
        ck_assert_uint_eq(v.tensor, tensor[i]);
        ck_assert_int_eq(v.is_shared, i == 5);
        ck_assert_int_eq(ow_model_find_param(m, order[i]), (long)i);
    }
    ck_assert_uint_eq(ow_model_get_num_tensors(m), 5);
    ck_assert_int_eq(ow_model_get_numel(m), 4 + 40 + 4 + 4 + 1);
    ow_model_free(m);
}
END_TEST

START_TEST(shared_params_share_data_and_grad)
{
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = small_model();
    float w[40], g[40];
    ow_check_ok(ow_model_set_data(m, "head.weight", w, g, &err), &err);
    ck_assert_ptr_eq(param_at(m, 2).data, w);
    ck_assert_ptr_eq(param_at(m, 5).data, w);
    ck_assert_ptr_eq(param_at(m, 5).grad, g);
    ck_assert_ptr_null(param_at(m, 0).data);
    /* an occurrence may name the same pointers as its tensor, or a shared one */
    add_module(m, "head2", "Linear", OW_MODULE_LINEAR);
    ow_param_info info = {.module = "head2",
                          .name = "weight",
                          .requires_grad = true,
                          .shared = "head.weight",
                          .data = w};
    ow_check_ok(ow_model_add_param(m, &info, &err), &err);
    ow_param_view v = param_at(m, 7);
    ck_assert_uint_eq(v.tensor, 2);
    ck_assert_ptr_eq(v.grad, g);
    ck_assert_int_eq(ow_model_find_param(m, "head2.weight"), 7);
    ow_check_ok(ow_model_set_data(m, "backbone.embed.weight", NULL, NULL, &err), &err);
    ck_assert_ptr_null(param_at(m, 7).data);
    ow_model_free(m);
}
END_TEST

START_TEST(facts_are_kept_as_a_map)
{
    ow_model *m = small_model();
    ck_assert_uint_eq(ow_cfg_get_size(ow_model_get_facts(m, NULL)), 0);
    ck_assert_ptr_null(ow_model_get_facts(m, "no_weight_decay"));
    ow_cfg *list = ow__cfg_new(OW_CFG_LIST, NULL, 0, 0);
    ck_assert_int_eq(ow__cfg_list_append(list, ow__cfg_new_string("cls_token")), OW_OK);
    ck_assert_int_eq(ow__model_set_fact(m, "no_weight_decay", list), OW_OK);
    ck_assert_int_eq(ow__model_set_fact(m, "x", ow__cfg_new_int(1)), OW_OK);
    ck_assert_int_eq(ow__model_set_fact(m, "x", ow__cfg_new_int(2)), OW_OK);
    const ow_cfg *nwd = ow_model_get_facts(m, "no_weight_decay");
    ck_assert_str_eq(ow_cfg_get_item(nwd, 0)->v.s, "cls_token");
    ck_assert_int_eq(ow_model_get_facts(m, "x")->v.i, 2);
    ck_assert_uint_eq(ow_cfg_get_size(ow_model_get_facts(m, NULL)), 2);
    ck_assert_int_eq(ow__model_set_fact(NULL, "y", ow__cfg_new_int(1)), OW_ERR_MISUSE);
    ow_model_free(m);
}
END_TEST

/* 20,000 params: lookups are hashed, so this is quick; it checks every position. */
START_TEST(large_model_lookups)
{
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL;
    ow_check_ok(ow_model_new("large", &m, &err), &err);
    add_module(m, "", "Net", OW_MODULE_OTHER);
    add_module(m, "blocks", "ModuleList", OW_MODULE_OTHER);
    char name[64];
    for (int b = 0; b < 2000; b++) {
        snprintf(name, sizeof name, "blocks.%d", b);
        add_module(m, name, "Block", OW_MODULE_LINEAR);
        for (int p = 0; p < 10; p++) {
            char pname[16];
            snprintf(pname, sizeof pname, "w%d", p);
            add_param(m, name, pname, S_VEC4, true, NULL);
        }
    }
    ck_assert_uint_eq(ow_model_get_num_params(m), 20000);
    ck_assert_int_eq(ow_model_get_numel(m), 80000);
    for (int b = 0; b < 2000; b++)
        for (int p = 0; p < 10; p++) {
            snprintf(name, sizeof name, "blocks.%d.w%d", b, p);
            ck_assert_int_eq(ow_model_find_param(m, name), b * 10 + p);
        }
    ow_model_free(m);
}
END_TEST

/* ---- Errors: misuse of the API ----------------------------------------------------- */

static const struct {
    ow_module_info info;
    int code;
    ow__model_field field;
    const char *message;
} module_errors[] = {
    {{.name = "neck", .type = "Neck"}, OW_OK, OW__FIELD_NONE, NULL},
    {{.name = "backbone", .type = "Backbone"},
     OW_ERR_DUPLICATE,
     OW__FIELD_NAME,
     "module 'backbone' was already added"},
    {{.name = "", .type = "Net"},
     OW_ERR_DUPLICATE,
     OW__FIELD_NAME,
     "module '' was already added"},
    {{.name = "backbone..x", .type = "X"},
     OW_ERR_MODEL,
     OW__FIELD_NAME,
     "module 'backbone..x': a dotted name cannot have an empty part"},
    {{.name = "head.", .type = "X"},
     OW_ERR_MODEL,
     OW__FIELD_NAME,
     "module 'head.': a dotted name cannot have an empty part"},
    {{.name = ".head", .type = "X"},
     OW_ERR_MODEL,
     OW__FIELD_NAME,
     "module '.head': a dotted name cannot have an empty part"},
    {{.name = "fc", .type = "Linear", .kind = OW_MODULE_LINEAR, .groups = 1},
     OW_ERR_MODEL,
     OW__FIELD_GROUPS,
     "module 'fc': groups is for kind conv only, not linear"},
    {{.name = "conv", .type = "Conv2d", .kind = OW_MODULE_CONV, .out_channels = -8},
     OW_ERR_MODEL,
     OW__FIELD_OUT_CHANNELS,
     "module 'conv': out_channels must not be negative, got -8"},
    {{.name = "odd", .type = "Odd", .kind = (ow_module_kind)7},
     OW_ERR_MISUSE,
     OW__FIELD_KIND,
     "module 'odd': kind 7 is not an ow_module_kind"},
    {{.name = NULL, .type = "X"},
     OW_ERR_MISUSE,
     OW__FIELD_NONE,
     "ow_model_add_module: model, info, info->name and info->type must not be NULL"},
};

START_TEST(module_misuse_is_rejected)
{
    ow_model *m = small_model();
    ow_error err;
    ow_error_clear(&err);
    ow__model_field field = OW__FIELD_SHARED;
    int rc = ow__model_add_module(m, &module_errors[_i].info, &field, &err);
    ck_assert_int_eq(rc, module_errors[_i].code);
    ck_assert_int_eq(field, module_errors[_i].field);
    ck_assert_uint_eq(ow_model_get_num_modules(m), rc == OW_OK ? 6 : 5);
    if (rc != OW_OK)
        ow_check_error(&err, rc, rc == OW_ERR_MISUSE ? "" : "<model>", 0, 0,
                       module_errors[_i].message);
    ow_model_free(m);
}
END_TEST

START_TEST(parents_are_created_on_demand)
{
    /* mkdir -p: the root and "h", "h.0" come with "h.0.attn"; a later add of a parent
     * describes it in place */
    ow_error err;
    memset(&err, 0xAA, sizeof err);
    ow_model *m = NULL;
    ow_check_ok(ow_model_new("gpt2", &m, &err), &err);
    ow_module_info attn = {.name = "h.0.attn", .type = "CausalSelfAttention"};
    ow_check_ok(ow_model_add_module(m, &attn, &err), &err);
    ck_assert_uint_eq(ow_model_get_num_modules(m), 4);
    static const char *const names[] = {"", "h", "h.0", "h.0.attn"};
    for (size_t i = 0; i < 4; i++)
        ck_assert_str_eq(ow_model_get_module(m, i)->name, names[i]);
    ck_assert_str_eq(ow_model_get_module(m, 1)->type, "Module");
    ow_module_info block = {.name = "h.0", .type = "Block"};
    ow_check_ok(ow_model_add_module(m, &block, &err), &err);
    ck_assert_uint_eq(ow_model_get_num_modules(m), 4);
    ck_assert_str_eq(ow_model_get_module(m, 2)->type, "Block");
    ck_assert_int_eq(ow_model_add_module(m, &block, &err), OW_ERR_DUPLICATE);
    ow_check_error(&err, OW_ERR_DUPLICATE, "<model>", 0, 0,
                   "module 'h.0' was already added");
    /* the module of a parameter must be added (its type decides its rules) */
    const int64_t shape[] = {4};
    ow_param_info pi = {
        .module = "h.0.ln_1", .name = "weight", .ndim = 1, .shape = shape};
    ck_assert_int_eq(ow_model_add_param(m, &pi, &err), OW_ERR_MODEL);
    ck_assert_int_eq(ow_model_add_module(NULL, &attn, NULL), OW_ERR_MISUSE);
    ow_model_free(m);
    ck_assert_int_eq(ow_model_new("x", NULL, NULL), OW_ERR_MISUSE);

    /* the same in a model file: a child before its parent */
    static const char yaml[] = "format: optwrap-model/1\nname: tiny\nmodules:\n"
                               "  - {name: backbone.layers.0, type: Block}\n"
                               "  - {name: backbone.layers, type: ModuleList}\n";
    ow_check_ok(ow_model_load_string(yaml, "tiny", &m, &err), &err);
    ck_assert_uint_eq(ow_model_get_num_modules(m), 4);
    ck_assert_str_eq(ow_model_get_module(m, 2)->name, "backbone.layers");
    ck_assert_str_eq(ow_model_get_module(m, 2)->type, "ModuleList");
    ow_model_free(m);
}
END_TEST

START_TEST(kind_follows_type)
{
    ow_error err;
    ow_model *m = NULL;
    ow_check_ok(ow_model_new("net", &m, &err), &err);
    static const struct {
        const char *type;
        ow_module_kind given, want;
    } rows[] = {
        {"LayerNorm", OW_MODULE_OTHER, OW_MODULE_NORM},
        {"GroupNorm", OW_MODULE_OTHER, OW_MODULE_NORM},
        {"BatchNorm2d", OW_MODULE_OTHER, OW_MODULE_NORM},
        {"SyncBatchNorm", OW_MODULE_OTHER, OW_MODULE_NORM},
        {"InstanceNorm3d", OW_MODULE_OTHER, OW_MODULE_NORM},
        {"nn.Conv2d", OW_MODULE_OTHER, OW_MODULE_CONV},
        {"ConvTranspose1d", OW_MODULE_OTHER, OW_MODULE_CONV},
        {"Linear", OW_MODULE_OTHER, OW_MODULE_LINEAR},
        {"torch.nn.Embedding", OW_MODULE_OTHER, OW_MODULE_EMBEDDING},
        {"LayerNorm2d", OW_MODULE_OTHER, OW_MODULE_OTHER},
        {"LayerNorm2d", OW_MODULE_NORM, OW_MODULE_NORM},
        {"LayerNorm", OW_MODULE_LINEAR, OW_MODULE_LINEAR}, /* kept, with a warning */
    };
    for (size_t i = 0; i < OW__ARRAY_LEN(rows); i++) {
        char name[16];
        snprintf(name, sizeof name, "m%zu", i);
        ow_module_info mi = {.name = name, .type = rows[i].type, .kind = rows[i].given};
        ow_check_ok(ow_model_add_module(m, &mi, &err), &err);
        ck_assert_int_eq(ow_model_get_module(m, i + 1)->kind, rows[i].want);
    }
    ck_assert_uint_eq(ow_model_get_num_warnings(m), 1);
    const ow_error *w = ow_model_get_warning(m, 0);
    ck_assert_ptr_null(ow_model_get_warning(m, 1));
    ow_check_error(w, OW_ERR_MODEL, "<model>", 0, 0,
                   "module 'm11': type LayerNorm is a torch norm module, but its kind is "
                   "linear (mmengine's constructors test the class: kind norm)");
    ow_model_free(m);
}
END_TEST

START_TEST(set_data_by_index)
{
    ow_error err;
    ow_model *m = NULL;
    const int64_t shape[] = {3};
    ow_check_ok(ow_model_new("net", &m, &err), &err);
    ow_module_info fc = {.name = "fc", .type = "Linear"};
    ow_param_info w = {.module = "fc",
                       .name = "weight",
                       .ndim = 1,
                       .shape = shape,
                       .requires_grad = true};
    ow_param_info b = {
        .module = "fc", .name = "bias", .ndim = 1, .shape = shape, .requires_grad = true};
    ow_check_ok(ow_model_add_module(m, &fc, &err), &err);
    ow_check_ok(ow_model_add_param(m, &w, &err), &err);
    ow_check_ok(ow_model_add_param(m, &b, &err), &err);
    float buf[12];
    ow_check_ok(ow_model_set_data_at(m, 1, buf, buf + 3, &err), &err);
    ow_param_view pv;
    ck_assert_int_eq(ow_model_get_param(m, 1, &pv), OW_OK);
    ck_assert_ptr_eq(pv.data, buf);
    ck_assert_ptr_eq(pv.grad, buf + 3);
    ck_assert_int_eq(ow_model_set_data_at(m, 2, buf, buf + 3, &err), OW_ERR_MISUSE);
    ow_check_error(&err, OW_ERR_MISUSE, "", 0, 0,
                   "ow_model_set_data_at: parameter index 2 is out of range (the model "
                   "has 2)");
    ck_assert_int_eq(ow_model_set_data_at(m, 0, buf, buf + 2, &err), OW_ERR_MODEL);
    ow_check_error(&err, OW_ERR_MODEL, "<model>", 0, 0,
                   "ow_model_set_data_at: param 'fc.weight': the data and grad buffers "
                   "overlap");
    ck_assert_int_eq(ow_model_set_data_at(NULL, 0, NULL, NULL, NULL), OW_ERR_MISUSE);
    ow_model_free(m);
}
END_TEST

static const int64_t S_BAD_NEG[] = {3, -2};
static const int64_t S_HUGE[] = {INT64_MAX, 2};
static const int64_t S_MAT_T[] = {4, 10};
static float some_data[4];

static const struct {
    ow_param_info info;
    int code;
    ow__model_field field;
    const char *message;
} param_errors[] = {
    {{.module = "head", .name = "extra", .requires_grad = true},
     OW_OK,
     OW__FIELD_NONE,
     NULL},
    {{.module = "neck", .name = "weight"},
     OW_ERR_MODEL,
     OW__FIELD_MODULE,
     "param 'neck.weight': module 'neck' was not added"},
    {{.module = "head", .name = ""},
     OW_ERR_MODEL,
     OW__FIELD_NAME,
     "module 'head': a param needs a non-empty name"},
    {{.module = "", .name = "head.scale"},
     OW_ERR_MODEL,
     OW__FIELD_NAME,
     "param 'head.scale': a param name cannot contain '.'"},
    {{.module = "backbone.ln", .name = "bias"},
     OW_ERR_DUPLICATE,
     OW__FIELD_NAME,
     "param 'backbone.ln.bias' was already added"},
    {{.module = "", .name = "logit_scale"},
     OW_ERR_DUPLICATE,
     OW__FIELD_NAME,
     "param 'logit_scale' was already added"},
    {{.module = "head", .name = "w", .ndim = 9, .shape = S_MAT},
     OW_ERR_MODEL,
     OW__FIELD_SHAPE,
     "param 'head.w': ndim must be between 0 and 8, got 9"},
    {{.module = "head", .name = "w", .ndim = -1},
     OW_ERR_MODEL,
     OW__FIELD_SHAPE,
     "param 'head.w': ndim must be between 0 and 8, got -1"},
    {{.module = "head", .name = "w", .ndim = 2},
     OW_ERR_MISUSE,
     OW__FIELD_SHAPE,
     "param 'head.w': shape is NULL but ndim is 2"},
    {{.module = "head", .name = "w", .ndim = 2, .shape = S_BAD_NEG},
     OW_ERR_MODEL,
     OW__FIELD_SHAPE,
     "param 'head.w': shape [3, -2] has a negative extent"},
    {{.module = "head", .name = "w", .ndim = 2, .shape = S_HUGE},
     OW_ERR_MODEL,
     OW__FIELD_SHAPE,
     "param 'head.w': shape [9223372036854775807, 2] has too many elements"},
    {{.module = "head", .name = "w", .shared = "backbone.embed.weights"},
     OW_ERR_MODEL,
     OW__FIELD_SHARED,
     "param 'head.w': shared 'backbone.embed.weights' is not an earlier parameter"},
    {{.module = "backbone", .name = "w", .requires_grad = true, .shared = "head.bias"},
     OW_ERR_MODEL,
     OW__FIELD_SHARED,
     "param 'backbone.w': shared 'head.bias' comes after it in walk order"},
    {{.module = "head",
      .name = "w",
      .ndim = 2,
      .shape = S_MAT_T,
      .requires_grad = true,
      .shared = "backbone.embed.weight"},
     OW_ERR_MODEL,
     OW__FIELD_SHAPE,
     "param 'head.w': shape [4, 10] differs from [10, 4] of shared "
     "'backbone.embed.weight'"},
    {{.module = "head",
      .name = "w",
      .requires_grad = true,
      .shared = "backbone.ln.weight"},
     OW_ERR_MODEL,
     OW__FIELD_REQUIRES_GRAD,
     "param 'head.w': requires_grad is true but shared 'backbone.ln.weight' (the same "
     "tensor) has false"},
    {{.module = "head",
      .name = "w",
      .requires_grad = true,
      .shared = "head.weight",
      .data = some_data},
     OW_ERR_MODEL,
     OW__FIELD_DATA,
     "param 'head.w': data and grad come from shared 'head.weight'; pass NULL"},
    {{.module = NULL, .name = "w"},
     OW_ERR_MISUSE,
     OW__FIELD_NONE,
     "ow_model_add_param: model, info, info->module and info->name must not be NULL"},
};

START_TEST(param_misuse_is_rejected)
{
    ow_model *m = small_model();
    ow_error err;
    ow_error_clear(&err);
    ow__model_field field = OW__FIELD_TYPE;
    int rc = ow__model_add_param(m, &param_errors[_i].info, &field, &err);
    ck_assert_int_eq(rc, param_errors[_i].code);
    ck_assert_int_eq(field, param_errors[_i].field);
    ck_assert_uint_eq(ow_model_get_num_params(m), rc == OW_OK ? 8 : 7);
    ck_assert_uint_eq(ow_model_get_num_tensors(m), rc == OW_OK ? 7 : 6);
    if (rc != OW_OK)
        ow_check_error(&err, rc, rc == OW_ERR_MISUSE ? "" : "<model>", 0, 0,
                       param_errors[_i].message);
    ow_model_free(m);
}
END_TEST

START_TEST(set_data_and_readers_check_arguments)
{
    ow_model *m = small_model();
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow_model_set_data(m, "head.weights", NULL, NULL, &err),
                     OW_ERR_MODEL);
    ow_check_error(&err, OW_ERR_MODEL, "<model>", 0, 0,
                   "param 'head.weights' was not added");
    ck_assert_int_eq(ow_model_set_data(NULL, "head.weight", NULL, NULL, NULL),
                     OW_ERR_MISUSE);
    ck_assert_ptr_null(ow_model_get_name(NULL));
    ck_assert_uint_eq(ow_model_get_num_modules(NULL), 0);
    ck_assert_uint_eq(ow_model_get_num_params(NULL), 0);
    ck_assert_uint_eq(ow_model_get_num_tensors(NULL), 0);
    ck_assert_int_eq(ow_model_get_numel(NULL), 0);
    ck_assert_ptr_null(ow_model_get_facts(NULL, "x"));
    ck_assert_int_eq(ow_model_get_param(m, 0, NULL), OW_ERR_MISUSE);
    ow_model_free(NULL);
    ow_model_free(m);
}
END_TEST

/* An add that runs out of memory at any point leaves the model as it was. */
START_TEST(add_survives_every_allocation_failure)
{
    for (long n = 0;; n++) {
        ow_model *m = small_model();
        ow_error err;
        ow_error_clear(&err);
        ow_module_info mi = {.name = "neck", .type = "Neck", .kind = OW_MODULE_NORM};
        ow_param_info pi = {.module = "backbone",
                            .name = "pos",
                            .ndim = 1,
                            .shape = S_VEC4,
                            .requires_grad = true};
        ow__alloc_fail_after(n);
        int rc = ow_model_add_module(m, &mi, &err);
        if (rc == OW_OK)
            rc = ow_model_add_param(m, &pi, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK) {
            ck_assert_int_eq(ow_model_find_param(m, "backbone.pos"), 2);
            ck_assert_int_eq(ow_model_find_param(m, "head.bias"), 7);
            ow_model_free(m);
            break;
        }
        ow_check_error(&err, OW_ERR_NOMEM, NULL, 0, 0, "out of memory");
        ck_assert_uint_eq(ow_model_get_num_params(m), 7);
        ck_assert_int_eq(ow_model_find_param(m, "backbone.pos"), -1);
        ck_assert_int_eq(ow_model_find_param(m, "head.bias"), 6);
        ck_assert_uint_eq(ow_model_get_num_tensors(m), 6);
        ow_model_free(m);
    }
}
END_TEST

/* ---- Files: the golden model trees ------------------------------------------------- */

static const struct {
    const char *file, *root_type;
    size_t modules, params, tensors, frozen, conv;
    int64_t numel;
} golden_models[] = {
    /* counts from golden/README.md; element counts are the published sizes */
    {"mmpretrain_vit-base-p16.yaml", "ImageClassifier", 242, 152, 152, 0, 1, 86567656},
    {"mmpretrain_convnext-tiny.yaml", "ImageClassifier", 151, 182, 182, 0, 22, 28589128},
    {"mmpretrain_resnet50.yaml", "ImageClassifier", 172, 161, 161, 0, 53, 25557032},
    {"mmpretrain_mobilenet-v2.yaml", "ImageClassifier", 240, 158, 158, 0, 52, 3504872},
    {"timm_vit_base_patch16_224.yaml", "VisionTransformer", 276, 152, 152, 0, 1,
     86567656},
    {"timm_resnet50.yaml", "ResNet", 217, 161, 161, 0, 53, 25557032},
    {"torch_tied-tiny.yaml", "TiedNet", 22, 33, 32, 1, 9, 11461},
};

START_TEST(golden_models_load_with_reference_counts)
{
    ow_model *m = load_golden(golden_models[_i].file);
    char name[128];
    snprintf(name, sizeof name, "%s", golden_models[_i].file);
    *strrchr(name, '.') = '\0';
    ck_assert_str_eq(ow_model_get_name(m), name);
    ck_assert_uint_eq(ow_model_get_num_modules(m), golden_models[_i].modules);
    ck_assert_uint_eq(ow_model_get_num_params(m), golden_models[_i].params);
    ck_assert_uint_eq(ow_model_get_num_tensors(m), golden_models[_i].tensors);
    ck_assert_int_eq(ow_model_get_numel(m), golden_models[_i].numel);
    ck_assert_str_eq(ow_model_get_module(m, 0)->name, "");
    ck_assert_str_eq(ow_model_get_module(m, 0)->type, golden_models[_i].root_type);
    size_t frozen = 0, conv = 0;
    for (size_t i = 0; i < ow_model_get_num_params(m); i++)
        frozen += !param_at(m, (long)i).requires_grad;
    for (size_t i = 0; i < ow_model_get_num_modules(m); i++)
        conv += ow_model_get_module(m, i)->kind == OW_MODULE_CONV;
    ck_assert_uint_eq(frozen, golden_models[_i].frozen);
    ck_assert_uint_eq(conv, golden_models[_i].conv);
    ow_model_free(m);
}
END_TEST

/* One allocation for every tensor, laid out in walk order; shared ones skipped. */
START_TEST(set_buffers_walk_order)
{
    ow_model *m = load_golden("torch_tied-tiny.yaml");
    size_t n = (size_t)ow_model_get_numel(m);
    float *data = calloc(n, sizeof *data), *grad = calloc(n, sizeof *grad);
    ow_error err;
    ow_error_clear(&err);
    ck_assert_int_eq(ow_model_set_buffers(m, data, grad, n - 1, &err), OW_ERR_MODEL);
    ow_check_error(&err, OW_ERR_MODEL, "<model>", 0, 0,
                   "ow_model_set_buffers: the buffers hold 11460 floats, the model's "
                   "distinct tensors 11461");
    ow_error_clear(&err);
    ck_assert_int_eq(ow_model_set_buffers(m, data, data + 1, n, &err), OW_ERR_MODEL);
    ow_check_error(&err, OW_ERR_MODEL, "<model>", 0, 0,
                   "ow_model_set_buffers: the data and grad buffers overlap");
    ow_error_clear(&err);
    ow_check_ok(ow_model_set_buffers(m, data, grad, n, &err), &err);
    size_t off = 0;
    for (size_t i = 0; i < ow_model_get_num_params(m); i++) {
        ow_param_view pv = param_at(m, (long)i);
        if (pv.is_shared) {
            ow_param_view first =
                param_at(m, ow_model_find_param(m, "backbone.embed.weight"));
            ck_assert_ptr_eq(pv.data, first.data);
            continue;
        }
        ck_assert_ptr_eq(pv.data, data + off);
        ck_assert_ptr_eq(pv.grad, grad + off);
        off += (size_t)pv.numel;
    }
    ck_assert_uint_eq(off, n);
    free(data);
    free(grad);
    ow_model_free(m);
}
END_TEST

START_TEST(tied_tiny_details)
{
    ow_model *m = load_golden("torch_tied-tiny.yaml");
    ow_param_view logit = param_at(m, ow_model_find_param(m, "logit_scale"));
    ck_assert_int_eq(logit.ndim, 0);
    ck_assert_int_eq(logit.numel, 1);
    ck_assert_str_eq(logit.module, "");
    ck_assert_int_eq(ow_model_find_param(m, "logit_scale"), 0);
    ow_param_view frozen = param_at(m, ow_model_find_param(m, "backbone.frozen.weight"));
    ck_assert(!frozen.requires_grad);
    ck_assert_str_eq(frozen.module_info->type, "Linear");
    ck_assert_int_eq(frozen.module_info->kind, OW_MODULE_LINEAR);
    ck_assert_int_eq(ow_model_find_param(m, "head.weight"), 31);
    ow_param_view head = param_at(m, 31), embed = param_at(m, 2);
    ck_assert_str_eq(embed.full_name, "backbone.embed.weight");
    ck_assert(head.is_shared && !embed.is_shared);
    ck_assert_uint_eq(head.tensor, embed.tensor);
    ck_assert_int_eq(head.shape[0], 100);
    ck_assert_int_eq(head.shape[1], 32);
    ck_assert_uint_eq(param_at(m, 32).tensor, 31);
    ow_param_view dw = param_at(m, ow_model_find_param(m, "backbone.dw_mult.weight"));
    ck_assert_int_eq(dw.module_info->in_channels, 32);
    ck_assert_int_eq(dw.module_info->out_channels, 64);
    ck_assert_int_eq(dw.module_info->groups, 32);
    ck_assert_str_eq(
        param_at(m, ow_model_find_param(m, "backbone.norm.weight")).module_info->type,
        "MyLayerNorm");
    ck_assert_uint_eq(ow_cfg_get_size(ow_model_get_facts(m, NULL)), 0);
    ow_model_free(m);
}
END_TEST

/* save(load(f)) is f itself, less its leading comment line. */
START_TEST(golden_models_save_back_verbatim)
{
    char path[1024];
    ow_test_path(path, sizeof path, OW_TEST_GOLDEN "/models", golden_models[_i].file);
    char *text = ow_test_slurp(path);
    const char *body = text;
    while (*body == '#')
        body = strchr(body, '\n') + 1;
    ow_model *m = load_golden(golden_models[_i].file), *again = NULL;
    ow_error err;
    ow_error_clear(&err);
    char *saved = NULL;
    ow_check_ok(ow_model_save(m, &saved, &err), &err);
    ck_assert_str_eq(saved, body);
    ow_check_ok(ow_model_load_string(saved, "saved.yaml", &again, &err), &err);
    assert_models_equal(m, again);
    ow_free(saved);
    ow_free(text);
    ow_model_free(again);
    ow_model_free(m);
}
END_TEST

static const char facts_model[] =
    "format: optwrap-model/1\n"
    "name: \"vit: tiny\"\n"
    "no_weight_decay: [cls_token, pos_embed, 'blocks.*.gamma', 'yes']\n"
    "group_matcher:\n"
    "  stem: '^cls_token|reg_token|pos_embed|patch_embed'\n"
    "  blocks:\n"
    "    - ['^blocks\\.(\\d+)', null]\n"
    "    - ['^norm', [99999]]\n"
    "extra: {a: 1.5, b: -.inf, c: 1e+16, d: 1e-05, e: true, f: \"tab\\tquote\\\"\", g: "
    "''}\n"
    "modules:\n"
    "  - name: ''\n"
    "    type: VisionTransformer\n"
    "    params:\n"
    "      - {name: cls_token, shape: [1, 1, 8]}\n"
    "  - name: '0'\n"
    "    type: Linear\n"
    "    kind: linear\n"
    "    params:\n"
    "      - {name: weight, shape: [8, 8], requires_grad: false}\n"
    "      - {name: tied, shared: 0.weight}\n"
    "  - name: '0.conv'\n"
    "    type: Conv2d\n"
    "    kind: conv\n"
    "    params: []\n";

START_TEST(facts_and_odd_names_round_trip)
{
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL, *again = NULL;
    ow_check_ok(ow_model_load_string(facts_model, "facts.yaml", &m, &err), &err);
    ck_assert_str_eq(ow_model_get_name(m), "vit: tiny");
    const ow_cfg *nwd = ow_model_get_facts(m, "no_weight_decay");
    ck_assert_uint_eq(ow_cfg_get_size(nwd), 4);
    ck_assert_str_eq(ow_cfg_get_item(nwd, 2)->v.s, "blocks.*.gamma");
    ck_assert_str_eq(ow_cfg_get_file(nwd), "facts.yaml");
    ck_assert_int_eq(ow_cfg_get_line(nwd), 3);
    const ow_cfg *re = ow_cfg_find(ow_model_get_facts(m, "group_matcher"), "blocks.0.0");
    ck_assert_str_eq(re->v.s, "^blocks\\.(\\d+)");
    ck_assert_ptr_null(ow_model_get_facts(m, "modules"));
    ck_assert_ptr_null(ow_model_get_facts(m, "format"));
    /* the tied occurrence took requires_grad and shape from its tensor */
    ow_param_view tied = param_at(m, 2);
    ck_assert_str_eq(tied.full_name, "0.tied");
    ck_assert(tied.is_shared && !tied.requires_grad);
    ck_assert_int_eq(tied.ndim, 2);
    ck_assert_int_eq(ow_model_get_module(m, 2)->groups, 0);

    char *saved = NULL, *saved2 = NULL;
    ow_check_ok(ow_model_save(m, &saved, &err), &err);
    ow_check_ok(ow_model_load_string(saved, "saved.yaml", &again, &err), &err);
    assert_models_equal(m, again);
    ow_check_ok(ow_model_save(again, &saved2, &err), &err);
    ck_assert_str_eq(saved, saved2);
    ck_assert_str_eq(
        saved, "format: optwrap-model/1\n"
               "name: \"vit: tiny\"\n"
               "no_weight_decay: [cls_token, pos_embed, \"blocks.*.gamma\", \"yes\"]\n"
               "group_matcher: {stem: \"^cls_token|reg_token|pos_embed|patch_embed\", "
               "blocks: [[\"^blocks\\\\.(\\\\d+)\", null], [\"^norm\", [99999]]]}\n"
               "extra: {a: 1.5, b: -.inf, c: 1e+16, d: 1e-05, e: true, "
               "f: \"tab\\tquote\\\"\", g: \"\"}\n"
               "modules:\n"
               "  - name: \"\"\n"
               "    type: VisionTransformer\n"
               "    params:\n"
               "      - {name: cls_token, shape: [1, 1, 8]}\n"
               "  - name: \"0\"\n"
               "    type: Linear\n"
               "    kind: linear\n"
               "    params:\n"
               "      - {name: weight, shape: [8, 8], requires_grad: false}\n"
               "      - {name: tied, shape: [8, 8], requires_grad: false, "
               "shared: \"0.weight\"}\n"
               "  - name: \"0.conv\"\n"
               "    type: Conv2d\n"
               "    kind: conv\n"
               "    in_channels: 0\n"
               "    out_channels: 0\n"
               "    groups: 0\n");
    ow_free(saved);
    ow_free(saved2);
    ow_model_free(again);
    ow_model_free(m);
}
END_TEST

/* NaN never equals itself, so it is checked on the text alone. */
START_TEST(nan_fact_saves_as_yaml_nan)
{
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL, *again = NULL;
    ow_check_ok(ow_model_load_string("format: optwrap-model/1\nname: n\nx: [.nan, .inf]\n"
                                     "modules: []\n",
                                     NULL, &m, &err),
                &err);
    char *saved = NULL, *saved2 = NULL;
    ow_check_ok(ow_model_save(m, &saved, &err), &err);
    /* a lone n is a bool to PyYAML, so it is quoted */
    ck_assert_str_eq(
        saved, "format: optwrap-model/1\nname: \"n\"\nx: [.nan, .inf]\nmodules: []\n");
    ow_check_ok(ow_model_load_string(saved, NULL, &again, &err), &err);
    ow_check_ok(ow_model_save(again, &saved2, &err), &err);
    ck_assert_str_eq(saved, saved2);
    ow_free(saved);
    ow_free(saved2);
    ow_model_free(again);
    ow_model_free(m);
}
END_TEST

START_TEST(empty_model_round_trips)
{
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL, *again = NULL;
    ow_check_ok(ow_model_new("", &m, &err), &err);
    char *saved = NULL;
    ow_check_ok(ow_model_save(m, &saved, &err), &err);
    ck_assert_str_eq(saved, "format: optwrap-model/1\nname: \"\"\nmodules: []\n");
    ow_check_ok(ow_model_load_string(saved, NULL, &again, &err), &err);
    assert_models_equal(m, again);
    ow_free(saved);
    ow_model_free(again);
    ow_model_free(m);
    ck_assert_int_eq(ow_model_save(NULL, &saved, &err), OW_ERR_MISUSE);
}
END_TEST

START_TEST(load_reports_io_and_syntax_errors)
{
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = (ow_model *)&err;
    ck_assert_int_eq(ow_model_load("/nonexistent/model.yaml", &m, &err), OW_ERR_IO);
    ck_assert_ptr_null(m);
    ow_check_error(&err, OW_ERR_IO, "/nonexistent/model.yaml", 0, 0,
                   "cannot open: No such file or directory");
    ow_error_clear(&err);
    ck_assert_int_eq(ow_model_load_string("format: [", NULL, &m, &err), OW_ERR_SYNTAX);
    ck_assert_str_eq(err.file, "<string>");
    ck_assert_int_eq(ow_model_load_string(NULL, NULL, &m, NULL), OW_ERR_MISUSE);
    ck_assert_int_eq(ow_model_load(NULL, &m, NULL), OW_ERR_MISUSE);
}
END_TEST

/* ---- Bad files: tests/bad/model/<case>/{model.yaml, expected} ---------------------- */

static const struct {
    const char *name;
    int code;
} bad_cases[] = {
    {"alias_bomb", OW_ERR_SYNTAX},
    {"bad_kind", OW_ERR_VALUE},
    {"conv_attr_negative", OW_ERR_MODEL},
    {"conv_attr_not_int", OW_ERR_TYPE},
    {"conv_attr_on_linear", OW_ERR_MODEL},
    {"duplicate_module", OW_ERR_DUPLICATE},
    {"duplicate_param", OW_ERR_DUPLICATE},
    {"duplicate_yaml_key", OW_ERR_DUPLICATE},
    {"format_missing", OW_ERR_MODEL},
    {"format_wrong", OW_ERR_MODEL},
    {"module_missing_type", OW_ERR_MISSING_KEY},
    {"module_name_not_string", OW_ERR_TYPE},
    {"module_not_map", OW_ERR_TYPE},
    {"module_unknown_key", OW_ERR_UNKNOWN_KEY},
    {"modules_missing", OW_ERR_MISSING_KEY},
    {"modules_not_list", OW_ERR_TYPE},
    {"param_missing_shape", OW_ERR_MISSING_KEY},
    {"param_name_dotted", OW_ERR_MODEL},
    {"param_not_map", OW_ERR_TYPE},
    {"param_unknown_key", OW_ERR_UNKNOWN_KEY},
    {"params_not_list", OW_ERR_TYPE},
    {"requires_grad_not_bool", OW_ERR_TYPE},
    {"root_not_map", OW_ERR_TYPE},
    {"shape_float_extent", OW_ERR_TYPE},
    {"shape_negative_extent", OW_ERR_MODEL},
    {"shape_not_list", OW_ERR_TYPE},
    {"shape_too_many_dims", OW_ERR_MODEL},
    {"shared_later", OW_ERR_MODEL},
    {"shared_requires_grad_conflict", OW_ERR_MODEL},
    {"shared_shape_mismatch", OW_ERR_MODEL},
    {"shared_unknown", OW_ERR_MODEL},
    {"yaml_syntax", OW_ERR_SYNTAX},
};

START_TEST(bad_files_fail_at_their_position)
{
    char dir[1024], path[1100];
    ow_test_path(dir, sizeof dir, OW_TEST_BAD "/model", bad_cases[_i].name);
    snprintf(path, sizeof path, "%s/expected", dir);
    char *expected = ow_test_slurp(path);
    expected[strcspn(expected, "\n")] = '\0';
    snprintf(path, sizeof path, "%s/model.yaml", dir);
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL;
    ck_assert_int_eq(ow_model_load(path, &m, &err), bad_cases[_i].code);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(err.code, bad_cases[_i].code);
    ck_assert_str_eq(err.file, path);
    ck_assert_int_gt(err.line, 0);
    /* the expected line names the file relative to its case folder */
    char got[1024];
    snprintf(got, sizeof got, "model.yaml:%d:%d: %s", err.line, err.column, err.message);
    ck_assert_str_eq(got, expected);
    /* the same text from memory fails the same way under its display name */
    char *text = ow_test_slurp(path);
    ow_error err2;
    ow_error_clear(&err2);
    ck_assert_int_eq(ow_model_load_string(text, "model.yaml", &m, &err2), err.code);
    ow_check_error(&err2, err.code, "model.yaml", err.line, err.column, err.message);
    ow_free(text);
    ow_free(expected);
}
END_TEST

START_TEST(every_bad_case_is_listed)
{
    DIR *d = opendir(OW_TEST_BAD "/model");
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        bool listed = false;
        for (size_t i = 0; i < OW__ARRAY_LEN(bad_cases); i++)
            listed |= strcmp(bad_cases[i].name, e->d_name) == 0;
        ck_assert_msg(listed, "tests/bad/model/%s is not in bad_cases", e->d_name);
        n++;
    }
    closedir(d);
    ck_assert_uint_eq(n, OW__ARRAY_LEN(bad_cases));
}
END_TEST

/* ---- Hostile inputs: big, deep and special files ---------------------------------- */

/* A model file of n one-parameter modules, the modules before or after the header. */
static char *many_modules(size_t n, bool header_first)
{
    size_t cap = n * 80 + 256, o = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    const char *header = "format: optwrap-model/1\nname: many\n";
    if (header_first)
        o += (size_t)snprintf(text + o, cap - o, "%s", header);
    o += (size_t)snprintf(text + o, cap - o, "modules:\n  - {name: '', type: Net}\n");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(text + o, cap - o,
                              "  - name: m%zu\n    type: Linear\n    params: [{name: w, "
                              "shape: [4]}]\n",
                              i);
    o += (size_t)snprintf(text + o, cap - o, "no_weight_decay: [m0.w]\n");
    if (!header_first)
        snprintf(text + o, cap - o, "%s", header);
    return text;
}

/* Modules are added while the file is parsed (a saved file has its header first), and
 * give the same model as a file whose header comes last. */
START_TEST(many_modules_load_as_they_are_read)
{
    size_t n = 20000;
    char *first = many_modules(n, true), *last = many_modules(n, false);
    ow_error err;
    ow_model *a = NULL, *b = NULL;
    ow_check_ok(ow_model_load_string(first, "first.yaml", &a, &err), &err);
    ow_check_ok(ow_model_load_string(last, "last.yaml", &b, &err), &err);
    ck_assert_uint_eq(ow_model_get_num_modules(a), n + 1);
    ck_assert_uint_eq(ow_model_get_num_params(a), n);
    ck_assert_str_eq(ow_model_get_name(a), "many");
    ck_assert_ptr_nonnull(ow_model_get_facts(a, "no_weight_decay"));
    char *saved_a = NULL, *saved_b = NULL;
    ow_check_ok(ow_model_save(a, &saved_a, &err), &err);
    ow_check_ok(ow_model_save(b, &saved_b, &err), &err);
    ck_assert_str_eq(saved_a, saved_b);
    ow_free(saved_a);
    ow_free(saved_b);
    ow_model_free(a);
    ow_model_free(b);
    free(first);
    free(last);
}
END_TEST

/* A module read while streaming fails at its node, as before streaming. */
START_TEST(streamed_module_errors_keep_their_position)
{
    const char *text = "format: optwrap-model/1\nname: m\nmodules:\n"
                       "  - {name: '', type: Net}\n"
                       "  - {name: a, type: Linear, knd: norm}\n"
                       "x: [1, 2\n";
    ow_error err;
    ow_model *m = NULL;
    ck_assert_int_eq(ow_model_load_string(text, "s.yaml", &m, &err), OW_ERR_UNKNOWN_KEY);
    ck_assert_ptr_null(m);
    ow_check_error(&err, OW_ERR_UNKNOWN_KEY, "s.yaml", 5, 34,
                   "modules[1]: unknown key 'knd' (did you mean 'kind'?)");
}
END_TEST

/* An anchor inside a streamed module stays valid for a later alias. */
START_TEST(anchors_survive_streaming)
{
    const char *text =
        "format: optwrap-model/1\nname: m\nmodules:\n"
        "  - {name: '', type: Net}\n"
        "  - {name: a, type: Linear, params: &p [{name: w, shape: [2, 3]}]}\n"
        "  - {name: b, type: Linear, params: *p}\n";
    ow_error err;
    ow_model *m = NULL;
    ow_check_ok(ow_model_load_string(text, "a.yaml", &m, &err), &err);
    ck_assert_uint_eq(ow_model_get_num_params(m), 2);
    ow_param_view v;
    ow_check_ok(ow_model_get_param(m, 1, &v), &err);
    ck_assert_str_eq(v.full_name, "b.w");
    ck_assert_int_eq(v.numel, 6);
    ow_model_free(m);
}
END_TEST

START_TEST(model_files_within_limits)
{
    ow_error err;
    ow_model *m = NULL;
    /* a device, read to its missing end before */
    ck_assert_int_eq(ow_model_load("/dev/zero", &m, &err), OW_ERR_IO);
    ck_assert_ptr_null(m);
    ow_check_error(&err, OW_ERR_IO, "/dev/zero", 0, 0,
                   "not a regular file (a character device)");
    /* a FIFO, which blocked forever before */
    char dir[512], fifo[600];
    snprintf(dir, sizeof dir, "%s/ow-model-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(fifo, sizeof fifo, "%s/model.yaml", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(ow_model_load(fifo, &m, &err), OW_ERR_IO);
    ow_check_error(&err, OW_ERR_IO, "/model.yaml", 0, 0, "not a regular file (a FIFO)");
    unlink(fifo);
    /* a file over max_file_bytes; raised, it loads */
    char path[1100];
    ow_test_path(path, sizeof path, OW_TEST_GOLDEN "/models", "mmpretrain_resnet50.yaml");
    ow_limits l = {.max_file_bytes = 100};
    ck_assert_int_eq(ow_model_load_with_limits(path, &l, &m, &err), OW_ERR_IO);
    ck_assert_ptr_null(m);
    ck_assert_str_eq(err.file, path);
    ck_assert_ptr_nonnull(strstr(err.message, "bytes, over the limit of 100 bytes"));
    ow_check_ok(ow_model_load_with_limits(path, NULL, &m, &err), &err);
    ow_model_free(m);
    /* nesting: a fact 5 deep needs max_depth 5 (the top-level map is level 1) */
    const char *text = "format: optwrap-model/1\nmodules: []\nfact: [[[[1]]]]\n";
    l = (ow_limits){.max_depth = 4};
    ck_assert_int_eq(ow_model_load_string_with_limits(text, "d.yaml", &l, &m, &err),
                     OW_ERR_SYNTAX);
    ow_check_error(&err, OW_ERR_SYNTAX, "d.yaml", 3, 10,
                   "lists and maps nested more than 4 deep (ow_limits.max_depth)");
    l.max_depth = 5;
    ow_check_ok(ow_model_load_string_with_limits(text, "d.yaml", &l, &m, &err), &err);
    ow_model_free(m);
}
END_TEST

/* ---- Limits: running out of memory ------------------------------------------------- */

START_TEST(load_survives_every_allocation_failure)
{
    for (long n = 0;; n++) {
        ow_error err;
        ow_error_clear(&err);
        ow_model *m = NULL;
        ow__alloc_fail_after(n);
        int rc = ow_model_load_string(facts_model, "facts.yaml", &m, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK) {
            ck_assert_uint_eq(ow_model_get_num_params(m), 3);
            ck_assert_uint_eq(ow_cfg_get_size(ow_model_get_facts(m, NULL)), 3);
            ow_model_free(m);
            break;
        }
        ow_check_error(&err, OW_ERR_NOMEM, NULL, 0, 0, "out of memory");
        ck_assert_ptr_null(m);
    }
}
END_TEST

START_TEST(save_survives_every_allocation_failure)
{
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL;
    ow_check_ok(ow_model_load_string(facts_model, "facts.yaml", &m, &err), &err);
    for (long n = 0;; n++) {
        char *out = (char *)&err;
        ow_error_clear(&err);
        ow__alloc_fail_after(n);
        int rc = ow_model_save(m, &out, &err);
        ow__alloc_fail_after(-1);
        if (rc == OW_OK) {
            ck_assert_ptr_nonnull(strstr(out, "shared: \"0.weight\""));
            ow_free(out);
            break;
        }
        ow_check_error(&err, OW_ERR_NOMEM, NULL, 0, 0, "out of memory");
        ck_assert_ptr_null(out);
    }
    ow_model_free(m);
}
END_TEST

static Suite *make_model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, build_gives_walk_order_and_full_names);
    tcase_add_test(tc, late_params_keep_walk_order);
    tcase_add_test(tc, shared_params_share_data_and_grad);
    tcase_add_test(tc, facts_are_kept_as_a_map);
    tcase_add_test(tc, large_model_lookups);
    suite_add_tcase(s, tc);

    TCase *te = tcase_create("Errors");
    tcase_add_loop_test(te, module_misuse_is_rejected, 0, OW__ARRAY_LEN(module_errors));
    tcase_add_test(te, parents_are_created_on_demand);
    tcase_add_test(te, kind_follows_type);
    tcase_add_test(te, set_data_by_index);
    tcase_add_loop_test(te, param_misuse_is_rejected, 0, OW__ARRAY_LEN(param_errors));
    tcase_add_test(te, set_data_and_readers_check_arguments);
    suite_add_tcase(s, te);

    TCase *tf = tcase_create("Files");
    tcase_add_loop_test(tf, golden_models_load_with_reference_counts, 0,
                        OW__ARRAY_LEN(golden_models));
    tcase_add_test(tf, tied_tiny_details);
    tcase_add_loop_test(tf, golden_models_save_back_verbatim, 0,
                        OW__ARRAY_LEN(golden_models));
    tcase_add_test(tf, facts_and_odd_names_round_trip);
    tcase_add_test(tf, nan_fact_saves_as_yaml_nan);
    tcase_add_test(tf, empty_model_round_trips);
    tcase_add_test(tf, load_reports_io_and_syntax_errors);
    suite_add_tcase(s, tf);

    TCase *tb = tcase_create("Bad files");
    tcase_add_loop_test(tb, bad_files_fail_at_their_position, 0,
                        OW__ARRAY_LEN(bad_cases));
    tcase_add_test(tb, every_bad_case_is_listed);
    suite_add_tcase(s, tb);

    TCase *th = tcase_create("Hostile");
    tcase_set_timeout(th, 60);
    tcase_add_test(th, many_modules_load_as_they_are_read);
    tcase_add_test(th, streamed_module_errors_keep_their_position);
    tcase_add_test(th, anchors_survive_streaming);
    tcase_add_test(th, model_files_within_limits);
    suite_add_tcase(s, th);

    TCase *tl = tcase_create("Limits");
    tcase_add_test(tl, set_buffers_walk_order);
    tcase_add_test(tl, add_survives_every_allocation_failure);
    tcase_add_test(tl, load_survives_every_allocation_failure);
    tcase_add_test(tl, save_survives_every_allocation_failure);
    suite_add_tcase(s, tl);
    return s;
}

int main(void)
{
    return ow_test_run(make_model_suite());
}
