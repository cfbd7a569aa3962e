/* main.c -- the digits example as a program of its own: trains the MLP of trainer.c
 * with the optimizer, schedule and checkpoints a YAML config describes.
 *     digits CONFIG [--work-dir DIR] [--resume] [--data PATH] */
#include "trainer.h"

#include <stdio.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: digits CONFIG [--work-dir DIR] [--resume] [--data PATH]\n");
    return 2;
}

int main(int argc, char **argv)
{
    char work_dir[4096];
    digits_options o = {.prog = "digits"};
    for (int i = 1; i < argc; i++) {
        bool has_value = i + 1 < argc;
        if (!strcmp(argv[i], "--resume"))
            o.resume = true;
        else if (!strcmp(argv[i], "--work-dir") && has_value)
            o.work_dir = argv[++i];
        else if (!strcmp(argv[i], "--data") && has_value)
            o.data = argv[++i];
        else if (argv[i][0] != '-' && !o.config)
            o.config = argv[i];
        else
            return usage();
    }
    if (!o.config)
        return usage();
    if (!o.work_dir) {
        digits_default_work_dir(o.config, work_dir, sizeof work_dir);
        o.work_dir = work_dir;
    }
    return digits_train(&o, NULL);
}
