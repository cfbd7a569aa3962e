/* schedule_svg.c -- the plot of `optwrap schedule -o FILE.svg`: one panel per key (lr,
 * momentum, ...), one line per distinct group curve, iterations on the bottom axis and
 * epochs on the top one. Plain SVG 1.1, no script, no external resources. */
#include "schedule.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#define WIDTH      800
#define PANEL      270
#define TITLE      34
#define LEFT       78
#define RIGHT      170
#define TOP        44
#define BOTTOM     44
#define MAX_LEGEND 10

static const char *const colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                     "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                     "#bcbd22", "#17becf"};

static void put_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            /* control characters are not allowed in XML 1.0 */
            fputc((unsigned char)*s < 0x20 ? '?' : *s, f);
        }
    }
}

/* A round step that cuts range into about `parts` pieces (1, 2 or 5 times 10^k). */
static double nice_step(double range, double parts)
{
    double raw = range / parts;
    double mag = pow(10, floor(log10(raw)));
    double norm = raw / mag;
    return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

typedef struct frame {
    double x0, x1, y0, y1; /* plot area */
    double lo, hi;         /* value range */
    double total;          /* iterations */
} frame;

static double fx(const frame *p, double iter)
{
    return p->x0 + iter / p->total * (p->x1 - p->x0);
}

static double fy(const frame *p, double v)
{
    return p->y1 - (v - p->lo) / (p->hi - p->lo) * (p->y1 - p->y0);
}

static void axes(FILE *f, const sched_record *r, const frame *p, const char *key)
{
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#444\"/>\n",
            p->x0, p->y0, p->x1 - p->x0, p->y1 - p->y0);
    /* iterations, below */
    double step = nice_step(p->total, 6);
    for (double t = 0; t <= p->total + step * 1e-9; t += step) {
        double x = fx(p, t);
        fprintf(
            f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n",
            x, p->y1, x, p->y1 + 4);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", x,
                p->y1 + 17, t);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">iteration</text>\n",
            (p->x0 + p->x1) / 2, p->y1 + 34);
    /* epochs, above */
    if (r->epoch_length > 0) {
        double epochs = (double)r->total / (double)r->epoch_length;
        double estep = nice_step(epochs, 6);
        if (estep < 1)
            estep = 1;
        for (double e = 0; e <= epochs + estep * 1e-9; e += estep) {
            double x = fx(p, e * (double)r->epoch_length);
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                    "stroke=\"#444\"/>\n",
                    x, p->y0, x, p->y0 - 4);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                    x, p->y0 - 8, e);
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">epoch</text>\n",
                (p->x0 + p->x1) / 2, p->y0 - 24);
    }
    /* values, left, with light grid lines */
    double vstep = nice_step(p->hi - p->lo, 5);
    for (double v = ceil(p->lo / vstep) * vstep; v <= p->hi + vstep * 1e-9; v += vstep) {
        double y = fy(p, v);
        fprintf(
            f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
            p->x0, y, p->x1, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n",
                p->x0 - 6, y + 4, fabs(v) < vstep * 1e-9 ? 0.0 : v);
    }
    fprintf(f,
            "<text transform=\"translate(%d %.1f) rotate(-90)\" text-anchor=\"middle\">",
            16, (p->y0 + p->y1) / 2);
    put_text(f, key);
    fputs("</text>\n", f);
}

static void curves(FILE *f, const sched_record *r, const frame *p, size_t k)
{
    size_t shown = 0;
    for (size_t g = 0; g < r->n_groups; g++) {
        if (sched_same_as(r, k, g) != g)
            continue;
        const char *color = colors[shown % (sizeof colors / sizeof colors[0])];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
                color);
        for (size_t i = 0; i < r->n_samples; i++) {
            double v = sched_value(r, k, g, i);
            if (isfinite(v))
                fprintf(f, "%s%.1f,%.1f", i ? " " : "", fx(p, (double)r->iters[i]),
                        fy(p, v));
        }
        fputs("\"/>\n", f);
        if (shown < MAX_LEGEND) {
            size_t equal = 0;
            for (size_t h = g + 1; h < r->n_groups; h++)
                equal += sched_same_as(r, k, h) == g;
            char name[24];
            sched_group_name(r, g, name, sizeof name);
            double y = p->y0 + 8 + 18.0 * (double)shown;
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-width=\"2\"/>\n",
                    p->x1 + 12, y, p->x1 + 32, y, color);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">group %s", p->x1 + 38, y + 4, name);
            if (equal)
                fprintf(f, " (+%zu equal)", equal);
            fputs("</text>\n", f);
        }
        shown++;
    }
    if (shown > MAX_LEGEND)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">... %zu more</text>\n", p->x1 + 38,
                p->y0 + 12 + 18.0 * MAX_LEGEND, shown - MAX_LEGEND);
}

int sched_write_svg(FILE *f, const sched_record *r)
{
    size_t panels = 0;
    for (size_t k = 0; k < r->n_keys; k++)
        panels += !sched_constant(r, k) || k == 0;
    int height = TITLE + (int)panels * PANEL;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
            "font-size=\"12\">\n",
            WIDTH, height, WIDTH, height);
    fputs("<title>", f);
    put_text(f, r->title);
    fputs(": schedule</title>\n", f);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", WIDTH, height);
    fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"15\">", LEFT);
    put_text(f, r->title);
    fprintf(f, ": %zu group%s, %" PRId64 " iterations</text>\n", r->n_groups,
            r->n_groups == 1 ? "" : "s", r->total);
    for (size_t k = 0, panel = 0; k < r->n_keys; k++) {
        if (sched_constant(r, k) && k != 0)
            continue; /* not scheduled: nothing to see (lr is always drawn) */
        frame p = {.x0 = LEFT,
                   .x1 = WIDTH - RIGHT,
                   .total = r->total > 0 ? (double)r->total : 1};
        p.y0 = TITLE + (double)panel * PANEL + TOP;
        p.y1 = TITLE + (double)(panel + 1) * PANEL - BOTTOM;
        panel++;
        p.lo = INFINITY;
        p.hi = -INFINITY;
        for (size_t g = 0; g < r->n_groups; g++)
            for (size_t i = 0; i < r->n_samples; i++) {
                double v = sched_value(r, k, g, i);
                if (isfinite(v)) {
                    p.lo = v < p.lo ? v : p.lo;
                    p.hi = v > p.hi ? v : p.hi;
                }
            }
        if (!(p.hi >= p.lo))
            p.lo = 0, p.hi = 1;
        if (p.lo > 0)
            p.lo = 0;
        if (p.hi <= p.lo)
            p.hi = p.lo + 1;
        fprintf(f, "<g>\n");
        axes(f, r, &p, r->keys[k]);
        curves(f, r, &p, k);
        fprintf(f, "</g>\n");
    }
    fputs("</svg>\n", f);
    return ferror(f) ? -1 : 0;
}
