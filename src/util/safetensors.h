/* safetensors.h -- the container of optimizer state files and checkpoints: a builder
 * that writes tensors and string metadata (with a CRC-32 of every tensor) to memory or
 * atomically to a file, and a parser that checks a whole file before anyone reads it. */
#ifndef OW_SAFETENSORS_H
#define OW_SAFETENSORS_H

#include "../internal.h"

#include <stdint.h>

/* The layout (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
 * length, a JSON header padded with spaces to a multiple of 8, then the data. The
 * header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
 * (relative to the data) and "__metadata__" to string values. We add metadata
 * "checksums": JSON text {"tensor name": "8 hex digits"}, zlib's crc32 of each tensor's
 * bytes as stored ("%08x" % zlib.crc32(bytes) in Python). */

/* Bytes per element of a safetensors dtype name ("F32", "F64", "I64", "U8", "BF16",
 * "F16", and the other names of the format), or 0 when the name is unknown. */
size_t ow__st_dtype_size(const char *dtype);

/* Copies n elements of elem_size bytes converting host order to little-endian or back
 * (the same operation): a memcpy on little-endian hosts. dst and src may be unaligned. */
void ow__st_copy_le(void *dst, const void *src, size_t n, size_t elem_size);

/* Reports a bad state file: OW_ERR_STATE at file (no position) with the message
 * "state file: " + the formatted text. Returns OW_ERR_STATE. */
int ow__st_error(ow_error *err, const char *file, const char *fmt, ...) OW__PRINTF(3, 4);

/* ---- writing ----------------------------------------------------------------------- */

/* Tensors (in the order added) and metadata entries, serialised in one go. */
typedef struct ow__st_builder ow__st_builder;

int ow__st_builder_new(ow__st_builder **out, ow_error *err);
/* Frees the builder and its copies; accepts NULL. Borrowed data is not touched. */
void ow__st_builder_free(ow__st_builder *b);
/* Adds tensor name (copied) of a known dtype with shape[ndim] (copied; ndim 0: one
 * element). data holds nbytes = product(shape) x dtype size bytes in host order; it is
 * borrowed and must stay valid and unchanged until the last save from this builder.
 * A name that is empty, "__metadata__" or already added, an unknown dtype or a size
 * that does not match the shape fails with OW_ERR_MISUSE (the duplicate check happens
 * when saving). */
int ow__st_builder_add(ow__st_builder *b, const char *name, const char *dtype, int ndim,
                       const int64_t *shape, const void *data, size_t nbytes,
                       ow_error *err);
/* The same with data copied into the builder (scalars, small arrays built on the
 * stack). */
int ow__st_builder_add_copy(ow__st_builder *b, const char *name, const char *dtype,
                            int ndim, const int64_t *shape, const void *data,
                            size_t nbytes, ow_error *err);
/* Makes tensor `name` (added before) take its bytes from fill when the file is written,
 * not from the memory given to add (which is then never read): fill(ctx, buf, nbytes)
 * writes the tensor's nbytes, in host order, into buf and returns 0, or nonzero to fail
 * the save. Each save calls the fills once, in the order their tensors were added, with
 * a buffer of the tensor's size (a data-parallel checkpoint gathers one tensor at a
 * time). OW_ERR_MISUSE when no tensor has that name. */
typedef int (*ow__st_fill_fn)(void *ctx, void *buf, size_t nbytes);
int ow__st_builder_set_fill(ow__st_builder *b, const char *name, ow__st_fill_fn fill,
                            void *ctx, ow_error *err);
/* Sets metadata key to value (both copied; an existing key gets the new value, in its
 * place). Values are strings, as the format requires; JSON text is fine. The key
 * "checksums" is the builder's own (OW_ERR_MISUSE). */
int ow__st_builder_set_meta(ow__st_builder *b, const char *key, const char *value,
                            ow_error *err);
/* The whole file in a new buffer (*out, *len) the caller releases with ow_free(). */
int ow__st_builder_save_buffer(const ow__st_builder *b, void **out, size_t *len,
                               ow_error *err);
/* Writes the file atomically: a new temporary beside path (mode 0666 less the umask),
 * the data streamed from the tensors' memory, fsync, rename over path, fsync of the
 * folder. On failure (OW_ERR_IO, OW_ERR_NOMEM) the temporary is removed and whatever
 * was at path is untouched, except when only the folder's fsync fails: the new file is
 * in place then, and OW_ERR_IO says that its rename may not survive a crash. */
int ow__st_builder_save(const ow__st_builder *b, const char *path, ow_error *err);

/* ---- reading ----------------------------------------------------------------------- */

/* A checked view of a file: every entry valid, the data covered exactly, every
 * checksum (when the file has them) verified. */
typedef struct ow__st_file ow__st_file;

/* One tensor of a parsed file; valid as long as the file. */
typedef struct ow__st_tensor {
    const char *name;
    const char *dtype;         /* canonical name: compare with strcmp */
    size_t elem_size;          /* bytes per element */
    int ndim;                  /* 0: a scalar */
    const int64_t *shape;      /* [ndim] */
    size_t numel;              /* product(shape) */
    const unsigned char *data; /* [nbytes] little-endian, maybe unaligned: read it with
                                  ow__st_copy_le */
    size_t nbytes;
} ow__st_tensor;

/* Parses and checks buf[len], which is borrowed: it must outlive *out. name (copied;
 * NULL: "<buffer>") is the file named in errors. A malformed buffer fails with
 * OW_ERR_STATE ("state file: ..." saying what is wrong); *out is NULL on failure. */
int ow__st_file_parse(const void *buf, size_t len, const char *name, ow__st_file **out,
                      ow_error *err);
/* Reads the regular file at path (a FIFO, device or folder fails with OW_ERR_IO, as an
 * unreadable file does) and parses it; the file owns the bytes. */
int ow__st_file_load(const char *path, ow__st_file **out, ow_error *err);
/* Accepts NULL. */
void ow__st_file_free(ow__st_file *f);

/* The name errors use for this file (its path, or the name given to parse). */
const char *ow__st_file_get_name(const ow__st_file *f);
/* The tensors in header order: count, then i in [0, count). */
size_t ow__st_file_get_count(const ow__st_file *f);
const ow__st_tensor *ow__st_file_get_tensor(const ow__st_file *f, size_t i);
/* The tensor called name, or NULL (a binary search). */
const ow__st_tensor *ow__st_file_find(const ow__st_file *f, const char *name);
/* Metadata value of key, or NULL when absent. */
const char *ow__st_file_find_meta(const ow__st_file *f, const char *key);
/* Metadata value of key parsed as JSON into a new tree (*out, freed with ow_cfg_free).
 * Absent or not JSON: OW_ERR_STATE ("metadata lacks 'k'", "metadata 'k' is not valid
 * JSON"). */
int ow__st_file_meta_json(const ow__st_file *f, const char *key, ow_cfg **out,
                          ow_error *err);

#endif /* OW_SAFETENSORS_H */
