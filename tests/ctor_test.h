/* ctor_test.h -- helpers of the constructor suites (lr decay, layer decay, timm,
 * explain): models made from a list of parameter names, configs from YAML text, building
 * groups and looking a parameter's group up by name. */
#ifndef OW_CTOR_TEST_H
#define OW_CTOR_TEST_H

#include "testlib.h"

/* A model from "name[:shape]" parameter specs in walk order ("backbone.layers.0.w:2x2";
 * no shape: [2]). The root gets type `root`, module `backbone` (when present) type
 * `backbone`, modules named like norms (norm*, ln*, bn*) kind norm, others "Module".
 * A spec starting with '!' is frozen. */
ow_model *ct_model(const char *root, const char *backbone, const char *const *specs);
/* A built-in architecture (ow_model_new_arch). */
ow_model *ct_arch(const char *name);
/* A config parsed from YAML text, positioned at file "t.yaml". */
ow_cfg *ct_config(const char *yaml);
/* ow_groups_build that must succeed. */
ow_groups *ct_build(const char *yaml, const ow_model *model);
/* ow_groups_build that must fail with code; err gets the error. */
void ct_build_fails(const char *yaml, const ow_model *model, int code, ow_error *err);
/* The group holding the parameter of that full name (fails the test if none). */
size_t ct_group_of(const ow_groups *g, const char *name);
/* A group's numeric option (fails the test when absent or not a number). */
double ct_num(const ow_groups *g, size_t gi, const char *key);
/* Whether some warning contains text. */
bool ct_has_warning(const ow_groups *g, const char *text);
/* The OOM loop of STYLE 15: fail allocation n = 0, 1, ... until the build succeeds;
 * each failure must be OW_ERR_NOMEM with no groups. Returns the successful groups. */
ow_groups *ct_build_oom(const ow_cfg *cfg, const ow_model *model);

#endif
