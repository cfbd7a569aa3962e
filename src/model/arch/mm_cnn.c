/* mm_cnn.c -- mmpretrain's convolutional backbones as configs/_base_/models builds them:
 * ResNet 18..152 (+ GAP neck + LinearClsHead; frozen_stages too), ConvNeXt tiny..xlarge
 * (LinearClsHead on norm3, drop_path_rate > 0 so every block but the first has a
 * DropPath) and MobileNetV2 1.0x. */
#include "arch_internal.h"

/* ---- ResNet ------------------------------------------------------------------------ */

typedef struct resnet_cfg {
    bool bottleneck;
    int blocks[4];
    int frozen_stages; /* -1: none; k: the stem and layer1..layerk are frozen */
} resnet_cfg;

static void resnet_block(ow__arch *a, const resnet_cfg *c, const char *p, int64_t in,
                         int64_t out, bool downsample)
{
    int64_t mid = c->bottleneck ? out / 4 : out;
    ow__arch_mod(a, c->bottleneck ? "Bottleneck" : "BasicBlock", "%s", p);
    if (c->bottleneck) {
        ow__arch_conv(a, in, mid, 1, 1, false, "%s.conv1", p);
        ow__arch_norm(a, "BatchNorm2d", mid, "%s.bn1", p);
        ow__arch_conv(a, mid, mid, 3, 1, false, "%s.conv2", p);
        ow__arch_norm(a, "BatchNorm2d", mid, "%s.bn2", p);
        ow__arch_conv(a, mid, out, 1, 1, false, "%s.conv3", p);
        ow__arch_norm(a, "BatchNorm2d", out, "%s.bn3", p);
    } else {
        ow__arch_conv(a, in, mid, 3, 1, false, "%s.conv1", p);
        ow__arch_norm(a, "BatchNorm2d", mid, "%s.bn1", p);
        ow__arch_conv(a, mid, out, 3, 1, false, "%s.conv2", p);
        ow__arch_norm(a, "BatchNorm2d", out, "%s.bn2", p);
    }
    ow__arch_mod(a, "ReLU", "%s.relu", p);
    if (downsample) {
        ow__arch_mod(a, "Sequential", "%s.downsample", p);
        ow__arch_conv(a, in, out, 1, 1, false, "%s.downsample.0", p);
        ow__arch_norm(a, "BatchNorm2d", out, "%s.downsample.1", p);
    }
    ow__arch_mod(a, "Identity", "%s.drop_path", p); /* drop_path_rate 0 */
}

static void build_resnet(ow__arch *a, const void *cfg)
{
    const resnet_cfg *c = cfg;
    int64_t expansion = c->bottleneck ? 4 : 1, in = 64;
    ow__arch_mm_root(a);
    ow__arch_mod(a, "ResNet", "backbone");
    a->frozen = c->frozen_stages >= 0;
    ow__arch_conv(a, 3, 64, 7, 1, false, "backbone.conv1");
    ow__arch_norm(a, "BatchNorm2d", 64, "backbone.bn1");
    ow__arch_mod(a, "ReLU", "backbone.relu");
    ow__arch_mod(a, "MaxPool2d", "backbone.maxpool");
    for (int s = 0; s < 4; s++) {
        int64_t out = (64 << s) * expansion;
        a->frozen = s < c->frozen_stages;
        ow__arch_mod(a, "ResLayer", "backbone.layer%d", s + 1);
        for (int b = 0; b < c->blocks[s]; b++) {
            char p[OW__ARCH_NAME_MAX];
            ow__arch_name(a, p, "backbone.layer%d.%d", s + 1, b);
            /* ResLayer: only the first block may change stride or width */
            resnet_block(a, c, p, in, out, b == 0 && (s > 0 || in != out));
            in = out;
        }
    }
    a->frozen = false;
    ow__arch_mm_gap_neck(a);
    ow__arch_mm_linear_head(a, in);
}

static const resnet_cfg resnet18 = {false, {2, 2, 2, 2}, -1};
static const resnet_cfg resnet34 = {false, {3, 4, 6, 3}, -1};
static const resnet_cfg resnet50 = {true, {3, 4, 6, 3}, -1};
static const resnet_cfg resnet50_frozen1 = {true, {3, 4, 6, 3}, 1};
static const resnet_cfg resnet101 = {true, {3, 4, 23, 3}, -1};
static const resnet_cfg resnet152 = {true, {3, 8, 36, 3}, -1};

/* ---- ConvNeXt ---------------------------------------------------------------------- */

typedef struct convnext_cfg {
    int depths[4];
    int64_t dims[4];
} convnext_cfg;

static void build_convnext(ow__arch *a, const void *cfg)
{
    const convnext_cfg *c = cfg;
    ow__arch_mm_root(a);
    ow__arch_mod(a, "ConvNeXt", "backbone");
    ow__arch_mod(a, "ModuleList", "backbone.downsample_layers");
    for (int s = 0; s < 4; s++) {
        ow__arch_mod(a, "Sequential", "backbone.downsample_layers.%d", s);
        if (s == 0) { /* the stem: 4x4 patchify, then norm */
            ow__arch_conv(a, 3, c->dims[0], 4, 1, true, "backbone.downsample_layers.0.0");
            ow__arch_norm(a, "LayerNorm2d", c->dims[0], "backbone.downsample_layers.0.1");
        } else {
            ow__arch_norm(a, "LayerNorm2d", c->dims[s - 1],
                          "backbone.downsample_layers.%d.0", s);
            ow__arch_conv(a, c->dims[s - 1], c->dims[s], 2, 1, true,
                          "backbone.downsample_layers.%d.1", s);
        }
    }
    ow__arch_mod(a, "ModuleList", "backbone.stages");
    for (int s = 0; s < 4; s++) {
        int64_t d = c->dims[s];
        ow__arch_mod(a, "Sequential", "backbone.stages.%d", s);
        for (int b = 0; b < c->depths[s]; b++) {
            char p[OW__ARCH_NAME_MAX];
            ow__arch_name(a, p, "backbone.stages.%d.%d", s, b);
            ow__arch_mod(a, "ConvNeXtBlock", "%s", p);
            ow__arch_param(a, "gamma", OW__SHAPE(d));
            ow__arch_conv(a, d, d, 7, d, true, "%s.depthwise_conv", p);
            ow__arch_norm(a, "LayerNorm2d", d, "%s.norm", p);
            ow__arch_linear(a, d, 4 * d, true, "%s.pointwise_conv1", p);
            ow__arch_mod(a, "GELU", "%s.act", p);
            ow__arch_linear(a, 4 * d, d, true, "%s.pointwise_conv2", p);
            /* the stochastic depth rule gives the very first block rate 0 */
            ow__arch_mod(a, s == 0 && b == 0 ? "Identity" : "DropPath", "%s.drop_path",
                         p);
        }
    }
    ow__arch_norm(a, "LayerNorm2d", c->dims[3], "backbone.norm3");
    ow__arch_mm_linear_head(a, c->dims[3]);
}

/* ConvNeXt.arch_zoo */
static const convnext_cfg convnext_tiny = {{3, 3, 9, 3}, {96, 192, 384, 768}};
static const convnext_cfg convnext_small = {{3, 3, 27, 3}, {96, 192, 384, 768}};
static const convnext_cfg convnext_base = {{3, 3, 27, 3}, {128, 256, 512, 1024}};
static const convnext_cfg convnext_large = {{3, 3, 27, 3}, {192, 384, 768, 1536}};
static const convnext_cfg convnext_xlarge = {{3, 3, 27, 3}, {256, 512, 1024, 2048}};

/* ---- MobileNetV2 ------------------------------------------------------------------- */

/* mmcv's ConvModule: conv (no bias), bn, and an activation unless act is false. */
static void conv_module(ow__arch *a, const char *p, int64_t in, int64_t out, int64_t k,
                        int64_t groups, bool act)
{
    ow__arch_mod(a, "ConvModule", "%s", p);
    ow__arch_conv(a, in, out, k, groups, false, "%s.conv", p);
    ow__arch_norm(a, "BatchNorm2d", out, "%s.bn", p);
    if (act)
        ow__arch_mod(a, "ReLU6", "%s.activate", p);
}

static void build_mobilenet_v2(ow__arch *a, const void *cfg)
{
    (void)cfg;
    /* MobileNetV2.arch_settings: expand ratio, channels, blocks (widen_factor 1.0) */
    static const int settings[7][3] = {{1, 16, 1}, {6, 24, 2},  {6, 32, 3}, {6, 64, 4},
                                       {6, 96, 3}, {6, 160, 3}, {6, 320, 1}};
    int64_t in = 32;
    ow__arch_mm_root(a);
    ow__arch_mod(a, "MobileNetV2", "backbone");
    conv_module(a, "backbone.conv1", 3, in, 3, 1, true);
    for (int s = 0; s < 7; s++) {
        int64_t expand = settings[s][0], out = settings[s][1];
        ow__arch_mod(a, "Sequential", "backbone.layer%d", s + 1);
        for (int b = 0; b < settings[s][2]; b++) {
            char p[OW__ARCH_NAME_MAX], q[OW__ARCH_NAME_MAX];
            int64_t mid = in * expand;
            int k = 0;
            ow__arch_name(a, p, "backbone.layer%d.%d", s + 1, b);
            ow__arch_mod(a, "InvertedResidual", "%s", p);
            ow__arch_mod(a, "Sequential", "%s.conv", p);
            if (expand != 1) {
                ow__arch_name(a, q, "%s.conv.%d", p, k++);
                conv_module(a, q, in, mid, 1, 1, true);
            }
            ow__arch_name(a, q, "%s.conv.%d", p, k++);
            conv_module(a, q, mid, mid, 3, mid, true);
            ow__arch_name(a, q, "%s.conv.%d", p, k++);
            conv_module(a, q, mid, out, 1, 1, false);
            in = out;
        }
    }
    conv_module(a, "backbone.conv2", in, 1280, 1, 1, true);
    ow__arch_mm_gap_neck(a);
    ow__arch_mm_linear_head(a, 1280);
}

const ow__arch_def ow__arch_mm_cnn[] = {
    {"resnet18", build_resnet, &resnet18},
    {"resnet34", build_resnet, &resnet34},
    {"resnet50", build_resnet, &resnet50},
    {"resnet50-frozen1", build_resnet, &resnet50_frozen1},
    {"resnet101", build_resnet, &resnet101},
    {"resnet152", build_resnet, &resnet152},
    {"convnext-tiny", build_convnext, &convnext_tiny},
    {"convnext-small", build_convnext, &convnext_small},
    {"convnext-base", build_convnext, &convnext_base},
    {"convnext-large", build_convnext, &convnext_large},
    {"convnext-xlarge", build_convnext, &convnext_xlarge},
    {"mobilenet-v2", build_mobilenet_v2, NULL},
    {NULL, NULL, NULL},
};
