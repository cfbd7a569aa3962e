/* timm_vit.c -- timm's VisionTransformer as timm.create_model('vit_*_patch*_224')
 * builds it (class token, learned pos_embed, pre-norm blocks without layer scale), with
 * the model-level facts timm reads from it: no_weight_decay() and
 * group_matcher(coarse=False). */
#include "arch_internal.h"

typedef struct tvit_cfg {
    int64_t dims, depth, heads, patch;
} tvit_cfg;

#define IMG 224

static void block(ow__arch *a, const char *p, int64_t d)
{
    ow__arch_mod(a, "Block", "%s", p);
    ow__arch_norm(a, "LayerNorm", d, "%s.norm1", p);
    ow__arch_mod(a, "Attention", "%s.attn", p);
    ow__arch_linear(a, d, 3 * d, true, "%s.attn.qkv", p);
    ow__arch_mod(a, "Identity", "%s.attn.q_norm", p);
    ow__arch_mod(a, "Identity", "%s.attn.k_norm", p);
    ow__arch_mod(a, "Dropout", "%s.attn.attn_drop", p);
    ow__arch_mod(a, "Identity", "%s.attn.norm", p);
    ow__arch_linear(a, d, d, true, "%s.attn.proj", p);
    ow__arch_mod(a, "Dropout", "%s.attn.proj_drop", p);
    ow__arch_mod(a, "Identity", "%s.ls1", p);
    ow__arch_mod(a, "Identity", "%s.drop_path1", p);
    ow__arch_norm(a, "LayerNorm", d, "%s.norm2", p);
    ow__arch_mod(a, "Mlp", "%s.mlp", p);
    ow__arch_linear(a, d, 4 * d, true, "%s.mlp.fc1", p);
    ow__arch_mod(a, "GELU", "%s.mlp.act", p);
    ow__arch_mod(a, "Dropout", "%s.mlp.drop1", p);
    ow__arch_mod(a, "Identity", "%s.mlp.norm", p);
    ow__arch_linear(a, 4 * d, d, true, "%s.mlp.fc2", p);
    ow__arch_mod(a, "Dropout", "%s.mlp.drop2", p);
    ow__arch_mod(a, "Identity", "%s.ls2", p);
    ow__arch_mod(a, "Identity", "%s.drop_path2", p);
}

static void build_vit(ow__arch *a, const void *cfg)
{
    const tvit_cfg *c = cfg;
    int64_t d = c->dims, grid = IMG / c->patch;
    ow__arch_fact(a, "no_weight_decay", "[cls_token, dist_token, pos_embed, reg_token]");
    ow__arch_fact(a, "group_matcher",
                  "{stem: '^cls_token|reg_token|pos_embed|patch_embed', "
                  "blocks: [['^blocks\\.(\\d+)', null], ['^norm', [99999]]]}");
    ow__arch_mod(a, "VisionTransformer", "%s", "");
    ow__arch_param(a, "cls_token", OW__SHAPE(1, 1, d));
    ow__arch_param(a, "pos_embed", OW__SHAPE(1, grid * grid + 1, d));
    ow__arch_mod(a, "PatchEmbed", "patch_embed");
    ow__arch_conv(a, 3, d, c->patch, 1, true, "patch_embed.proj");
    ow__arch_mod(a, "Identity", "patch_embed.norm");
    ow__arch_mod(a, "Dropout", "pos_drop");
    ow__arch_mod(a, "Identity", "patch_drop");
    ow__arch_mod(a, "Identity", "norm_pre");
    ow__arch_mod(a, "Sequential", "blocks");
    for (int64_t i = 0; i < c->depth; i++) {
        char p[OW__ARCH_NAME_MAX];
        ow__arch_name(a, p, "blocks.%lld", (long long)i);
        block(a, p, d);
    }
    ow__arch_norm(a, "LayerNorm", d, "norm");
    ow__arch_mod(a, "Identity", "fc_norm");
    ow__arch_mod(a, "Dropout", "head_drop");
    ow__arch_linear(a, d, 1000, true, "head");
}

static const tvit_cfg vit_tiny16 = {192, 12, 3, 16};
static const tvit_cfg vit_small16 = {384, 12, 6, 16};
static const tvit_cfg vit_base16 = {768, 12, 12, 16};
static const tvit_cfg vit_base32 = {768, 12, 12, 32};
static const tvit_cfg vit_large16 = {1024, 24, 16, 16};

const ow__arch_def ow__arch_timm_vit[] = {
    {"timm/vit_tiny_patch16_224", build_vit, &vit_tiny16},
    {"timm/vit_small_patch16_224", build_vit, &vit_small16},
    {"timm/vit_base_patch16_224", build_vit, &vit_base16},
    {"timm/vit_base_patch32_224", build_vit, &vit_base32},
    {"timm/vit_large_patch16_224", build_vit, &vit_large16},
    {NULL, NULL, NULL},
};
