/* schedule_record.c -- reading a recorded schedule run (schedule.h) the same way in
 * `optwrap schedule`'s terminal chart and CSV (cmd_schedule.c) and its SVG plot
 * (schedule_svg.c): number text, group names, which curves repeat or stay flat. */
#include "schedule.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/shortest.h"

void sched_format(double v, char *buf, size_t n)
{
    char tmp[32];
    int len;
    if (v == trunc(v) && fabs(v) < 1e15) { /* 300, not 3e+02 */
        /* %.0f's text, without printf: the digits of |v|, a sign when v is below 0
         * or -0 */
        uint64_t u = (uint64_t)fabs(v);
        char *p = tmp + sizeof tmp;
        *--p = '\0';
        do
            *--p = (char)('0' + u % 10);
        while (u /= 10);
        if (signbit(v))
            *--p = '-';
        len = (int)(tmp + sizeof tmp - 1 - p);
        memmove(tmp, p, (size_t)len + 1);
    } else {
        len = ow__format_shortest_g(v, tmp);
    }
    if ((size_t)len < n)
        memcpy(buf, tmp, (size_t)len + 1);
    else if (n > 0)
        snprintf(buf, n, "%s", tmp);
}

void sched_group_name(const sched_record *r, size_t group, char *buf, size_t n)
{
    if (r->has_base_group && group == r->n_groups - 1)
        snprintf(buf, n, "base");
    else
        snprintf(buf, n, "%zu", group);
}

size_t sched_same_as(const sched_record *r, size_t key, size_t group)
{
    for (size_t h = 0; h < group; h++) {
        size_t i = 0;
        while (i < r->n_samples &&
               sched_value(r, key, h, i) == sched_value(r, key, group, i))
            i++;
        if (i == r->n_samples)
            return h;
    }
    return group;
}

bool sched_constant(const sched_record *r, size_t key)
{
    for (size_t g = 0; g < r->n_groups; g++)
        for (size_t i = 1; i < r->n_samples; i++)
            if (sched_value(r, key, g, i) != sched_value(r, key, g, 0))
                return false;
    return true;
}
