/* timm_factory.c -- timm's create_scheduler_v2 as a scheduler type: its arguments (what
 * timm's train.py passes: sched, num_epochs, warmup_epochs, ...) become the class it
 * builds, with every epoch count multiplied by updates_per_epoch when it steps per
 * update, and the number of epochs it returns. timm 1.0 scheduler_factory.py. */
#include "sched_internal.h"

#include <string.h>

static const char *const scheds[] = {"cosine",  "tanh", "step", "multistep",
                                     "plateau", "poly", NULL};
enum { COSINE, TANH, STEP, MULTISTEP, PLATEAU, POLY };
static const char *const classes[] = {
    "timm.CosineLRScheduler",    "timm.TanhLRScheduler",    "timm.StepLRScheduler",
    "timm.MultiStepLRScheduler", "timm.PlateauLRScheduler", "timm.PolyLRScheduler"};

static int put(ow_cfg *map, const char *key, ow_cfg *v)
{
    if (!v)
        return OW_ERR_NOMEM;
    ow__cfg_set_pos(v, map->file, map->line, map->column);
    return ow__cfg_map_set(map, key, v);
}

static int put_num(ow_cfg *map, const char *key, double v)
{
    return put(map, key, ow__cfg_new_double(v));
}

/* The length create_scheduler_v2 reads from a cycle scheduler (get_cycle_length). */
static double cycle_length(double t_initial, double cycle_mul, double cycle_limit,
                           double warmup_t, bool prefix)
{
    double cycles = cycle_limit > 1 ? cycle_limit : 1;
    double t = cycle_mul == 1.0
                   ? t_initial * cycles
                   : floor(-t_initial * (pow(cycle_mul, cycles) - 1) / (1 - cycle_mul));
    return prefix ? t + warmup_t : t;
}

static int build(const ow__sched_build *b, size_t sched, double upe, ow_cfg *m,
                 int64_t *num_epochs)
{
    bool per_epoch = ow__sched_num(b, "step_on_epochs") != 0;
    double mul = per_epoch ? 1 : upe;
    double t_initial = ow__sched_num(b, "num_epochs") * mul;
    double warmup_t = ow__sched_num(b, "warmup_epochs") * mul;
    double decay_t = ow__sched_num(b, "decay_epochs") * mul;
    double cooldown_t = ow__sched_num(b, "cooldown_epochs") * mul;
    bool prefix = ow__sched_num(b, "warmup_prefix") != 0;
    double cycle_mul = ow__sched_num(b, "cycle_mul");
    double cycle_limit = ow__sched_num(b, "cycle_limit");
    int rc = put(m, "type", ow__cfg_new_string(classes[sched]));
    if (!rc && sched != PLATEAU)
        rc = put(m, "t_in_epochs", ow__cfg_new_bool(per_epoch));
    if (!rc)
        rc = put_num(m, "warmup_lr_init", ow__sched_num(b, "warmup_lr"));
    if (!rc)
        rc = put_num(m, "warmup_t", warmup_t);
    if (!rc && sched != PLATEAU)
        rc = put(m, "warmup_prefix", ow__cfg_new_bool(prefix));
    if (!rc && (sched == COSINE || sched == TANH || sched == POLY)) {
        if (!(rc = put_num(m, "t_initial", t_initial)) &&
            !(rc = put_num(m, "lr_min", ow__sched_num(b, "min_lr"))) &&
            !(rc = put_num(m, "cycle_mul", cycle_mul)) &&
            !(rc = put_num(m, "cycle_decay", ow__sched_num(b, "cycle_decay"))) &&
            !(rc = put_num(m, "cycle_limit", cycle_limit)) && sched != TANH)
            rc = put_num(m, "k_decay", ow__sched_num(b, "k_decay"));
        if (!rc && sched == POLY) /* decay_rate doubles as the polynomial's power */
            rc = put_num(m, "power", ow__sched_num(b, "decay_rate"));
        double t = cycle_length(t_initial, cycle_mul, cycle_limit, warmup_t, prefix) +
                   cooldown_t;
        *num_epochs = ow__i64_sat(per_epoch ? t : ow__py_floordiv(t, upe));
    } else if (!rc) {
        *num_epochs = ow__i64_sat(ow__sched_num(b, "num_epochs") +
                                  (prefix ? ow__sched_num(b, "warmup_epochs") : 0));
    }
    if (!rc && (sched == STEP || sched == MULTISTEP || sched == PLATEAU))
        rc = put_num(m, "decay_rate", ow__sched_num(b, "decay_rate"));
    if (!rc && sched == STEP)
        rc = put_num(m, "decay_t", decay_t);
    if (!rc && sched == MULTISTEP) {
        const ow_cfg *given = ow__cfg_map_get(b->node, "decay_milestones");
        ow_cfg *list = ow__cfg_new(OW_CFG_LIST, NULL, 0, 0);
        if (!(rc = put(m, "decay_t", list))) {
            size_t count = given ? given->v.c.n : 3;
            for (size_t i = 0; i < count && !rc; i++) {
                const ow_cfg *v = given ? given->v.c.items[i] : NULL;
                double x = v ? (v->type == OW_CFG_INT ? (double)v->v.i : v->v.d)
                             : 90.0 * (double)(i + 1);
                rc = ow__cfg_list_append(list, ow__cfg_new_double(x * mul));
            }
        }
    }
    if (!rc && sched == PLATEAU) {
        const ow_cfg *mode = ow__cfg_map_get(b->node, "plateau_mode");
        if (!(rc = put_num(m, "patience_t", ow__sched_num(b, "patience_epochs"))) &&
            !(rc = put_num(m, "cooldown_t", 0)) &&
            !(rc = put_num(m, "lr_min", ow__sched_num(b, "min_lr"))))
            rc = put(m, "mode", ow__cfg_new_string(mode ? mode->v.s : "max"));
    }
    return rc;
}

int ow__sched_timm_factory(const ow__sched_build *b, ow_cfg **class_cfg,
                           int64_t *num_epochs, ow_error *err)
{
    *class_cfg = NULL;
    size_t sched;
    int rc = ow__sched_choice(b, "sched", scheds, &sched, err);
    if (rc)
        return rc;
    static const char *const modes[] = {"min", "max", NULL};
    size_t mode;
    if ((rc = ow__sched_choice(b, "plateau_mode", modes, &mode, err)))
        return rc;
    if (ow__sched_has(b, "noise"))
        return ow__error_at(err, OW_ERR_UNSUPPORTED, ow__cfg_map_get(b->node, "noise"),
                            "%s: lr noise is not supported (it draws from torch's random "
                            "generator)",
                            b->context);
    bool per_epoch = ow__sched_num(b, "step_on_epochs") != 0;
    double upe = ow__sched_has(b, "updates_per_epoch")
                     ? ow__sched_num(b, "updates_per_epoch")
                     : (double)b->epoch_length;
    if (!per_epoch && sched == PLATEAU)
        return ow__sched_fail(b, err, "step_on_epochs",
                              "Plateau LR only supports step per epoch (step_on_epochs: "
                              "true)");
    if (!per_epoch && !(upe > 0))
        return ow__sched_fail(b, err, "step_on_epochs",
                              "step_on_epochs: false needs updates_per_epoch (optimizer "
                              "updates per epoch): give it here or give the run's epoch "
                              "length (--epoch-length)");
    ow_cfg *m = ow__cfg_new(OW_CFG_MAP, b->node->file, b->node->line, b->node->column);
    if (!m || build(b, sched, upe, m, num_epochs) != OW_OK) {
        ow_cfg_free(m);
        return ow__nomem(err);
    }
    *class_cfg = m;
    return OW_OK;
}

static int factory_init(ow__sched_item *it, const ow__sched_build *b, ow_error *err)
{
    (void)it, (void)b; /* replaced by the class it builds before init runs */
    return ow__error(err, OW_ERR_MISUSE, NULL, 0, 0,
                     "create_scheduler_v2 is not a class");
}

static const ow_key factory_keys[] = {
    {.name = "sched",
     .type = OW_T_STRING,
     .def = "cosine",
     .doc = "cosine, tanh, step, multistep, plateau or poly"},
    {.name = "num_epochs",
     .type = OW_T_NUMBER,
     .def = "300",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,
     .doc = "epochs of the schedule"},
    {.name = "decay_epochs",
     .type = OW_T_NUMBER,
     .def = "90",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,
     .doc = "epochs between decays (step)"},
    {.name = "decay_milestones",
     .type = OW_T_NUMLIST,
     .def = "[90, 180, 270]",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "epochs of the decays (multistep)"},
    {.name = "cooldown_epochs",
     .type = OW_T_NUMBER,
     .def = "0",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "epochs at min_lr after the schedule (added to its length)"},
    {.name = "patience_epochs",
     .type = OW_T_INT,
     .def = "10",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "epochs without improvement (plateau)"},
    {.name = "decay_rate",
     .type = OW_T_NUMBER,
     .def = "0.1",
     .doc = "decay multiplier (step, multistep, plateau); the power for poly"},
    {.name = "min_lr",
     .type = OW_T_NUMBER,
     .def = "0",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "lowest lr"},
    {.name = "warmup_lr",
     .type = OW_T_NUMBER,
     .def = "1e-05",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "lr at the start of the warmup"},
    {.name = "warmup_epochs",
     .type = OW_T_NUMBER,
     .def = "0",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "epochs of linear warmup"},
    {.name = "warmup_prefix",
     .type = OW_T_BOOL,
     .def = "false",
     .doc = "the warmup comes before num_epochs (else inside them)"},
    {.name = "noise",
     .type = OW_T_ANY,
     .def = "null",
     .doc = "lr noise (not supported: must stay null)"},
    {.name = "noise_pct", .type = OW_T_NUMBER, .def = "0.67", .doc = "lr noise limit"},
    {.name = "noise_std", .type = OW_T_NUMBER, .def = "1.0", .doc = "lr noise std-dev"},
    {.name = "noise_seed", .type = OW_T_INT, .def = "42", .doc = "lr noise seed"},
    {.name = "cycle_mul",
     .type = OW_T_NUMBER,
     .def = "1.0",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,
     .doc = "each cycle this much longer"},
    {.name = "cycle_decay",
     .type = OW_T_NUMBER,
     .def = "0.1",
     .doc = "each cycle's peak this much lower (the class default is 1)"},
    {.name = "cycle_limit",
     .type = OW_T_NUMBER,
     .def = "1",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE,
     .doc = "number of cycles"},
    {.name = "k_decay",
     .type = OW_T_NUMBER,
     .def = "1.0",
     .min = 0,
     .max = INFINITY,
     .flags = OW_KEY_RANGE | OW_KEY_MIN_OPEN,
     .doc = "k-decay exponent (cosine, poly)"},
    {.name = "plateau_mode",
     .type = OW_T_STRING,
     .def = "max",
     .doc = "'max' or 'min' (plateau)"},
    {.name = "step_on_epochs",
     .type = OW_T_BOOL,
     .def = "true",
     .doc = "step per epoch (else per optimizer update)"},
    {.name = "updates_per_epoch",
     .type = OW_T_INT,
     .min = 1,
     .max = INFINITY,
     .flags = OW_KEY_RANGE | OW_KEY_NULLABLE,
     .doc = "optimizer updates per epoch (default: the run's epoch length)"},
    {0},
};

static const ow__sched_def factory_def = {.kind = OW__SCHED_TIMM_FACTORY,
                                          .init = factory_init};

OW__SCHED_ENTRY(ow__sched_timm_factory_entry, "create_scheduler_v2", "timm", factory_keys,
                factory_def,
                "timm's scheduler factory: sched, num_epochs, warmup_epochs...");
