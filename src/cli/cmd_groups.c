/* cmd_groups.c -- `optwrap groups CONFIG --model MODEL` (or `--arch NAME`, a built-in
 * architecture): the param groups a model gets,
 * as a table in the spirit of mmengine's paramwise_options debug log, as JSON shaped
 * like the golden files' groups_effective, or per parameter with --explain. */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const cli_option groups_options[] = {
    {"--arch", 1,
     "a built-in architecture instead of --model (optwrap model --list-archs)"},
    {"--cfg-options", 2, "override config keys: a.b.c=VALUE (YAML value)"},
    {"--csv", 0, "one row per group, every key, exact values"},
    {"--explain", 0, "for every parameter, the rule that decided its settings"},
    {"--format", 1, "table (default), json or csv"},
    {"--model", 1, "the model tree (optwrap-model/1 YAML)"},
};

/* A group option as text: numbers in Python repr, lists as [a, b]. */
static void print_value(const ow_cfg *v)
{
    char *text = NULL;
    ow_error err;
    if (ow_cfg_save_json(v, &text, &err) == OW_OK)
        fputs(text, stdout);
    ow_free(text);
}

static const char *const main_keys[] = {"lr", "weight_decay"};

/* Python's repr of a double: the shortest text that reads back, "1.0" when integral. */
static void print_double(double x)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    fputs(buf, stdout);
    if (!strpbrk(buf, ".eEn"))
        fputs(".0", stdout);
}

/* lr, the lr the group steps with (lr * lr_scale where the optimizer applies lr_scale)
 * when the group has an lr_scale, weight_decay, then the other keys. */
static void print_options(const ow_groups *g, size_t gi, bool main_only)
{
    const ow_cfg *opts = ow_groups_get_options(g, gi);
    for (size_t m = 0; m < 2; m++) {
        const ow_cfg *v = ow_cfg_find(opts, main_keys[m]);
        if (v) {
            printf(" %s=", main_keys[m]);
            print_value(v);
        }
        double eff;
        ow_error err;
        if (m == 0 && ow_cfg_find(opts, "lr_scale") &&
            ow_groups_get_effective_lr(g, gi, &eff, &err) == OW_OK) {
            printf(" effective_lr=");
            print_double(eff);
        }
    }
    if (main_only)
        return;
    for (size_t k = 0; k < ow_cfg_get_size(opts); k++) {
        const char *key = ow_cfg_get_key(opts, k);
        if (!strcmp(key, "lr") || !strcmp(key, "weight_decay"))
            continue;
        printf(" %s=", key);
        print_value(ow_cfg_get_item(opts, k));
    }
}

/* ---- the table: common keys once, then the columns that vary -------------------- */

#define MAX_COLUMNS 64

typedef struct table {
    size_t n_rows, n_cols;
    const char *cols[MAX_COLUMNS]; /* option keys, in order of first appearance */
    char **cells;                  /* [n_rows * MAX_COLUMNS]: exact text, NULL: absent */
} table;

/* A value as JSON text: exact (shortest round-trip numbers). */
static char *value_text(const ow_cfg *v)
{
    char *text = NULL;
    ow_error err;
    if (ow_cfg_save_json(v, &text, &err) != OW_OK)
        return NULL;
    char *copy = strdup(text);
    ow_free(text);
    return copy;
}

static char *double_text(double x)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", x);
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    return strdup(buf);
}

/* lr, effective_lr (where the group has an lr_scale), weight_decay, then the other keys
 * in the order they first appear. Returns -1 when out of memory. */
static int table_fill(table *t, const ow_groups *g)
{
    t->n_rows = ow_groups_get_count(g);
    t->n_cols = 0;
    t->cells = calloc((t->n_rows ? t->n_rows : 1) * MAX_COLUMNS, sizeof *t->cells);
    if (!t->cells)
        return -1;
    t->cols[t->n_cols++] = "lr";
    for (size_t gi = 0; gi < t->n_rows; gi++)
        if (ow_cfg_find(ow_groups_get_options(g, gi), "lr_scale")) {
            t->cols[t->n_cols++] = "effective_lr";
            break;
        }
    t->cols[t->n_cols++] = "weight_decay";
    for (size_t gi = 0; gi < t->n_rows; gi++) {
        const ow_cfg *opts = ow_groups_get_options(g, gi);
        for (size_t k = 0; k < ow_cfg_get_size(opts); k++) {
            const char *key = ow_cfg_get_key(opts, k);
            size_t c = 0;
            while (c < t->n_cols && strcmp(t->cols[c], key))
                c++;
            if (c == t->n_cols) {
                if (t->n_cols == MAX_COLUMNS)
                    continue;
                t->cols[t->n_cols++] = key;
            }
            if (!(t->cells[gi * MAX_COLUMNS + c] = value_text(ow_cfg_get_item(opts, k))))
                return -1;
        }
        double eff;
        ow_error err;
        if (!strcmp(t->cols[1], "effective_lr") && ow_cfg_find(opts, "lr_scale") &&
            ow_groups_get_effective_lr(g, gi, &eff, &err) == OW_OK &&
            !(t->cells[gi * MAX_COLUMNS + 1] = double_text(eff)))
            return -1;
    }
    /* drop the columns no group has (lr or weight_decay for some optimizers) */
    size_t kept = 0;
    for (size_t c = 0; c < t->n_cols; c++) {
        bool any = false;
        for (size_t r = 0; r < t->n_rows && !any; r++)
            any = t->cells[r * MAX_COLUMNS + c] != NULL;
        if (!any)
            continue;
        t->cols[kept] = t->cols[c];
        for (size_t r = 0; r < t->n_rows && kept != c; r++) {
            t->cells[r * MAX_COLUMNS + kept] = t->cells[r * MAX_COLUMNS + c];
            t->cells[r * MAX_COLUMNS + c] = NULL;
        }
        kept++;
    }
    t->n_cols = kept;
    return 0;
}

static void table_free(table *t)
{
    for (size_t i = 0; t->cells && i < t->n_rows * MAX_COLUMNS; i++)
        free(t->cells[i]);
    free(t->cells);
}

static const char *cell(const table *t, size_t row, size_t col)
{
    return t->cells[row * MAX_COLUMNS + col];
}

/* True when column col has the same text in every row (and some row has it). */
static bool column_common(const table *t, size_t col)
{
    const char *first = t->n_rows ? cell(t, 0, col) : NULL;
    if (!first)
        return false;
    for (size_t r = 1; r < t->n_rows; r++)
        if (!cell(t, r, col) || strcmp(cell(t, r, col), first))
            return false;
    return true;
}

/* Exact JSON text rounded for reading: every number in it printed with %.6g
 * ("0.003000000000000118" as "0.003"); strings, bools and null as they are. */
static void human_text(const char *exact, char *out, size_t n)
{
    size_t len = strlen(exact);
    if (len >= 2 && exact[0] == '"' && !strchr(exact, '\\') &&
        strchr(exact + 1, '"') == exact + len - 1) { /* a plain string: unquoted */
        snprintf(out, n, "%.*s", (int)len - 2, exact + 1);
        return;
    }
    size_t o = 0;
    const char *p = exact;
    while (*p && o + 1 < n) {
        if (*p == '"') { /* copy a string literal whole */
            const char *q = p + 1;
            while (*q && *q != '"')
                q += (*q == '\\' && q[1]) ? 2 : 1;
            if (*q)
                q++;
            while (p < q && o + 1 < n)
                out[o++] = *p++;
        } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
            char *end;
            double x = strtod(p, &end);
            if (end == p) { /* "-" alone */
                out[o++] = *p++;
                continue;
            }
            bool integral = true;
            for (const char *c = p; c < end; c++)
                if (*c == '.' || *c == 'e' || *c == 'E')
                    integral = false;
            int len = integral ? (int)(end - p) : snprintf(NULL, 0, "%.6g", x);
            if (o + (size_t)len + 1 > n)
                break;
            if (integral)
                memcpy(out + o, p, (size_t)len);
            else
                snprintf(out + o, n - o, "%.6g", x);
            o += (size_t)len;
            p = end;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

static void print_table(const ow_groups *g, const table *t)
{
    const ow_model *m = ow_groups_get_model(g);
    char text[512];
    /* the keys every group has with the same value, once */
    bool common[MAX_COLUMNS];
    size_t n_common = 0;
    for (size_t c = 0; c < t->n_cols; c++) {
        common[c] = t->n_rows > 1 && column_common(t, c);
        if (common[c]) {
            human_text(cell(t, 0, c), text, sizeof text);
            printf("%s%s %s", n_common++ ? ", " : "every group: ", t->cols[c], text);
        }
    }
    if (n_common)
        printf("\n");
    /* column widths: header, then every row's rounded text */
    size_t width[MAX_COLUMNS + 2];
    width[0] = strlen("group");
    width[1] = strlen("params");
    for (size_t c = 0; c < t->n_cols; c++)
        width[c + 2] = strlen(t->cols[c]);
    for (size_t r = 0; r < t->n_rows; r++) {
        snprintf(text, sizeof text, "%zu", r);
        if (strlen(text) > width[0])
            width[0] = strlen(text);
        snprintf(text, sizeof text, "%zu", ow_groups_get_num_params(g, r));
        if (strlen(text) > width[1])
            width[1] = strlen(text);
        for (size_t c = 0; c < t->n_cols; c++) {
            human_text(cell(t, r, c) ? cell(t, r, c) : "-", text, sizeof text);
            if (!common[c] && strlen(text) > width[c + 2])
                width[c + 2] = strlen(text);
        }
    }
    printf("%-*s  %*s", (int)width[0], "group", (int)width[1], "params");
    for (size_t c = 0; c < t->n_cols; c++)
        if (!common[c])
            printf("  %-*s", (int)width[c + 2], t->cols[c]);
    printf("  why\n");
    size_t n_params = 0, distinct = 0;
    int64_t numel = 0;
    for (size_t r = 0; r < t->n_rows; r++) {
        printf("%-*zu  %*zu", (int)width[0], r, (int)width[1],
               ow_groups_get_num_params(g, r));
        for (size_t c = 0; c < t->n_cols; c++) {
            if (common[c])
                continue;
            human_text(cell(t, r, c) ? cell(t, r, c) : "-", text, sizeof text);
            printf("  %-*s", (int)width[c + 2], text);
        }
        const char *why = ow_groups_get_reason(g, r);
        printf("  %s\n", *why ? why : "optimizer defaults");
        for (size_t j = 0; j < ow_groups_get_num_params(g, r); j++) {
            ow_param_view pv;
            ow_model_get_param(m, ow_groups_get_param(g, r, j), &pv);
            n_params++;
            numel += pv.numel;
        }
        /* a distinct setting: no earlier group has the same values (param_name aside) */
        size_t e = 0;
        for (; e < r; e++) {
            size_t c = 0;
            for (; c < t->n_cols; c++) {
                const char *a = cell(t, r, c), *b = cell(t, e, c);
                if (!strcmp(t->cols[c], "param_name"))
                    continue;
                if ((a == NULL) != (b == NULL) || (a && strcmp(a, b)))
                    break;
            }
            if (c == t->n_cols)
                break;
        }
        distinct += e == r;
    }
    printf("%zu groups, %zu distinct settings; %zu parameters, %" PRId64 " elements\n",
           t->n_rows, distinct, n_params, numel);
    bool scaled = false;
    for (size_t c = 0; c < t->n_cols; c++)
        scaled = scaled || !strcmp(t->cols[c], "effective_lr");
    if (scaled)
        printf(
            "effective_lr: the lr a group steps with before any schedule (optwrap's "
            "optimizer applies timm's lr_scale; mmpretrain and mmseg fold it into lr)\n");
}

/* A CSV field: quoted when it holds a comma, a quote or a line break. */
static void csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

/* One row per group: every key, exact values, the reason last. */
static void print_csv(const ow_groups *g, const table *t)
{
    printf("group,params");
    for (size_t c = 0; c < t->n_cols; c++) {
        putchar(',');
        csv_field(t->cols[c]);
    }
    printf(",why\n");
    for (size_t r = 0; r < t->n_rows; r++) {
        printf("%zu,%zu", r, ow_groups_get_num_params(g, r));
        for (size_t c = 0; c < t->n_cols; c++) {
            putchar(',');
            const char *v = cell(t, r, c);
            if (v && v[0] == '"' && !strpbrk(v + 1, "\\"))
                printf("%.*s", (int)strlen(v) - 2, v + 1); /* a plain string, unquoted */
            else if (v)
                csv_field(v);
        }
        putchar(',');
        csv_field(ow_groups_get_reason(g, r));
        putchar('\n');
    }
}

/* Every parameter occurrence, with its group, effective lr / weight decay and the rule.
 */
static int print_explain(const ow_groups *g)
{
    const ow_model *m = ow_groups_get_model(g);
    size_t np = ow_model_get_num_params(m);
    long *group_of = malloc((np ? np : 1) * sizeof *group_of);
    if (!group_of) {
        fprintf(stderr, "optwrap: out of memory\n");
        return CLI_ERROR;
    }
    for (size_t i = 0; i < np; i++)
        group_of[i] = -1;
    for (size_t gi = 0; gi < ow_groups_get_count(g); gi++)
        for (size_t j = 0; j < ow_groups_get_num_params(g, gi); j++)
            group_of[ow_groups_get_param(g, gi, j)] = (long)gi;
    for (size_t i = 0; i < np; i++) {
        ow_param_view pv;
        ow_model_get_param(m, i, &pv);
        printf("%-48s ", pv.full_name);
        long found = group_of[i];
        if (found < 0) {
            const char *why = ow_groups_get_param_reason(g, i);
            printf("skipped (%s)\n", *why                ? why
                                     : !pv.requires_grad ? "frozen: requires_grad false"
                                     : pv.is_shared ? "shared with an earlier parameter"
                                                    : "not in any group");
            continue;
        }
        printf("group %ld:", found);
        print_options(g, (size_t)found, true);
        const char *why = ow_groups_get_param_reason(g, i);
        if (!*why)
            why = ow_groups_get_reason(g, (size_t)found);
        printf("  %s\n", *why ? why : "optimizer defaults");
    }
    free(group_of);
    return CLI_OK;
}

int cli_groups(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("groups");
    size_t n_opts = sizeof groups_options / sizeof *groups_options;
    cli_args a;
    int st = cli_parse(argc, argv, cmd, groups_options, n_opts, &a);
    if (st != CLI_OK)
        return st;
    if (a.help) {
        cli_help(stdout, cmd, groups_options, n_opts);
        return CLI_OK;
    }
    const char *format = cli_value(&a, groups_options, n_opts, "--format");
    const char *model_path = cli_value(&a, groups_options, n_opts, "--model");
    const char *arch = cli_value(&a, groups_options, n_opts, "--arch");
    if (a.n_positional != 1 || !model_path == !arch ||
        (format && strcmp(format, "table") && strcmp(format, "json") &&
         strcmp(format, "csv"))) {
        fprintf(stderr,
                "optwrap groups: expected CONFIG, one of --model MODEL and --arch "
                "NAME, and --format table|json|csv\nusage: optwrap %s\n",
                cmd->usage);
        return CLI_USAGE;
    }
    ow_error err;
    ow_error_clear(&err);
    ow_cfg *cfg = NULL;
    ow_model *model = NULL;
    ow_groups *groups = NULL;
    int rc = cli_load_config(a.positional[0], a.multi, a.n_multi, &cfg, &err);
    if (!rc && cli_load_model(model_path, arch, &model, &err)) {
        ow_cfg_free(cfg);
        return CLI_ERROR;
    }
    if (!rc)
        rc = ow_cfg_check(cfg, &err);
    if (!rc)
        rc = ow_groups_build(cfg, model, &groups, &err);
    for (size_t i = 0; !rc && i < ow_groups_get_num_warnings(groups); i++)
        fprintf(stderr, "optwrap: warning: %s\n", ow_groups_get_warning(groups, i));
    if (!rc) {
        if (cli_value(&a, groups_options, n_opts, "--explain")) {
            st = print_explain(groups);
        } else if (format && !strcmp(format, "json")) {
            char *text = NULL;
            if (!(rc = ow_groups_save_json(groups, &text, &err)))
                printf("%s\n", text);
            ow_free(text);
        } else {
            table t;
            bool csv = cli_value(&a, groups_options, n_opts, "--csv") ||
                       (format && !strcmp(format, "csv"));
            if (table_fill(&t, groups) != 0) {
                fprintf(stderr, "optwrap: out of memory\n");
                st = CLI_ERROR;
            } else if (csv) {
                print_csv(groups, &t);
            } else {
                print_table(groups, &t);
            }
            table_free(&t);
        }
    }
    ow_groups_free(groups);
    ow_model_free(model);
    ow_cfg_free(cfg);
    return rc ? cli_fail(&err) : st;
}
