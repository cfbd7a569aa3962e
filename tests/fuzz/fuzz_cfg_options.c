/* fuzz_cfg_options.c -- `--cfg-options` strings: each line of the input is one
 * "a.b.c=VALUE" applied with ow_cfg_set to a copy of a fixed config, which is then
 * checked and written back. */
#include "fuzz.h"

static const char base_yaml[] =
    "optim_wrapper:\n"
    "  type: OptimWrapper\n"
    "  optimizer: {type: AdamW, lr: 0.001, betas: [0.9, 0.999], weight_decay: 0.05}\n"
    "  paramwise_cfg:\n"
    "    norm_decay_mult: 0.0\n"
    "    custom_keys: {cls_token: {decay_mult: 0.0}, '.pos_embed': {decay_mult: 0.0}}\n"
    "  clip_grad: {max_norm: 1.0}\n"
    "param_scheduler:\n"
    "  - {type: LinearLR, start_factor: 0.001, by_epoch: true, begin: 0, end: 5,"
    " convert_to_iter_based: true}\n"
    "  - {type: CosineAnnealingLR, T_max: 95, by_epoch: true, begin: 5, end: 100}\n"
    "train_cfg: {by_epoch: true, max_epochs: 100, val_interval: 1}\n"
    "model: {type: ImageClassifier, backbone: {type: VisionTransformer, arch: b}}\n"
    "data: [1, 2, [3, 4], {a: b}]\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ow_cfg *base;
    if (!base && ow_cfg_load_string(base_yaml, "base.yaml", &base, NULL) != OW_OK)
        abort();
    char *text = fuzz_text(data, size);
    ow_error err;
    ow_cfg *cfg = NULL;
    char *out = NULL;
    if (ow_cfg_copy(base, &cfg, &err) != OW_OK)
        goto done;
    char *line = text;
    for (int n = 0; line && n < 16; n++) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        ow_cfg_set(cfg, line, &err);
        line = next;
    }
    if (ow_cfg_save_yaml(cfg, &out, &err) == OW_OK)
        ow_free(out);
    if (!ow_cfg_find(cfg, "custom_imports"))
        ow_cfg_check(cfg, &err);
done:
    ow_cfg_free(cfg);
    free(text);
    return 0;
}
