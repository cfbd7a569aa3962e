/* timm_cnn.c -- timm's ResNet (resnet18..152: BasicBlock / Bottleneck with timm's
 * act/drop_block/aa slots) and ConvNeXt (convnext_tiny..xlarge: patch stem, stages with
 * downsample + blocks, NormMlpClassifierHead), as timm.create_model builds them, with
 * the group_matcher(coarse=False) timm reads for layer decay. */
#include "arch_internal.h"

/* ---- ResNet ------------------------------------------------------------------------ */

typedef struct tresnet_cfg {
    bool bottleneck;
    int layers[4];
} tresnet_cfg;

static void basic_block(ow__arch *a, const char *p, int64_t in, int64_t planes)
{
    ow__arch_mod(a, "BasicBlock", "%s", p);
    ow__arch_conv(a, in, planes, 3, 1, false, "%s.conv1", p);
    ow__arch_norm(a, "BatchNorm2d", planes, "%s.bn1", p);
    ow__arch_mod(a, "Identity", "%s.drop_block", p);
    ow__arch_mod(a, "ReLU", "%s.act1", p);
    ow__arch_mod(a, "Identity", "%s.aa", p);
    ow__arch_conv(a, planes, planes, 3, 1, false, "%s.conv2", p);
    ow__arch_norm(a, "BatchNorm2d", planes, "%s.bn2", p);
    ow__arch_mod(a, "ReLU", "%s.act2", p);
}

static void bottleneck(ow__arch *a, const char *p, int64_t in, int64_t planes)
{
    int64_t out = planes * 4;
    ow__arch_mod(a, "Bottleneck", "%s", p);
    ow__arch_conv(a, in, planes, 1, 1, false, "%s.conv1", p);
    ow__arch_norm(a, "BatchNorm2d", planes, "%s.bn1", p);
    ow__arch_mod(a, "ReLU", "%s.act1", p);
    ow__arch_conv(a, planes, planes, 3, 1, false, "%s.conv2", p);
    ow__arch_norm(a, "BatchNorm2d", planes, "%s.bn2", p);
    ow__arch_mod(a, "Identity", "%s.drop_block", p);
    ow__arch_mod(a, "ReLU", "%s.act2", p);
    ow__arch_mod(a, "Identity", "%s.aa", p);
    ow__arch_conv(a, planes, out, 1, 1, false, "%s.conv3", p);
    ow__arch_norm(a, "BatchNorm2d", out, "%s.bn3", p);
    ow__arch_mod(a, "ReLU", "%s.act3", p);
}

static void build_resnet(ow__arch *a, const void *cfg)
{
    const tresnet_cfg *c = cfg;
    int64_t expansion = c->bottleneck ? 4 : 1, in = 64;
    ow__arch_fact(a, "group_matcher",
                  "{stem: '^conv1|bn1|maxpool', blocks: '^layer(\\d+)\\.(\\d+)'}");
    ow__arch_mod(a, "ResNet", "%s", "");
    ow__arch_conv(a, 3, 64, 7, 1, false, "conv1");
    ow__arch_norm(a, "BatchNorm2d", 64, "bn1");
    ow__arch_mod(a, "ReLU", "act1");
    ow__arch_mod(a, "MaxPool2d", "maxpool");
    for (int s = 0; s < 4; s++) {
        int64_t planes = 64 << s, out = planes * expansion;
        ow__arch_mod(a, "Sequential", "layer%d", s + 1);
        for (int b = 0; b < c->layers[s]; b++) {
            char p[OW__ARCH_NAME_MAX];
            ow__arch_name(a, p, "layer%d.%d", s + 1, b);
            if (c->bottleneck)
                bottleneck(a, p, in, planes);
            else
                basic_block(a, p, in, planes);
            /* downsample_conv: only the first block changes stride or width */
            if (b == 0 && (s > 0 || in != out)) {
                ow__arch_mod(a, "Sequential", "%s.downsample", p);
                ow__arch_conv(a, in, out, 1, 1, false, "%s.downsample.0", p);
                ow__arch_norm(a, "BatchNorm2d", out, "%s.downsample.1", p);
            }
            in = out;
        }
    }
    ow__arch_mod(a, "SelectAdaptivePool2d", "global_pool");
    ow__arch_mod(a, "AdaptiveAvgPool2d", "global_pool.pool");
    ow__arch_mod(a, "Flatten", "global_pool.flatten");
    ow__arch_linear(a, in, 1000, true, "fc");
}

static const tresnet_cfg resnet18 = {false, {2, 2, 2, 2}};
static const tresnet_cfg resnet34 = {false, {3, 4, 6, 3}};
static const tresnet_cfg resnet50 = {true, {3, 4, 6, 3}};
static const tresnet_cfg resnet101 = {true, {3, 4, 23, 3}};
static const tresnet_cfg resnet152 = {true, {3, 8, 36, 3}};

/* ---- ConvNeXt ---------------------------------------------------------------------- */

typedef struct tconvnext_cfg {
    int depths[4];
    int64_t dims[4];
} tconvnext_cfg;

/* ConvNeXtBlock with conv_mlp False: channels-last LayerNorm and a Linear Mlp. */
static void convnext_block(ow__arch *a, const char *p, int64_t d)
{
    ow__arch_mod(a, "ConvNeXtBlock", "%s", p);
    ow__arch_param(a, "gamma", OW__SHAPE(d));
    ow__arch_conv(a, d, d, 7, d, true, "%s.conv_dw", p);
    ow__arch_norm(a, "LayerNorm", d, "%s.norm", p);
    ow__arch_mod(a, "Mlp", "%s.mlp", p);
    ow__arch_linear(a, d, 4 * d, true, "%s.mlp.fc1", p);
    ow__arch_mod(a, "GELU", "%s.mlp.act", p);
    ow__arch_mod(a, "Dropout", "%s.mlp.drop1", p);
    ow__arch_mod(a, "Identity", "%s.mlp.norm", p);
    ow__arch_linear(a, 4 * d, d, true, "%s.mlp.fc2", p);
    ow__arch_mod(a, "Dropout", "%s.mlp.drop2", p);
    ow__arch_mod(a, "Identity", "%s.shortcut", p);
    ow__arch_mod(a, "Identity", "%s.drop_path", p); /* drop_path_rate 0 */
}

static void build_convnext(ow__arch *a, const void *cfg)
{
    const tconvnext_cfg *c = cfg;
    ow__arch_fact(
        a, "group_matcher",
        "{stem: '^stem', blocks: [['^stages\\.(\\d+)\\.downsample', [0]], "
        "['^stages\\.(\\d+)\\.blocks\\.(\\d+)', null], ['^norm_pre', [99999]]]}");
    ow__arch_mod(a, "ConvNeXt", "%s", "");
    ow__arch_mod(a, "Sequential", "stem");
    ow__arch_conv(a, 3, c->dims[0], 4, 1, true, "stem.0");
    ow__arch_norm(a, "LayerNorm2d", c->dims[0], "stem.1");
    ow__arch_mod(a, "Sequential", "stages");
    for (int s = 0; s < 4; s++) {
        int64_t d = c->dims[s];
        ow__arch_mod(a, "ConvNeXtStage", "stages.%d", s);
        if (s == 0) { /* same width, stride 1 after the stem */
            ow__arch_mod(a, "Identity", "stages.0.downsample");
        } else {
            ow__arch_mod(a, "Sequential", "stages.%d.downsample", s);
            ow__arch_norm(a, "LayerNorm2d", c->dims[s - 1], "stages.%d.downsample.0", s);
            ow__arch_conv(a, c->dims[s - 1], d, 2, 1, true, "stages.%d.downsample.1", s);
        }
        ow__arch_mod(a, "Sequential", "stages.%d.blocks", s);
        for (int b = 0; b < c->depths[s]; b++) {
            char p[OW__ARCH_NAME_MAX];
            ow__arch_name(a, p, "stages.%d.blocks.%d", s, b);
            convnext_block(a, p, d);
        }
    }
    int64_t d = c->dims[3];
    ow__arch_mod(a, "Identity", "norm_pre");
    ow__arch_mod(a, "NormMlpClassifierHead", "head");
    ow__arch_mod(a, "SelectAdaptivePool2d", "head.global_pool");
    ow__arch_mod(a, "AdaptiveAvgPool2d", "head.global_pool.pool");
    ow__arch_mod(a, "Identity", "head.global_pool.flatten");
    ow__arch_norm(a, "LayerNorm2d", d, "head.norm");
    ow__arch_mod(a, "Flatten", "head.flatten");
    ow__arch_mod(a, "Identity", "head.pre_logits");
    ow__arch_mod(a, "Dropout", "head.drop");
    ow__arch_linear(a, d, 1000, true, "head.fc");
}

static const tconvnext_cfg convnext_tiny = {{3, 3, 9, 3}, {96, 192, 384, 768}};
static const tconvnext_cfg convnext_small = {{3, 3, 27, 3}, {96, 192, 384, 768}};
static const tconvnext_cfg convnext_base = {{3, 3, 27, 3}, {128, 256, 512, 1024}};
static const tconvnext_cfg convnext_large = {{3, 3, 27, 3}, {192, 384, 768, 1536}};
static const tconvnext_cfg convnext_xlarge = {{3, 3, 27, 3}, {256, 512, 1024, 2048}};

const ow__arch_def ow__arch_timm_cnn[] = {
    {"timm/resnet18", build_resnet, &resnet18},
    {"timm/resnet34", build_resnet, &resnet34},
    {"timm/resnet50", build_resnet, &resnet50},
    {"timm/resnet101", build_resnet, &resnet101},
    {"timm/resnet152", build_resnet, &resnet152},
    {"timm/convnext_tiny", build_convnext, &convnext_tiny},
    {"timm/convnext_small", build_convnext, &convnext_small},
    {"timm/convnext_base", build_convnext, &convnext_base},
    {"timm/convnext_large", build_convnext, &convnext_large},
    {"timm/convnext_xlarge", build_convnext, &convnext_xlarge},
    {NULL, NULL, NULL},
};
