/* noinit_plugin.c -- a shared library that is no plugin: it lacks ow_plugin_init. */
#include "optwrap.h"

OW_API int ow_test_not_a_plugin(void);

int ow_test_not_a_plugin(void)
{
    return 0;
}
