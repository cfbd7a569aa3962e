/* golden_groups.h -- running a golden param-group case (tests/golden/groups/NAME.json):
 * build the groups its optim_wrapper describes for its model and compare them with the
 * reference's groups_effective. Shared by the constructor suites. */
#ifndef OW_GOLDEN_GROUPS_H
#define OW_GOLDEN_GROUPS_H

#include "testlib.h"

/* The golden file parsed (caller frees). */
ow_cfg *ow_golden_load(const char *name);
/* A config {optim_wrapper: <golden optim_wrapper>} (caller frees). */
ow_cfg *ow_golden_config(const ow_cfg *golden);
/* The golden case's model from tests/golden/models (caller frees). */
ow_model *ow_golden_model(const ow_cfg *golden);
/* Asserts groups equal golden["groups_effective"]: same groups in the same order, the
 * same parameter names, the same keys in the same order with the same values and types
 * (torch bookkeeping keys foreach/capturable/differentiable/fused are not compared). */
void ow_golden_check_groups(const char *name, const ow_groups *groups,
                            const ow_cfg *golden);
/* A golden case built: the file, its config and model, and what ow_groups_build gave. */
typedef struct ow_golden_case {
    ow_cfg *golden, *cfg;
    ow_model *model;
    ow_groups *groups; /* NULL when the build failed */
    ow_error err;
    int rc;
} ow_golden_case;
void ow_golden_build(ow_golden_case *c, const char *name);
void ow_golden_case_free(ow_golden_case *c);
/* Builds the groups of golden error case `name` and asserts the build fails with code,
 * message and position (in the golden file) and returns no groups. */
void ow_golden_check_error(const char *name, int code, int line, int column,
                           const char *message);
/* Names of golden files starting with prefix, sorted; NULL-terminated (caller frees with
 * ow_golden_free_list). */
char **ow_golden_list(const char *prefix, size_t *n);
void ow_golden_free_list(char **names);

#endif
