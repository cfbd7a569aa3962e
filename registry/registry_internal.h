/* registry_internal.h -- what registry/ shares between its files: the built-in table
 * and the hooks plugin.c uses to tag, and undo, the entries a plugin's init adds.
 * plugin.c calls registry.c, never the other way. */
#ifndef OW_REGISTRY_INTERNAL_H
#define OW_REGISTRY_INTERNAL_H

#include "internal.h"

/* builtins.c: every built-in entry, ended by NULL. */
extern const ow_entry *const ow__builtins[];

/* Entries this thread registers from now on belong to owner (a plugin handle; NULL to
 * stop), so that a failing ow_plugin_init can be undone. */
void ow__registry_set_owner(const void *owner);
/* Removes every run-time entry that belongs to owner. */
void ow__registry_drop_owner(const void *owner);
/* Removes every run-time entry (ow__registry_reset, in plugin.c, also forgets which
 * plugins were loaded). */
void ow__registry_clear(void);

#endif /* OW_REGISTRY_INTERNAL_H */
