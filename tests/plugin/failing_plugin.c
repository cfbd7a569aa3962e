/* failing_plugin.c -- a plugin whose init registers one entry, then fails on an entry
 * built for another ABI: the load must fail and leave no entry behind. */
#include "optwrap.h"

static const ow_key keys[] = {{0}};

static const ow_entry good = {
    .abi_version = OW_ABI_VERSION,
    .name = "FailingSGD",
    .kind = OW_KIND_OPTIMIZER,
    .summary = "test plugin: registered, then rolled back",
    .keys = keys,
};

static const ow_entry from_the_future = {
    .abi_version = OW_ABI_VERSION + 1,
    .name = "FutureSGD",
    .kind = OW_KIND_OPTIMIZER,
    .summary = "test plugin: another ABI",
    .keys = keys,
};

OW_API int ow_plugin_init(ow_error *err);

int ow_plugin_init(ow_error *err)
{
    int rc = ow_registry_add(&good, /*force=*/false, err);
    return rc ? rc : ow_registry_add(&from_the_future, /*force=*/false, err);
}
