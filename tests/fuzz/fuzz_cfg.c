/* fuzz_cfg.c -- a config file: ow_cfg_load_string, ow_cfg_check, then ow_groups_build
 * over the fixed model and the config written back as YAML and JSON. Configs that
 * import plugins are not checked (that would dlopen what the fuzzer names). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const ow_model *model = fuzz_model();
    char *text = fuzz_text(data, size);
    ow_error err;
    ow_cfg *cfg = NULL;
    ow_groups *groups = NULL;
    char *out = NULL;
    if (ow_cfg_load_string(text, "fuzz.yaml", &cfg, &err) != OW_OK)
        goto done;
    if (ow_cfg_save_yaml(cfg, &out, &err) == OW_OK)
        ow_free(out);
    out = NULL;
    if (ow_cfg_save_json(cfg, &out, &err) == OW_OK)
        ow_free(out);
    out = NULL;
    if (ow_cfg_find(cfg, "custom_imports"))
        goto done;
    if (ow_cfg_check(cfg, &err) != OW_OK)
        goto done;
    if (ow_groups_build(cfg, model, &groups, &err) != OW_OK)
        goto done;
    if (ow_groups_save_json(groups, &out, &err) == OW_OK)
        ow_free(out);
done:
    ow_groups_free(groups);
    ow_cfg_free(cfg);
    free(text);
    return 0;
}
