/* mm_vit.c -- mmpretrain's VisionTransformer (ViT and DeiT archs, configs/_base_/models/
 * vit-*.py: VisionTransformerClsHead, final ln1) and BEiTViT (the BEiT fine-tuning
 * config: relative position bias per layer, layer scale gamma_1/gamma_2, q_bias/v_bias,
 * avg_featmap ln2 and a LinearClsHead), one arch_zoo row per size. */
#include "arch_internal.h"

typedef struct vit_cfg {
    bool beit;
    int64_t dims, layers, heads, ffn, patch;
} vit_cfg;

#define IMG 224 /* every config builds for 224x224 */

/* backbone.patch_embed: mmcv's PatchEmbed with corner padding and no norm. */
static void patch_embed(ow__arch *a, const vit_cfg *c)
{
    ow__arch_mod(a, "PatchEmbed", "backbone.patch_embed");
    ow__arch_mod(a, "AdaptivePadding", "backbone.patch_embed.adaptive_padding");
    ow__arch_conv(a, 3, c->dims, c->patch, 1, true, "backbone.patch_embed.projection");
    ow__arch_mod(a, "Dropout", "backbone.drop_after_pos");
    ow__arch_mod(a, "ModuleList", "backbone.layers");
}

/* TransformerEncoderLayer: ln1, mmpretrain's MultiheadAttention, ln2, FFN. */
static void vit_layer(ow__arch *a, const vit_cfg *c, const char *p)
{
    int64_t d = c->dims;
    ow__arch_mod(a, "TransformerEncoderLayer", "%s", p);
    ow__arch_norm(a, "LayerNorm", d, "%s.ln1", p);
    ow__arch_mod(a, "MultiheadAttention", "%s.attn", p);
    ow__arch_linear(a, d, 3 * d, true, "%s.attn.qkv", p);
    ow__arch_linear(a, d, d, true, "%s.attn.proj", p);
    ow__arch_mod(a, "Dropout", "%s.attn.proj_drop", p);
    ow__arch_mod(a, "DropPath", "%s.attn.out_drop", p);
    ow__arch_mod(a, "Identity", "%s.attn.gamma1", p);
    ow__arch_norm(a, "LayerNorm", d, "%s.ln2", p);
    char ffn[OW__ARCH_NAME_MAX];
    ow__arch_name(a, ffn, "%s.ffn", p);
    ow__arch_mm_ffn(a, ffn, d, c->ffn);
}

/* BEiTTransformerEncoderLayer: the parent's ln1/attn/ln2/ffn slots keep their places
 * when BEiT replaces attn and ffn, then drop_path comes last. */
static void beit_layer(ow__arch *a, const vit_cfg *c, const char *p)
{
    int64_t d = c->dims, window = IMG / c->patch;
    ow__arch_mod(a, "BEiTTransformerEncoderLayer", "%s", p);
    ow__arch_param(a, "gamma_1", OW__SHAPE(d));
    ow__arch_param(a, "gamma_2", OW__SHAPE(d));
    ow__arch_norm(a, "LayerNorm", d, "%s.ln1", p);
    ow__arch_mod(a, "BEiTAttention", "%s.attn", p);
    ow__arch_param(a, "q_bias", OW__SHAPE(d));
    ow__arch_param(a, "v_bias", OW__SHAPE(d));
    /* (2Wh-1)(2Ww-1) offsets plus cls-to-token, token-to-cls and cls-to-cls */
    ow__arch_param(a, "relative_position_bias_table",
                   OW__SHAPE((2 * window - 1) * (2 * window - 1) + 3, c->heads));
    ow__arch_linear(a, d, 3 * d, false, "%s.attn.qkv", p);
    ow__arch_mod(a, "Dropout", "%s.attn.attn_drop", p);
    ow__arch_linear(a, d, d, true, "%s.attn.proj", p);
    ow__arch_mod(a, "Dropout", "%s.attn.proj_drop", p);
    ow__arch_norm(a, "LayerNorm", d, "%s.ln2", p);
    char ffn[OW__ARCH_NAME_MAX];
    ow__arch_name(a, ffn, "%s.ffn", p);
    ow__arch_mm_ffn(a, ffn, d, c->ffn);
    ow__arch_mod(a, "DropPath", "%s.drop_path", p);
}

static void build_vit(ow__arch *a, const void *cfg)
{
    const vit_cfg *c = cfg;
    int64_t d = c->dims, patches = (IMG / c->patch) * (IMG / c->patch);
    ow__arch_mm_root(a);
    ow__arch_mod(a, c->beit ? "BEiTViT" : "VisionTransformer", "backbone");
    ow__arch_param(a, "cls_token", OW__SHAPE(1, 1, d));
    if (!c->beit) /* BEiT uses relative position bias instead */
        ow__arch_param(a, "pos_embed", OW__SHAPE(1, patches + 1, d));
    patch_embed(a, c);
    for (int64_t i = 0; i < c->layers; i++) {
        char p[OW__ARCH_NAME_MAX];
        ow__arch_name(a, p, "backbone.layers.%lld", (long long)i);
        if (c->beit)
            beit_layer(a, c, p);
        else
            vit_layer(a, c, p);
    }
    if (c->beit) {
        /* final_norm=False, out_type='avg_featmap' */
        ow__arch_norm(a, "LayerNorm", d, "backbone.ln2");
        ow__arch_mm_linear_head(a, d);
    } else {
        ow__arch_mod(a, "Identity", "backbone.pre_norm");
        ow__arch_norm(a, "LayerNorm", d, "backbone.ln1");
        ow__arch_mm_vit_head(a, d);
    }
}

/* VisionTransformer.arch_zoo: s, b, l, h and deit-t/s/b */
static const vit_cfg vit_s16 = {false, 768, 8, 8, 768 * 3, 16};
static const vit_cfg vit_b16 = {false, 768, 12, 12, 3072, 16};
static const vit_cfg vit_b32 = {false, 768, 12, 12, 3072, 32};
static const vit_cfg vit_l16 = {false, 1024, 24, 16, 4096, 16};
static const vit_cfg vit_l32 = {false, 1024, 24, 16, 4096, 32};
static const vit_cfg vit_h14 = {false, 1280, 32, 16, 5120, 14};
static const vit_cfg deit_t = {false, 192, 12, 3, 192 * 4, 16};
static const vit_cfg deit_s = {false, 384, 12, 6, 384 * 4, 16};
static const vit_cfg deit_b = {false, 768, 12, 12, 768 * 4, 16};
static const vit_cfg beit_b16 = {true, 768, 12, 12, 3072, 16};
static const vit_cfg beit_l16 = {true, 1024, 24, 16, 4096, 16};

const ow__arch_def ow__arch_mm_vit[] = {
    {"vit-small-p16", build_vit, &vit_s16},   {"vit-base-p16", build_vit, &vit_b16},
    {"vit-base-p32", build_vit, &vit_b32},    {"vit-large-p16", build_vit, &vit_l16},
    {"vit-large-p32", build_vit, &vit_l32},   {"vit-huge-p14", build_vit, &vit_h14},
    {"deit-tiny", build_vit, &deit_t},        {"deit-small", build_vit, &deit_s},
    {"deit-base", build_vit, &deit_b},        {"beit-base-p16", build_vit, &beit_b16},
    {"beit-large-p16", build_vit, &beit_l16}, {NULL, NULL, NULL},
};
