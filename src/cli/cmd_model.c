/* cmd_model.c -- `optwrap model MODEL.yaml` (or `--arch NAME`, a built-in
 * architecture): a model tree's modules, parameters and element counts, or the tree
 * itself as optwrap-model/1 YAML; `--list-archs` lists the built-in names. */
#include "cli.h"

#include <inttypes.h>
#include <string.h>

static const cli_option model_options[] = {
    {"--arch", 1, "a built-in architecture instead of a MODEL file (see --list-archs)"},
    {"--format", 1, "summary (default) or yaml"},
    {"--list-archs", 0, "list the built-in architecture names"},
};

static void print_shape(const ow_param_view *pv)
{
    printf("[");
    for (int d = 0; d < pv->ndim; d++)
        printf("%s%" PRId64, d ? ", " : "", pv->shape[d]);
    printf("]");
}

static void print_summary(const ow_model *m)
{
    static const char *const kinds[] = {"", "norm", "conv", "linear", "embedding"};
    printf("model %s: %zu modules, %zu parameters (%zu tensors), %" PRId64 " elements\n",
           ow_model_get_name(m), ow_model_get_num_modules(m), ow_model_get_num_params(m),
           ow_model_get_num_tensors(m), ow_model_get_numel(m));
    /* the model-level facts (timm's no_weight_decay, group_matcher) as JSON */
    const ow_cfg *facts = ow_model_get_facts(m, NULL);
    for (size_t i = 0; i < ow_cfg_get_size(facts); i++) {
        char *text = NULL;
        ow_error err;
        if (ow_cfg_save_json(ow_cfg_get_item(facts, i), &text, &err) == OW_OK)
            printf("%s: %s\n", ow_cfg_get_key(facts, i), text);
        ow_free(text);
    }
    size_t p = 0, np = ow_model_get_num_params(m);
    for (size_t i = 0; i < ow_model_get_num_modules(m); i++) {
        const ow_module_info *mi = ow_model_get_module(m, i);
        printf("%s%s  (%s", *mi->name ? mi->name : "(root)", "", mi->type);
        if (mi->kind != OW_MODULE_OTHER)
            printf(", %s", kinds[mi->kind]);
        if (mi->kind == OW_MODULE_CONV)
            printf(", %" PRId64 "->%" PRId64 ", groups %" PRId64, mi->in_channels,
                   mi->out_channels, mi->groups);
        printf(")\n");
        for (; p < np; p++) {
            ow_param_view pv;
            ow_model_get_param(m, p, &pv);
            if (strcmp(pv.module, mi->name))
                break;
            printf("    %-28s ", pv.name);
            print_shape(&pv);
            printf(" %" PRId64, pv.numel);
            if (!pv.requires_grad)
                printf("  frozen");
            if (pv.is_shared)
                printf("  shared");
            printf("\n");
        }
    }
}

int cli_model(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("model");
    size_t n_opts = sizeof model_options / sizeof *model_options;
    cli_args a;
    int st = cli_parse(argc, argv, cmd, model_options, n_opts, &a);
    if (st != CLI_OK)
        return st;
    if (a.help) {
        cli_help(stdout, cmd, model_options, n_opts);
        return CLI_OK;
    }
    const char *format = cli_value(&a, model_options, n_opts, "--format");
    const char *arch = cli_value(&a, model_options, n_opts, "--arch");
    if (cli_value(&a, model_options, n_opts, "--list-archs")) {
        if (a.n_positional || arch || format) {
            fprintf(stderr,
                    "optwrap model: --list-archs takes no MODEL, --arch or "
                    "--format\nusage: optwrap %s\n",
                    cmd->usage);
            return CLI_USAGE;
        }
        for (size_t i = 0; ow_model_get_arch(i); i++)
            printf("%s\n", ow_model_get_arch(i));
        return CLI_OK;
    }
    if (a.n_positional + (arch != NULL) != 1 ||
        (format && strcmp(format, "summary") && strcmp(format, "yaml"))) {
        fprintf(stderr,
                "optwrap model: expected one MODEL file or --arch NAME, and "
                "--format summary|yaml\nusage: optwrap %s\n",
                cmd->usage);
        return CLI_USAGE;
    }
    ow_error err;
    ow_error_clear(&err);
    ow_model *m = NULL;
    if (cli_load_model(a.n_positional ? a.positional[0] : NULL, arch, &m, &err))
        return CLI_ERROR;
    int rc = OW_OK;
    if (format && !strcmp(format, "yaml")) {
        char *text = NULL;
        if (!(rc = ow_model_save(m, &text, &err)))
            fputs(text, stdout);
        ow_free(text);
    } else {
        print_summary(m);
    }
    ow_model_free(m);
    return rc ? cli_fail(&err) : CLI_OK;
}
