/* cmd_schedule.c -- `optwrap schedule CONFIG`: runs the config's param_scheduler over
 * the run the way mmengine's runner (or timm's train.py) steps it, and shows the lr
 * and momentum of every group: a terminal chart with its key points, an SVG plot
 * (-o FILE.svg, schedule_svg.c) or every iteration as CSV (--csv). */
#include "schedule.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const cli_option schedule_options[] = {
    {"--arch", 1,
     "a built-in architecture instead of --model (optwrap model --list-archs)"},
    {"--cfg-options", 2, "override config keys: a.b.c=VALUE (YAML value)"},
    {"--csv", 0, "every iteration as CSV (to -o FILE, else stdout)"},
    {"--epoch-length", 1, "iterations per epoch (len(train_dataloader))"},
    {"--epochs", 1, "an epoch-based run of this many epochs (needs --epoch-length)"},
    {"--iters", 1, "an iteration-based run of this many iterations"},
    {"--model", 1, "the model tree: schedule its real param groups"},
    {"-o", 1, "write the plot as SVG (or the CSV, with --csv) to this file"},
};
#define N_OPTIONS (sizeof schedule_options / sizeof schedule_options[0])

/* ---- the run --------------------------------------------------------------------------
 */

/* Key points of one curve (group 0), found at full resolution. */
typedef struct key_point {
    const char *what;
    int64_t iter;
    double value;
} key_point;

#define MAX_POINTS 12
#define MAX_STEPS  6

typedef struct run_state {
    sched_record *r;
    const ow_sched_target *t;
    const ow_groups *groups; /* what t writes; NULL without a model */
    FILE *csv;
    int64_t stride;
    key_point points[SCHED_MAX_KEYS][MAX_POINTS];
    size_t n_points[SCHED_MAX_KEYS];
    double prev[SCHED_MAX_KEYS], prev2[SCHED_MAX_KEYS];
    int phase[SCHED_MAX_KEYS]; /* +1 rising, -1 falling (flat stretches keep it) */
    int64_t rises[SCHED_MAX_KEYS];
    bool decayed[SCHED_MAX_KEYS];    /* it has fallen at least once */
    int64_t up_iter[SCHED_MAX_KEYS]; /* the last step up of the rise in progress */
    double up_value[SCHED_MAX_KEYS];
    bool fell[SCHED_MAX_KEYS];
    key_point steps[SCHED_MAX_KEYS][MAX_STEPS];
    size_t n_steps[SCHED_MAX_KEYS];
    double *now; /* [n_keys * n_groups] this iteration's values */
} run_state;

static void add_point(run_state *st, size_t k, const char *what, int64_t iter, double v)
{
    if (st->n_points[k] < MAX_POINTS)
        st->points[k][st->n_points[k]++] = (key_point){what, iter, v};
}

/* A rise (through flat stretches: a by-epoch warmup is a staircase) ends at its last
 * step up, once the curve falls or the run ends: a first rise before any fall is the
 * warmup, later ones are peaks. */
static void end_rise(run_state *st, size_t k)
{
    const key_point *last = &st->points[k][st->n_points[k] - 1];
    bool shown = !strcmp(last->what, "restart") && last->iter == st->up_iter[k];
    if (st->phase[k] > 0 && !shown)
        add_point(st, k, st->rises[k]++ == 0 && !st->decayed[k] ? "warmup end" : "peak",
                  st->up_iter[k], st->up_value[k]);
    st->phase[k] = 0;
}

/* A restart is a rise after a fall (a one-step restart is not also a peak); the decay
 * starts at the first fall; drops after a flat stretch are steps (listed when there are
 * few: a by-epoch cosine is a staircase of hundreds). */
static void track(run_state *st, size_t k, int64_t i, double v)
{
    if (i == 0) {
        add_point(st, k, "start", 0, v);
        st->prev[k] = st->prev2[k] = v;
        return;
    }
    double p = st->prev[k];
    if (v > p) {
        if (st->phase[k] <= 0 && st->fell[k])
            add_point(st, k, "restart", i, v);
        st->phase[k] = 1;
        st->fell[k] = false;
        st->up_iter[k] = i;
        st->up_value[k] = v;
    } else if (v < p) {
        end_rise(st, k);
        if (!st->decayed[k])
            add_point(st, k, "decay starts", i, v);
        else if (p == st->prev2[k] && st->n_steps[k]++ < MAX_STEPS)
            st->steps[k][st->n_steps[k] - 1] = (key_point){"step down", i, v};
        st->fell[k] = st->decayed[k] = true;
        st->phase[k] = -1;
    }
    st->prev2[k] = p;
    st->prev[k] = v;
}

static void csv_row(run_state *st, int64_t i, const double *now)
{
    /* One line built in memory and written at once: printf per value was most of the
     * time of a long run. */
    const sched_record *r = st->r;
    char line[4096];
    size_t o = 0;
    char buf[40];
    if (i >= 0 && i < 1000000000000000) /* exact as a double: its digits, no printf */
        sched_format((double)i, buf, sizeof buf);
    else
        snprintf(buf, sizeof buf, "%" PRId64, i);
    size_t len = strlen(buf);
    memcpy(line, buf, len);
    o = len;
    line[o++] = ',';
    if (r->epoch_length > 0) {
        sched_format((double)i / (double)r->epoch_length, buf, sizeof buf);
        len = strlen(buf);
        memcpy(line + o, buf, len);
        o += len;
    }
    for (size_t k = 0; k < r->n_keys * r->n_groups; k++) {
        if (o + 40 > sizeof line) {
            fwrite(line, 1, o, st->csv);
            o = 0;
        }
        sched_format(now[k], buf, sizeof buf);
        len = strlen(buf);
        line[o++] = ',';
        memcpy(line + o, buf, len);
        o += len;
    }
    line[o++] = '\n';
    fwrite(line, 1, o, st->csv);
}

/* The value group g steps with: for a real group's lr, ow_groups_get_effective_lr's
 * (lr * lr_scale where the optimizer applies lr_scale: timm's layer decay). The base
 * group and a run without a model have no lr_scale. */
static double stepped_value(const run_state *st, size_t g, const char *key)
{
    const ow_sched_target *t = st->t;
    double v;
    if (!t->get(t->ctx, g, key, &v))
        return NAN;
    if (!strcmp(key, "lr") && g < ow_groups_get_count(st->groups) &&
        ow_groups_get_effective_lr(st->groups, g, &v, NULL) != OW_OK)
        return NAN;
    return v;
}

static void record(run_state *st, int64_t i)
{
    sched_record *r = st->r;
    double *vals = st->now;
    size_t count = r->n_keys * r->n_groups;
    for (size_t k = 0; k < r->n_keys; k++)
        for (size_t g = 0; g < r->n_groups; g++)
            vals[k * r->n_groups + g] = stepped_value(st, g, r->keys[k]);
    for (size_t k = 0; k < r->n_keys; k++)
        track(st, k, i, vals[k * r->n_groups]);
    if (st->csv)
        csv_row(st, i, vals);
    if (i % st->stride == 0 || i == r->total) {
        size_t s = r->n_samples++;
        r->iters[s] = i;
        for (size_t k = 0; k < count; k++)
            r->v[k * SCHED_MAX_SAMPLES + s] = vals[k];
    }
}

/* The runner's hook order: after every iteration, after every epoch. */
static int run(run_state *st, ow_sched *s, bool epochs, ow_error *err)
{
    const sched_record *r = st->r;
    for (int64_t i = 0;; i++) {
        record(st, i);
        if (i == r->total)
            break;
        int rc = ow_sched_step_iter(s, err);
        if (rc == OW_OK && epochs && (i + 1) % r->epoch_length == 0)
            rc = ow_sched_step_epoch(s, NULL, err);
        if (rc)
            return rc;
    }
    for (size_t k = 0; k < r->n_keys; k++)
        end_rise(st, k);
    /* the samples were stored with a stride of SCHED_MAX_SAMPLES; pack them */
    sched_record *w = st->r;
    for (size_t k = 0; k < w->n_keys * w->n_groups; k++)
        memmove(&w->v[k * w->n_samples], &w->v[k * SCHED_MAX_SAMPLES],
                w->n_samples * sizeof *w->v);
    return OW_OK;
}

/* ---- the terminal chart
 * ----------------------------------------------------------------- */

#define CHART_W 64
#define CHART_H 12

static void print_chart(const sched_record *r, size_t k)
{
    static const char marks[] = "*+ox#@";
    char grid[CHART_H][CHART_W + 1];
    double lo = INFINITY, hi = -INFINITY;
    for (size_t g = 0; g < r->n_groups; g++)
        for (size_t i = 0; i < r->n_samples; i++) {
            double v = sched_value(r, k, g, i);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    if (!(hi >= lo))
        return;
    if (lo > 0)
        lo = 0;
    if (hi == lo)
        hi = lo + 1;
    memset(grid, ' ', sizeof grid);
    size_t curve = 0;
    printf("%s (", r->keys[k]);
    for (size_t g = 0; g < r->n_groups; g++) {
        if (sched_same_as(r, k, g) != g)
            continue;
        char name[24];
        sched_group_name(r, g, name, sizeof name);
        char mark = marks[curve < sizeof marks - 2 ? curve : sizeof marks - 2];
        printf("%s%c group %s", curve ? ", " : "", mark, name);
        for (int c = 0; c < CHART_W; c++) {
            size_t i =
                (size_t)((double)c / (CHART_W - 1) * (double)(r->n_samples - 1) + 0.5);
            double v = sched_value(r, k, g, i);
            int row = (int)((hi - v) / (hi - lo) * (CHART_H - 1) + 0.5);
            if (row >= 0 && row < CHART_H && grid[row][c] == ' ')
                grid[row][c] = mark;
        }
        curve++;
    }
    printf("; groups with equal curves are drawn once)\n");
    for (int row = 0; row < CHART_H; row++) {
        char label[40] = "";
        if (row == 0 || row == CHART_H - 1 || row == CHART_H / 2)
            snprintf(label, sizeof label, "%.4g", hi - (hi - lo) * row / (CHART_H - 1));
        grid[row][CHART_W] = '\0';
        printf("%12.12s |%s\n", label, grid[row]);
    }
    printf("%12s +", "");
    for (int c = 0; c < CHART_W; c++)
        putchar('-');
    printf("\n%12s  0%*" PRId64 " iterations\n", "", CHART_W - 1, r->total);
    if (r->epoch_length > 0)
        printf("%12s  0%*" PRId64 " epochs\n", "", CHART_W - 1,
               r->total / r->epoch_length);
}

static void print_where(const sched_record *r, int64_t iter)
{
    printf("iter %-8" PRId64, iter);
    if (r->epoch_length > 0) {
        printf(" epoch %-8.6g", (double)iter / (double)r->epoch_length);
    }
}

static void print_point(const sched_record *r, const key_point *p)
{
    char buf[40];
    sched_format(p->value, buf, sizeof buf);
    printf("  %-12s ", p->what);
    print_where(r, p->iter);
    printf(" %s\n", buf);
}

static void print_report(const sched_record *r, const run_state *st, const ow_sched *s)
{
    printf("%s: %zu group%s%s, %" PRId64 " iterations", r->title, r->n_groups,
           r->n_groups == 1 ? "" : "s",
           r->has_base_group ? " (the last is mmengine's base_param_settings)" : "",
           r->total);
    if (r->epoch_length > 0)
        printf(" (%" PRId64 " epochs of %" PRId64 ")", r->total / r->epoch_length,
               r->epoch_length);
    printf("\n\nschedulers:\n");
    for (size_t i = 0; i < ow_sched_get_count(s); i++) {
        ow_sched_info info;
        ow_sched_get_info(s, i, &info);
        printf("  %zu %-26s %-9s", i, info.type, info.param);
        if (info.end_iter >= 0)
            printf(" iterations %" PRId64 "..%" PRId64, info.begin_iter, info.end_iter);
        else if (info.begin_iter >= 0)
            printf(" iterations %" PRId64 "..", info.begin_iter);
        printf("%s\n", info.by_epoch ? " (steps per epoch)" : "");
    }
    for (size_t k = 0; k < r->n_keys; k++) {
        printf("\n");
        if (sched_constant(r, k)) {
            char buf[40];
            sched_format(sched_value(r, k, 0, 0), buf, sizeof buf);
            printf("%s: constant over the run (group 0: %s)\n", r->keys[k], buf);
            continue;
        }
        print_chart(r, k);
        printf("key points of %s, group 0:\n", r->keys[k]);
        for (size_t p = 0; p < st->n_points[k]; p++)
            print_point(r, &st->points[k][p]);
        for (size_t p = 0; st->n_steps[k] <= MAX_STEPS && p < st->n_steps[k]; p++)
            print_point(r, &st->steps[k][p]);
        char buf[40];
        sched_format(sched_value(r, k, 0, r->n_samples - 1), buf, sizeof buf);
        printf("  %-12s ", "final");
        print_where(r, r->total);
        printf(" %s\n", buf);
    }
}

/* ---- the command
 * ------------------------------------------------------------------------- */

static bool parse_count(const char *text, int64_t *out)
{
    char *end;
    long long v = text ? strtoll(text, &end, 10) : 0;
    if (!text || *end || v <= 0)
        return false;
    *out = v;
    return true;
}

/* lr first, then momentum where the groups have it, then any other scheduled key. */
static void pick_keys(sched_record *r, const ow_sched *s, const ow_sched_target *t)
{
    double v;
    r->keys[r->n_keys++] = "lr";
    if (t->get(t->ctx, 0, "momentum", &v))
        r->keys[r->n_keys++] = "momentum";
    for (size_t i = 0; i < ow_sched_get_num_params(s) && r->n_keys < SCHED_MAX_KEYS;
         i++) {
        const char *p = ow_sched_get_param(s, i);
        bool seen = false;
        for (size_t k = 0; k < r->n_keys; k++)
            seen |= !strcmp(r->keys[k], p);
        if (!seen)
            r->keys[r->n_keys++] = p;
    }
}

typedef struct resources {
    ow_cfg *cfg;
    ow_model *model;
    ow_groups *groups;
    ow_sched_target *target;
    ow_sched *sched;
    FILE *out;
    sched_record r;
    double *now;
} resources;

static void release(resources *x)
{
    ow_sched_free(x->sched);
    ow_sched_target_free(x->target);
    ow_groups_free(x->groups);
    ow_model_free(x->model);
    ow_cfg_free(x->cfg);
    free(x->r.iters);
    free(x->r.v);
    free(x->now);
    if (x->out && x->out != stdout)
        fclose(x->out);
}

static int usage_fail(const cli_command *cmd, const char *msg)
{
    fprintf(stderr, "optwrap schedule: %s\nusage: optwrap %s\n", msg, cmd->usage);
    return CLI_USAGE;
}

/* Everything after the arguments are known; CLI_OK or CLI_ERROR. */
static int schedule(resources *x, const cli_args *a, ow_sched_loop loop, ow_error *err)
{
    const char *model = cli_value(a, schedule_options, N_OPTIONS, "--model");
    const char *arch = cli_value(a, schedule_options, N_OPTIONS, "--arch");
    const char *out = cli_value(a, schedule_options, N_OPTIONS, "-o");
    bool csv = cli_value(a, schedule_options, N_OPTIONS, "--csv") != NULL;
    if (cli_load_config(a->positional[0], a->multi, a->n_multi, &x->cfg, err))
        return cli_fail(err);
    if ((model || arch) && cli_load_model(model, arch, &x->model, err))
        return CLI_ERROR;
    if (ow_cfg_check(x->cfg, err) ||
        (x->model && ow_groups_build(x->cfg, x->model, &x->groups, err)) ||
        ow_sched_target_new(x->cfg, x->groups, &x->target, err) ||
        ow_sched_new(x->cfg, x->target, &loop, &x->sched, err))
        return cli_fail(err);
    for (size_t i = 0; i < ow_sched_get_num_warnings(x->sched); i++) {
        char buf[OW_ERROR_FILE_LEN + OW_ERROR_TEXT_LEN + 32];
        ow_error_format(ow_sched_get_warning(x->sched, i), buf, sizeof buf);
        fprintf(stderr, "optwrap: warning: %s\n", buf);
    }
    ow_sched_loop l = ow_sched_get_loop(x->sched);
    sched_record *r = &x->r;
    r->title = a->positional[0][0] == '{' ? "<inline>" : a->positional[0];
    r->n_groups = x->target->num_groups;
    r->has_base_group = x->target->has_base_group;
    r->epoch_length = l.epoch_length;
    r->total = l.max_iters;
    if (r->total <= 0) {
        fprintf(stderr,
                "optwrap: the run's length is unknown: give --iters N, or --epochs "
                "E --epoch-length L (or train_cfg.max_epochs and --epoch-length)\n");
        return CLI_ERROR;
    }
    pick_keys(r, x->sched, x->target);
    size_t curves = r->n_keys * r->n_groups;
    r->iters = malloc(SCHED_MAX_SAMPLES * sizeof *r->iters);
    r->v = malloc(curves * SCHED_MAX_SAMPLES * sizeof *r->v);
    x->now = malloc(curves * sizeof *x->now);
    if (!r->iters || !r->v || !x->now) {
        fprintf(stderr, "optwrap: out of memory\n");
        return CLI_ERROR;
    }
    run_state st = {.r = r,
                    .t = x->target,
                    .groups = x->groups,
                    .now = x->now,
                    .stride = r->total / (SCHED_MAX_SAMPLES - 2) + 1};
    if (out && !(x->out = fopen(out, "w"))) {
        fprintf(stderr, "optwrap: %s: cannot write\n", out);
        return CLI_ERROR;
    }
    if (csv) {
        st.csv = x->out ? x->out : stdout;
        fprintf(st.csv, "iter,epoch");
        for (size_t k = 0; k < r->n_keys; k++)
            for (size_t g = 0; g < r->n_groups; g++) {
                char name[24];
                sched_group_name(r, g, name, sizeof name);
                fprintf(st.csv, ",%s[%s]", r->keys[k], name);
            }
        fputc('\n', st.csv);
    }
    if (run(&st, x->sched, l.max_epochs > 0 && l.epoch_length > 0, err))
        return cli_fail(err);
    if (!csv)
        print_report(r, &st, x->sched);
    if (out && !csv && sched_write_svg(x->out, r) != 0) {
        fprintf(stderr, "optwrap: %s: write failed\n", out);
        return CLI_ERROR;
    }
    if (out && !csv)
        printf("\nwrote %s\n", out);
    return CLI_OK;
}

int cli_schedule(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("schedule");
    cli_args a;
    int rc = cli_parse(argc, argv, cmd, schedule_options, N_OPTIONS, &a);
    if (rc != CLI_OK)
        return rc;
    if (a.help) {
        cli_help(stdout, cmd, schedule_options, N_OPTIONS);
        return CLI_OK;
    }
    if (a.n_positional != 1)
        return usage_fail(cmd, "expected one CONFIG");
    const char *iters = cli_value(&a, schedule_options, N_OPTIONS, "--iters");
    const char *epochs = cli_value(&a, schedule_options, N_OPTIONS, "--epochs");
    const char *length = cli_value(&a, schedule_options, N_OPTIONS, "--epoch-length");
    ow_sched_loop loop = {0, 0, 0};
    if ((iters && !parse_count(iters, &loop.max_iters)) ||
        (epochs && !parse_count(epochs, &loop.max_epochs)) ||
        (length && !parse_count(length, &loop.epoch_length)))
        return usage_fail(cmd,
                          "--iters, --epochs and --epoch-length take a positive count");
    if (iters && epochs)
        return usage_fail(cmd, "give either --iters or --epochs, not both");
    if (epochs && !length)
        return usage_fail(cmd, "--epochs needs --epoch-length");
    if (cli_value(&a, schedule_options, N_OPTIONS, "--model") &&
        cli_value(&a, schedule_options, N_OPTIONS, "--arch"))
        return usage_fail(cmd, "give either --model or --arch, not both");
    resources x = {0};
    ow_error err;
    ow_error_clear(&err);
    rc = schedule(&x, &a, loop, &err);
    release(&x);
    return rc;
}
