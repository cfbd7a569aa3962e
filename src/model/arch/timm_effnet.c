/* timm_effnet.c -- timm's EfficientNet B0..B4 (efficientnet_b*): the arch_def of
 * _gen_efficientnet scaled by its channel and depth multipliers the way timm's
 * EfficientNetBuilder does (round_channels, ceil depth, SE width from the block input),
 * with BatchNormAct2d norms (kind norm; their drop/act children kept) and the
 * group_matcher(coarse=False) timm reads for layer decay. */
#include "arch_internal.h"

#include <math.h>

typedef struct effnet_cfg {
    double width, depth; /* channel and depth multipliers */
} effnet_cfg;

/* timm's make_divisible(v, 8): round to a multiple of 8, never below 8 nor below 90%. */
static int64_t make_divisible(double v)
{
    int64_t n = (int64_t)(v + 4) / 8 * 8;
    if (n < 8)
        n = 8;
    if ((double)n < 0.9 * v)
        n += 8;
    return n;
}

/* BatchNormAct2d: a BatchNorm2d subclass with a drop and an act child. */
static void bn_act(ow__arch *a, const char *p, const char *name, int64_t ch, bool act)
{
    ow__arch_norm(a, "BatchNormAct2d", ch, "%s%s%s", p, *p ? "." : "", name);
    ow__arch_mod(a, "Identity", "%s%s%s.drop", p, *p ? "." : "", name);
    ow__arch_mod(a, act ? "SiLU" : "Identity", "%s%s%s.act", p, *p ? "." : "", name);
}

/* SqueezeExcite on ch channels reduced to rd (rd = round(ch * se_ratio / exp_ratio)). */
static void squeeze_excite(ow__arch *a, const char *p, int64_t ch, int64_t rd)
{
    ow__arch_mod(a, "SqueezeExcite", "%s.se", p);
    ow__arch_conv(a, ch, rd, 1, 1, true, "%s.se.conv_reduce", p);
    ow__arch_mod(a, "SiLU", "%s.se.act1", p);
    ow__arch_conv(a, rd, ch, 1, 1, true, "%s.se.conv_expand", p);
    ow__arch_mod(a, "Sigmoid", "%s.se.gate", p);
}

static void depthwise_separable(ow__arch *a, const char *p, int64_t in, int64_t out,
                                int k)
{
    ow__arch_mod(a, "DepthwiseSeparableConv", "%s", p);
    ow__arch_conv(a, in, in, k, in, false, "%s.conv_dw", p);
    bn_act(a, p, "bn1", in, true);
    ow__arch_mod(a, "Identity", "%s.aa", p);
    squeeze_excite(a, p, in, (int64_t)rint(in * 0.25)); /* Python round: half to even */
    ow__arch_conv(a, in, out, 1, 1, false, "%s.conv_pw", p);
    bn_act(a, p, "bn2", out, false);
    ow__arch_mod(a, "Identity", "%s.drop_path", p);
}

static void inverted_residual(ow__arch *a, const char *p, int64_t in, int64_t out, int k,
                              int exp)
{
    int64_t mid = make_divisible((double)in * exp);
    ow__arch_mod(a, "InvertedResidual", "%s", p);
    ow__arch_conv(a, in, mid, 1, 1, false, "%s.conv_pw", p);
    bn_act(a, p, "bn1", mid, true);
    ow__arch_conv(a, mid, mid, k, mid, false, "%s.conv_dw", p);
    bn_act(a, p, "bn2", mid, true);
    ow__arch_mod(a, "Identity", "%s.aa", p);
    squeeze_excite(a, p, mid, (int64_t)rint((double)mid * (0.25 / exp)));
    ow__arch_conv(a, mid, out, 1, 1, false, "%s.conv_pwl", p);
    bn_act(a, p, "bn3", out, false);
    ow__arch_mod(a, "Identity", "%s.drop_path", p);
}

static void build_effnet(ow__arch *a, const void *cfg)
{
    const effnet_cfg *c = cfg;
    /* _gen_efficientnet's arch_def: repeats, kernel, expansion, out channels, all
     * with se0.25; stage 0 is 'ds', the rest 'ir' */
    static const int stages[7][4] = {{1, 3, 1, 16}, {2, 3, 6, 24},  {2, 5, 6, 40},
                                     {3, 3, 6, 80}, {3, 5, 6, 112}, {4, 5, 6, 192},
                                     {1, 3, 6, 320}};
    int64_t in = make_divisible(32 * c->width), head = make_divisible(1280 * c->width);
    ow__arch_fact(
        a, "group_matcher",
        "{stem: '^conv_stem|bn1', blocks: [['^blocks\\.(\\d+)\\.(\\d+)', null], "
        "['conv_head|bn2', [99999]]]}");
    ow__arch_mod(a, "EfficientNet", "%s", "");
    ow__arch_conv(a, 3, in, 3, 1, false, "conv_stem");
    bn_act(a, "", "bn1", in, true);
    ow__arch_mod(a, "Sequential", "blocks");
    for (int s = 0; s < 7; s++) {
        int64_t out = make_divisible(stages[s][3] * c->width);
        int repeats = (int)ceil(stages[s][0] * c->depth);
        ow__arch_mod(a, "Sequential", "blocks.%d", s);
        for (int b = 0; b < repeats; b++) {
            char p[OW__ARCH_NAME_MAX];
            ow__arch_name(a, p, "blocks.%d.%d", s, b);
            if (s == 0)
                depthwise_separable(a, p, in, out, stages[s][1]);
            else
                inverted_residual(a, p, in, out, stages[s][1], stages[s][2]);
            in = out;
        }
    }
    ow__arch_conv(a, in, head, 1, 1, false, "conv_head");
    bn_act(a, "", "bn2", head, true);
    ow__arch_mod(a, "SelectAdaptivePool2d", "global_pool");
    ow__arch_mod(a, "AdaptiveAvgPool2d", "global_pool.pool");
    ow__arch_mod(a, "Flatten", "global_pool.flatten");
    ow__arch_linear(a, head, 1000, true, "classifier");
}

static const effnet_cfg effnet_b0 = {1.0, 1.0};
static const effnet_cfg effnet_b1 = {1.0, 1.1};
static const effnet_cfg effnet_b2 = {1.1, 1.2};
static const effnet_cfg effnet_b3 = {1.2, 1.4};
static const effnet_cfg effnet_b4 = {1.4, 1.8};

const ow__arch_def ow__arch_timm_effnet[] = {
    {"timm/efficientnet_b0", build_effnet, &effnet_b0},
    {"timm/efficientnet_b1", build_effnet, &effnet_b1},
    {"timm/efficientnet_b2", build_effnet, &effnet_b2},
    {"timm/efficientnet_b3", build_effnet, &effnet_b3},
    {"timm/efficientnet_b4", build_effnet, &effnet_b4},
    {NULL, NULL, NULL},
};
