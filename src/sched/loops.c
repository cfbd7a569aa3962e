/* loops.c -- train_cfg, val_cfg and test_cfg checked as mmengine's runner builds its
 * loops (Runner.build_train_loop / build_val_loop / build_test_loop and the loops'
 * __init__ in mmengine/runner/loops.py): a known loop type accepts its own keys only. */
#include "../internal.h"

#include <math.h>
#include <string.h>

static const ow_key epoch_keys[] = {{.name = "max_epochs",
                                     .type = OW_T_NUMBER,
                                     .flags = OW_KEY_REQUIRED | OW_KEY_RANGE,
                                     .min = 0,
                                     .max = INFINITY,
                                     .doc = "epochs to train"},
                                    {.name = "val_begin",
                                     .type = OW_T_NUMBER,
                                     .def = "1",
                                     .min = -INFINITY,
                                     .max = INFINITY,
                                     .doc = "the epoch validation starts at"},
                                    {.name = "val_interval",
                                     .type = OW_T_NUMBER,
                                     .def = "1",
                                     .min = -INFINITY,
                                     .max = INFINITY,
                                     .doc = "epochs between validations"},
                                    {.name = "dynamic_intervals",
                                     .type = OW_T_LIST,
                                     .flags = OW_KEY_NULLABLE,
                                     .doc = "[[milestone, interval], ...]"},
                                    {0}};

static const ow_key iter_keys[] = {{.name = "max_iters",
                                    .type = OW_T_NUMBER,
                                    .flags = OW_KEY_REQUIRED | OW_KEY_RANGE,
                                    .min = 0,
                                    .max = INFINITY,
                                    .doc = "iterations to train"},
                                   {.name = "val_begin",
                                    .type = OW_T_NUMBER,
                                    .def = "1",
                                    .min = -INFINITY,
                                    .max = INFINITY,
                                    .doc = "the iteration validation starts at"},
                                   {.name = "val_interval",
                                    .type = OW_T_NUMBER,
                                    .def = "1000",
                                    .min = -INFINITY,
                                    .max = INFINITY,
                                    .doc = "iterations between validations"},
                                   {.name = "dynamic_intervals",
                                    .type = OW_T_LIST,
                                    .flags = OW_KEY_NULLABLE,
                                    .doc = "[[milestone, interval], ...]"},
                                   {0}};

static const ow_key eval_keys[] = {
    {.name = "fp16", .type = OW_T_BOOL, .def = "false", .doc = "evaluate in fp16"}, {0}};

static const char *const with_type[] = {"type", NULL};
static const char *const with_by_epoch[] = {"by_epoch", NULL};

/* A loop type mmengine registers, written with or without its scope. */
static bool names(const char *type, const char *name)
{
    if (!strncmp(type, "mmengine.", 9))
        type += 9;
    return !strcmp(type, name);
}

static int check_train(const ow_cfg *loop, ow_error *err)
{
    const ow_cfg *type = ow__cfg_map_get(loop, "type");
    const ow_cfg *by_epoch = ow__cfg_map_get(loop, "by_epoch");
    if (type && by_epoch)
        return ow__error_at(err, OW_ERR_VALUE, by_epoch,
                            "train_cfg: only one of 'type' or 'by_epoch' can exist "
                            "(mmengine's build_train_loop)");
    if (type) {
        if (type->type != OW_CFG_STRING)
            return ow__error_at(err, OW_ERR_TYPE, type,
                                "train_cfg.type: expected string, got %s",
                                ow_cfg_type_name(type->type));
        if (names(type->v.s, "EpochBasedTrainLoop"))
            return ow__schema_check(loop, epoch_keys, "train_cfg", with_type, err);
        if (names(type->v.s, "IterBasedTrainLoop"))
            return ow__schema_check(loop, iter_keys, "train_cfg", with_type, err);
        return OW_OK; /* another library's loop: its keys are its own */
    }
    if (!by_epoch)
        return ow__error_at(
            err, OW_ERR_MISSING_KEY, loop,
            "train_cfg: needs 'type' or 'by_epoch' (mmengine's "
            "build_train_loop cannot train without either: KeyError "
            "'by_epoch'); by_epoch: true for an EpochBasedTrainLoop, false "
            "for an IterBasedTrainLoop");
    if (by_epoch->type != OW_CFG_BOOL)
        return ow__error_at(err, OW_ERR_TYPE, by_epoch,
                            "train_cfg.by_epoch: expected bool, got %s",
                            ow_cfg_type_name(by_epoch->type));
    return ow__schema_check(loop, by_epoch->v.b ? epoch_keys : iter_keys, "train_cfg",
                            with_by_epoch, err);
}

/* ValLoop / TestLoop, the default of build_val_loop / build_test_loop without a type. */
static int check_eval(const ow_cfg *loop, const char *context, const char *loop_name,
                      ow_error *err)
{
    const ow_cfg *type = ow__cfg_map_get(loop, "type");
    if (!type)
        return ow__schema_check(loop, eval_keys, context, NULL, err);
    if (type->type != OW_CFG_STRING)
        return ow__error_at(err, OW_ERR_TYPE, type, "%s.type: expected string, got %s",
                            context, ow_cfg_type_name(type->type));
    if (names(type->v.s, loop_name))
        return ow__schema_check(loop, eval_keys, context, with_type, err);
    return OW_OK;
}

int ow__loops_check(const ow_cfg *config, ow_error *err)
{
    static const char *const sections[] = {"train_cfg", "val_cfg", "test_cfg"};
    for (size_t i = 0; i < OW__ARRAY_LEN(sections); i++) {
        const ow_cfg *loop = ow__cfg_map_get(config, sections[i]);
        if (!loop || loop->type == OW_CFG_NULL)
            continue; /* the runner builds no such loop */
        if (loop->type != OW_CFG_MAP)
            return ow__error_at(err, OW_ERR_TYPE, loop, "%s: expected map, got %s",
                                sections[i], ow_cfg_type_name(loop->type));
        int rc = i == 0   ? check_train(loop, err)
                 : i == 1 ? check_eval(loop, sections[i], "ValLoop", err)
                          : check_eval(loop, sections[i], "TestLoop", err);
        if (rc)
            return rc;
    }
    return OW_OK;
}
