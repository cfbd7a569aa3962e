/* schedule.h -- what `optwrap schedule` records while it runs a schedule, shared by its
 * terminal chart and CSV (cmd_schedule.c) and its SVG plot (schedule_svg.c), and the
 * readers of that record both use (schedule_record.c). */
#ifndef OW_CLI_SCHEDULE_H
#define OW_CLI_SCHEDULE_H

#include "cli.h"

#define SCHED_MAX_KEYS 4 /* lr, momentum and up to two more scheduled keys */
#define SCHED_MAX_SAMPLES                                                                \
    2001 /* points kept per curve: 3 or more per pixel of the plot */

/* The run, sampled: v[(k * n_groups + g) * n_samples + i] is key k of group g at
 * iteration iters[i] (before that iteration's optimizer step). */
typedef struct sched_record {
    const char *title; /* the config's name */
    size_t n_groups;
    bool has_base_group;
    size_t n_keys;
    const char *keys[SCHED_MAX_KEYS];
    int64_t epoch_length; /* 0: unknown */
    int64_t total;        /* iterations in the run */
    size_t n_samples;
    int64_t *iters; /* [n_samples] */
    double *v;
} sched_record;

static inline double sched_value(const sched_record *r, size_t key, size_t group,
                                 size_t i)
{
    return r->v[(key * r->n_groups + group) * r->n_samples + i];
}

/* ---- schedule_record.c ----------------------------------------------------------- */

/* "0", "1", ... or "base" for mmengine's base_param_settings group. */
void sched_group_name(const sched_record *r, size_t group, char *buf, size_t n);
/* The shortest text that reads back as v ("0.1", "1e-05"). */
void sched_format(double v, char *buf, size_t n);
/* Groups whose curves of key are equal to an earlier group's are drawn once: the
 * index of the first group with the same curve. */
size_t sched_same_as(const sched_record *r, size_t key, size_t group);

/* True when key keeps one value in every group over the whole run (not scheduled):
 * the chart and the plot mention it instead of drawing it. */
bool sched_constant(const sched_record *r, size_t key);

/* ---- schedule_svg.c -------------------------------------------------------------- */

/* Writes the plot: one panel per key that changes, one line per distinct curve,
 * iterations below and epochs above. Returns 0, or -1 when writing failed. */
int sched_write_svg(FILE *f, const sched_record *r);

#endif
