/* cfg_internal.h -- what the files of src/cfg share among themselves and nobody else:
 * mmengine's dict merge (merge.c) and the `{{ ... }}` templates of a config file's text
 * (subst.c), both used by loading (load.c) and overrides (override.c). */
#ifndef OW_CFG_INTERNAL_H
#define OW_CFG_INTERNAL_H

#include "../internal.h"

/* ---- merge.c --------------------------------------------------------------------- */

/* mmengine's Config._merge_a_into_b: merges the map `from` into `into` (a map), key by
 * key: maps merge recursively, lists and scalars replace, a map carrying `_delete_:
 * true` replaces wholesale. `_delete_` keys are always removed, wherever they are. With
 * allow_list_keys (--cfg-options), a digit key indexes an existing list and a map may be
 * merged into a list. Takes ownership of `from`, even on failure. On failure `into` may
 * be half merged: callers merge into a copy. `into_name` says what `into` is in
 * messages ("base", "config"). A map over a non-map is OW_ERR_INHERIT for files and
 * OW_ERR_TYPE with allow_list_keys (mmengine's TypeError either way). */
int ow__cfg_merge(ow_cfg *into, ow_cfg *from, bool allow_list_keys, const char *into_name,
                  ow_error *err);
/* Removes every `_delete_` key under node (checking each is a bool). */
int ow__cfg_strip_delete(ow_cfg *node, ow_error *err);

/* ---- subst.c --------------------------------------------------------------------- */

/* Parses a config file's text like ow__cfg_parse(), first expanding mmengine's
 * templates: `{{ fileDirname }}`, `{{ fileBasename }}`, `{{ fileBasenameNoExtension }}`,
 * `{{ fileExtname }}` (of abs_path) and `{{$NAME:default}}` (the environment) inside
 * any scalar or key. A plain scalar that contained one is typed again after expansion,
 * as pasting the text would (`{{$N:80}}` is an int). `{{_base_.a.b}}` is kept as that
 * text (quoted or not: unquoted, YAML would read it as a flow map) for load.c to
 * resolve, and must then be a whole scalar. Positions are those of the original text.
 * limits: NULL for the defaults. */
int ow__cfg_parse_templated(const char *text, size_t len, const char *file,
                            const char *abs_path, const ow_limits *limits, ow_cfg **out,
                            ow_error *err);
/* True when s is exactly a base reference `{{ _base_.a.b }}`; path and len then give
 * the dotted path "a.b" inside s. */
bool ow__cfg_base_ref(const char *s, const char **path, size_t *len);

#endif /* OW_CFG_INTERNAL_H */
