/* fuzz_sched_state.c -- schedule state: ow_sched_load_state into schedules built from
 * fixed configs over the fixed model's param groups (an mmengine chain with warm-up,
 * cosine, restarts, one-cycle and plateau; a timm cosine with cycles), each stepped
 * once more after a load that succeeds. Schedules are built for every input.
 *
 * Seeds: with OW_FUZZ_SEEDS=<dir> in the environment, the target writes each
 * schedule's state after a few steps into <dir> and exits. */
#include "fuzz.h"

#include <stdio.h>

static const char *const configs[] = {
    "optim_wrapper:\n"
    "  optimizer: {type: SGD, lr: 0.1, momentum: 0.9, weight_decay: 0.0001}\n"
    "  paramwise_cfg: {norm_decay_mult: 0.0, custom_keys: {head: {lr_mult: 10.0}}}\n"
    "param_scheduler:\n"
    "  - {type: LinearLR, start_factor: 0.01, by_epoch: false, begin: 0, end: 6}\n"
    "  - {type: CosineRestartLR, periods: [5, 5], restart_weights: [1, 0.5],"
    " eta_min: 0.001, by_epoch: false, begin: 6, end: 16}\n"
    "  - {type: OneCycleLR, eta_max: 0.5, total_steps: 10, by_epoch: false, begin: 16,"
    " end: 26}\n"
    "  - {type: MultiStepLR, milestones: [2, 4], gamma: 0.5, by_epoch: true}\n"
    "  - {type: ReduceOnPlateauLR, monitor: loss, rule: less, patience: 1,"
    " by_epoch: true}\n"
    "  - {type: CosineAnnealingMomentum, eta_min: 0.8, by_epoch: false, begin: 0,"
    " end: 20}\n"
    "train_cfg: {by_epoch: true, max_epochs: 8}\n",
    "optim_wrapper:\n"
    "  optimizer: {type: AdamW, lr: 0.001, weight_decay: 0.05}\n"
    "param_scheduler: {type: create_scheduler_v2, sched: cosine, num_epochs: 3,"
    " warmup_epochs: 1, cycle_limit: 2, cycle_mul: 2.0, step_on_epochs: false}\n",
};

typedef struct world {
    ow_cfg *cfg;
    ow_groups *groups;
    ow_sched_target *target;
    ow_sched *sched;
} world;

static void world_free(world *w)
{
    ow_sched_free(w->sched);
    ow_sched_target_free(w->target);
    ow_groups_free(w->groups);
    ow_cfg_free(w->cfg);
}

static void world_new(world *w, size_t i)
{
    memset(w, 0, sizeof *w);
    ow_sched_loop loop = {.epoch_length = 4};
    if (ow_cfg_load_string(configs[i], "sched.yaml", &w->cfg, NULL) ||
        ow_groups_build(w->cfg, fuzz_model(), &w->groups, NULL) ||
        ow_sched_target_new(w->cfg, w->groups, &w->target, NULL) ||
        ow_sched_new(w->cfg, w->target, &loop, &w->sched, NULL))
        abort();
}

/* One iteration, and at each fourth the epoch's end with a metric. */
static void step(world *w, int it)
{
    ow_error err;
    ow_sched_step_iter(w->sched, &err);
    if (it % 4 == 3) {
        double metric = 1.0 / (double)(it + 1);
        const char *names[] = {"loss"};
        ow_sched_step_epoch(w->sched, &metric, &err);
        ow_sched_step_val(w->sched, names, &metric, 1, &err);
    }
}

static void write_seeds(const char *dir)
{
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        world w;
        world_new(&w, i);
        for (int it = 0; it < 24; it++) {
            step(&w, it);
            if (it % 7 != 5)
                continue;
            char *state = NULL, path[4096];
            if (ow_sched_save_state(w.sched, &state, NULL))
                abort();
            snprintf(path, sizeof path, "%s/sched-%zu-%d.json", dir, i, it);
            FILE *f = fopen(path, "w");
            if (!f || fputs(state, f) < 0 || fclose(f))
                abort();
            ow_free(state);
        }
        world_free(&w);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("OW_FUZZ_SEEDS");
    if (dir && *dir) {
        write_seeds(dir);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        world w;
        world_new(&w, i);
        ow_error err;
        if (ow_sched_load_state(w.sched, text, &err) == OW_OK) {
            char *again = NULL;
            if (ow_sched_save_state(w.sched, &again, &err) == OW_OK)
                ow_free(again);
            step(&w, 3);
        }
        world_free(&w);
    }
    free(text);
    return 0;
}
