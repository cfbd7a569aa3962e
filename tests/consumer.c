/* consumer.c -- a program outside the tree that uses the installed library the way the
 * header's "Intended usage" shows; tests/check-install.sh builds it through pkg-config.
 */
#include <optwrap.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: consumer CONFIG MODEL\n");
        return 2;
    }
    ow_error err;
    ow_cfg *cfg = NULL;
    ow_model *model = NULL;
    ow_groups *groups = NULL;
    int status = 0;
    if (ow_cfg_load(argv[1], &cfg, &err) ||
        ow_cfg_set(cfg, "optim_wrapper.optimizer.lr=0.2", &err) ||
        ow_model_load(argv[2], &model, &err) ||
        ow_groups_build(cfg, model, &groups, &err)) {
        char msg[1024];
        ow_error_format(&err, msg, sizeof msg);
        fprintf(stderr, "%s\n", msg);
        status = 1;
    } else {
        printf("%zu groups\n", ow_groups_get_count(groups));
    }
    ow_groups_free(groups);
    ow_model_free(model);
    ow_cfg_free(cfg);
    return status;
}
