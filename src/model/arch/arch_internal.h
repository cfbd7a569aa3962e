/* arch_internal.h -- what the built-in architecture families share: a builder that adds
 * a module with its parameters in one call (the first failure sticks, so a family reads
 * like the reference's __init__), the classifier parts common to mmpretrain models, and
 * the table type each family file exports. */
#ifndef OW_ARCH_INTERNAL_H
#define OW_ARCH_INTERNAL_H

#include "../model_internal.h"

#define OW__ARCH_NAME_MAX 160

typedef struct ow__arch {
    ow_model *model;
    ow_error *err;
    int rc;                       /* the first failure; every later call does nothing */
    bool frozen;                  /* params added now get requires_grad false */
    char last[OW__ARCH_NAME_MAX]; /* full name of the last module added */
} ow__arch;

/* One built-in name: build() adds every module of the model to a->model. */
typedef struct ow__arch_def {
    const char *name; /* "vit-base-p16", "timm/resnet50" */
    void (*build)(ow__arch *a, const void *cfg);
    const void *cfg; /* the family's own settings for this name */
} ow__arch_def;

/* The family tables, each ended by a row with name NULL. */
extern const ow__arch_def ow__arch_mm_vit[];
extern const ow__arch_def ow__arch_mm_cnn[];
extern const ow__arch_def ow__arch_mm_swin[];
extern const ow__arch_def ow__arch_timm_vit[];
extern const ow__arch_def ow__arch_timm_cnn[];
extern const ow__arch_def ow__arch_timm_effnet[];

/* A shape given as numbers: ow__arch_param(a, "cls_token", OW__SHAPE(1, 1, d)). */
/* clang-format off */
#define OW__SHAPE(...) \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
    (const int64_t[]){__VA_ARGS__}
/* clang-format on */

/* In every adder, fmt and what follows printf-format the module's full name. */

/* A module without parameters of kind other (Dropout, GELU, Identity, Sequential...). */
void ow__arch_mod(ow__arch *a, const char *type, const char *fmt, ...) OW__PRINTF(3, 4);
/* A norm module (LayerNorm, BatchNorm2d, ...) with weight and bias of [channels]. */
void ow__arch_norm(ow__arch *a, const char *type, int64_t channels, const char *fmt, ...)
    OW__PRINTF(4, 5);
/* nn.Linear: weight [out, in], bias [out] when bias. */
void ow__arch_linear(ow__arch *a, int64_t in, int64_t out, bool bias, const char *fmt,
                     ...) OW__PRINTF(5, 6);
/* nn.Conv2d with a square kernel: weight [out, in / groups, k, k], bias [out]. */
void ow__arch_conv(ow__arch *a, int64_t in, int64_t out, int64_t k, int64_t groups,
                   bool bias, const char *fmt, ...) OW__PRINTF(7, 8);
/* Formats a name (a prefix for the adders) into buf of OW__ARCH_NAME_MAX bytes; one
 * that does not fit fails the build. */
void ow__arch_name(ow__arch *a, char *buf, const char *fmt, ...) OW__PRINTF(3, 4);
/* A direct parameter of the last module added. */
void ow__arch_param(ow__arch *a, const char *name, int ndim, const int64_t *shape);
/* A model-level fact from YAML flow text ("[cls_token, pos_embed]"). */
void ow__arch_fact(ow__arch *a, const char *key, const char *yaml);

/* mmpretrain's ImageClassifier parts (no parameters but the heads'): the root and its
 * data_preprocessor; a GlobalAveragePooling neck; a LinearClsHead over in channels;
 * a VisionTransformerClsHead. Every head has 1000 classes. */
void ow__arch_mm_root(ow__arch *a);
void ow__arch_mm_gap_neck(ow__arch *a);
void ow__arch_mm_linear_head(ow__arch *a, int64_t in);
void ow__arch_mm_vit_head(ow__arch *a, int64_t in);
/* mmcv's FFN at prefix p: Linear(dims, hidden) + GELU + Dropout, Linear back, Dropout,
 * a DropPath and an Identity layer scale. */
void ow__arch_mm_ffn(ow__arch *a, const char *p, int64_t dims, int64_t hidden);

#endif /* OW_ARCH_INTERNAL_H */
