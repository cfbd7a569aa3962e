/* mm_swin.c -- mmpretrain's SwinTransformer (the swin_transformer base configs: img 224,
 * window 7, GlobalAveragePooling neck, LinearClsHead): PatchEmbed with a norm,
 * SwinBlockSequence stages of shifted-window blocks, PatchMerging between stages and
 * the norm3 output norm. */
#include "arch_internal.h"

typedef struct swin_cfg {
    int64_t dims;
    int depths[4];
    int64_t heads[4];
} swin_cfg;

#define WINDOW 7

static void swin_block(ow__arch *a, const char *p, int64_t d, int64_t heads)
{
    ow__arch_mod(a, "SwinBlock", "%s", p);
    ow__arch_norm(a, "LayerNorm", d, "%s.norm1", p);
    ow__arch_mod(a, "ShiftWindowMSA", "%s.attn", p);
    ow__arch_mod(a, "WindowMSA", "%s.attn.w_msa", p);
    ow__arch_param(a, "relative_position_bias_table",
                   OW__SHAPE((2 * WINDOW - 1) * (2 * WINDOW - 1), heads));
    ow__arch_linear(a, d, 3 * d, true, "%s.attn.w_msa.qkv", p);
    ow__arch_mod(a, "Dropout", "%s.attn.w_msa.attn_drop", p);
    ow__arch_linear(a, d, d, true, "%s.attn.w_msa.proj", p);
    ow__arch_mod(a, "Dropout", "%s.attn.w_msa.proj_drop", p);
    ow__arch_mod(a, "Softmax", "%s.attn.w_msa.softmax", p);
    ow__arch_mod(a, "DropPath", "%s.attn.drop", p);
    ow__arch_norm(a, "LayerNorm", d, "%s.norm2", p);
    char ffn[OW__ARCH_NAME_MAX];
    ow__arch_name(a, ffn, "%s.ffn", p);
    ow__arch_mm_ffn(a, ffn, d, 4 * d);
}

/* mmcv's PatchMerging: 2x2 unfold, norm over 4C, linear to 2C without bias. */
static void patch_merging(ow__arch *a, int s, int64_t d)
{
    ow__arch_mod(a, "PatchMerging", "backbone.stages.%d.downsample", s);
    ow__arch_mod(a, "AdaptivePadding", "backbone.stages.%d.downsample.adaptive_padding",
                 s);
    ow__arch_mod(a, "Unfold", "backbone.stages.%d.downsample.sampler", s);
    ow__arch_norm(a, "LayerNorm", 4 * d, "backbone.stages.%d.downsample.norm", s);
    ow__arch_linear(a, 4 * d, 2 * d, false, "backbone.stages.%d.downsample.reduction", s);
}

static void build_swin(ow__arch *a, const void *cfg)
{
    const swin_cfg *c = cfg;
    int64_t d = c->dims;
    ow__arch_mm_root(a);
    ow__arch_mod(a, "SwinTransformer", "backbone");
    ow__arch_mod(a, "PatchEmbed", "backbone.patch_embed");
    ow__arch_mod(a, "AdaptivePadding", "backbone.patch_embed.adaptive_padding");
    ow__arch_conv(a, 3, d, 4, 1, true, "backbone.patch_embed.projection");
    ow__arch_norm(a, "LayerNorm", d, "backbone.patch_embed.norm");
    ow__arch_mod(a, "Dropout", "backbone.drop_after_pos");
    ow__arch_mod(a, "ModuleList", "backbone.stages");
    for (int s = 0; s < 4; s++) {
        ow__arch_mod(a, "SwinBlockSequence", "backbone.stages.%d", s);
        ow__arch_mod(a, "ModuleList", "backbone.stages.%d.blocks", s);
        for (int b = 0; b < c->depths[s]; b++) {
            char p[OW__ARCH_NAME_MAX];
            ow__arch_name(a, p, "backbone.stages.%d.blocks.%d", s, b);
            swin_block(a, p, d, c->heads[s]);
        }
        if (s < 3) {
            patch_merging(a, s, d);
            d *= 2;
        }
    }
    ow__arch_norm(a, "LayerNorm", d, "backbone.norm3"); /* out_indices (3,) */
    ow__arch_mm_gap_neck(a);
    ow__arch_mm_linear_head(a, d);
}

/* SwinTransformer.arch_zoo */
static const swin_cfg swin_tiny = {96, {2, 2, 6, 2}, {3, 6, 12, 24}};
static const swin_cfg swin_small = {96, {2, 2, 18, 2}, {3, 6, 12, 24}};
static const swin_cfg swin_base = {128, {2, 2, 18, 2}, {4, 8, 16, 32}};
static const swin_cfg swin_large = {192, {2, 2, 18, 2}, {6, 12, 24, 48}};

const ow__arch_def ow__arch_mm_swin[] = {
    {"swin-tiny", build_swin, &swin_tiny},
    {"swin-small", build_swin, &swin_small},
    {"swin-base", build_swin, &swin_base},
    {"swin-large", build_swin, &swin_large},
    {NULL, NULL, NULL},
};
