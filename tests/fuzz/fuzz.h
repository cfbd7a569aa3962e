/* fuzz.h -- what the libFuzzer targets of tests/fuzz/ share: the entry point, the
 * input as a NUL-terminated string, and a small fixed model and config to build on.
 * Every target frees all it made, so that ASan's leak check at exit means a real leak. */
#ifndef OW_FUZZ_H
#define OW_FUZZ_H

#include "optwrap.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data[size] as a new NUL-terminated string (an embedded NUL ends it early); the
 * caller frees it with free(). Aborts when out of memory: that is not a finding. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    return text;
}

/* A small ViT-like tree: norms, biases, a conv, numbered blocks, tokens and a head:
 * every kind of parameter a paramwise rule or a layer-depth rule looks at. 44 floats. */
static const char fuzz_model_yaml[] =
    "format: optwrap-model/1\n"
    "name: fuzz\n"
    "modules:\n"
    "  - {name: '', type: ImageClassifier}\n"
    "  - name: backbone\n"
    "    type: VisionTransformer\n"
    "    params:\n"
    "      - {name: cls_token, shape: [1, 1, 2]}\n"
    "      - {name: pos_embed, shape: [1, 2, 2]}\n"
    "  - {name: backbone.patch_embed, type: PatchEmbed}\n"
    "  - name: backbone.patch_embed.projection\n"
    "    type: Conv2d\n"
    "    kind: conv\n"
    "    in_channels: 1\n"
    "    out_channels: 2\n"
    "    groups: 1\n"
    "    params:\n"
    "      - {name: weight, shape: [2, 1, 1, 1]}\n"
    "      - {name: bias, shape: [2]}\n"
    "  - {name: backbone.layers, type: ModuleList}\n"
    "  - {name: backbone.layers.0, type: TransformerEncoderLayer}\n"
    "  - name: backbone.layers.0.ln1\n"
    "    type: LayerNorm\n"
    "    params:\n"
    "      - {name: weight, shape: [2]}\n"
    "      - {name: bias, shape: [2]}\n"
    "  - name: backbone.layers.0.attn.qkv\n"
    "    type: Linear\n"
    "    params:\n"
    "      - {name: weight, shape: [2, 2]}\n"
    "      - {name: bias, shape: [2]}\n"
    "  - {name: backbone.layers.1, type: TransformerEncoderLayer}\n"
    "  - name: backbone.layers.1.ln1\n"
    "    type: LayerNorm\n"
    "    params:\n"
    "      - {name: weight, shape: [2]}\n"
    "      - {name: bias, shape: [2]}\n"
    "  - name: backbone.ln1\n"
    "    type: LayerNorm\n"
    "    params:\n"
    "      - {name: weight, shape: [2]}\n"
    "      - {name: bias, shape: [2]}\n"
    "  - {name: head, type: VisionTransformerClsHead}\n"
    "  - name: head.layers.head\n"
    "    type: Linear\n"
    "    params:\n"
    "      - {name: weight, shape: [3, 2]}\n"
    "      - {name: bias, shape: [3]}\n";

/* The fixed model, loaded once (NULL when it does not load: then nothing is fuzzed). */
static inline const ow_model *fuzz_model(void)
{
    static ow_model *model;
    static int tried;
    if (!tried) {
        tried = 1;
        if (ow_model_load_string(fuzz_model_yaml, "fuzz-model", &model, NULL) != OW_OK)
            abort();
    }
    return model;
}

#endif
