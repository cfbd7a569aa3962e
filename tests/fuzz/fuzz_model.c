/* fuzz_model.c -- a model file: ow_model_load_string, then the tree written back and
 * its parameters walked. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    ow_error err;
    ow_model *model = NULL;
    char *out = NULL;
    if (ow_model_load_string(text, "fuzz-model.yaml", &model, &err) == OW_OK) {
        if (ow_model_save(model, &out, &err) == OW_OK)
            ow_free(out);
        size_t n = ow_model_get_num_params(model);
        for (size_t i = 0; i < n; i++) {
            ow_param_view v;
            ow_model_get_param(model, i, &v);
        }
        (void)ow_model_get_numel(model);
    }
    ow_model_free(model);
    free(text);
    return 0;
}
