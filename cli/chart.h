/*
 * chart.h - the pictures `enpi` draws: a facility's SEC over time with its baseline,
 * target and stretch lines and the energy and production beneath (`enpi plot`, and each
 * facility page of `enpi report --pdf`), and the programme's bar chart of savings against
 * the target and stretch lines (the PDF's summary page).
 *
 * One drawing code path: every picture is drawn into a cairo_t in user units, so the same
 * function fills an SVG, a PNG or a page of a PDF. Text is laid out by pango (shaping,
 * so Vietnamese and any other script render correctly) in DejaVu Sans; cairo's toy text
 * API is never used.
 *
 * The pure parts behind the drawing - "nice" axis ticks, the linear scale, the choice of
 * date ticks in a facility's zone - are exposed so that they can be tested alone.
 *
 * DESIGN: single-threaded; nothing here keeps state between calls.
 */
#ifndef ENPI_CLI_CHART_H
#define ENPI_CLI_CHART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cairo.h>

#include "tz.h"

/* ------------------------------------------------------------------ pure parts */

/* Ticks of a value axis: first, first + step, ... (n of them). */
typedef struct {
    double first; /* lowest tick, a multiple of step, <= the data minimum */
    double step;  /* 1, 2 or 5 times a power of ten */
    int n;        /* number of ticks, 2..max_ticks */
    int decimals; /* digits after the point that write every tick exactly */
} enpi_chart_ticks_t;

/*
 * Ticks covering [lo, hi] with at most max_ticks ticks (>= 3: a range straddling a tick
 * may need 3 whatever the step): the smallest step of the form {1, 2, 5} x 10^k that
 * needs no more, the first tick at or below lo and the last at or above hi. An empty
 * range (lo == hi) is widened around the value. Returns 0, or ENPI_EINVAL for a
 * non-finite bound, lo > hi or max_ticks < 3.
 */
int enpi_chart_nice_ticks(double lo, double hi, int max_ticks, enpi_chart_ticks_t *out);

/* The value of tick i. */
double enpi_chart_tick_value(const enpi_chart_ticks_t *t, int i);

/*
 * Writes v with `decimals` digits after the point; thousands are grouped with a thin
 * space when |v| >= 10000; "-0" is written "0". Returns the length, or -1 when n is
 * too small (48 bytes always suffice).
 */
int enpi_chart_format_value(double v, int decimals, char *buf, size_t n);

/* A linear map of the domain [d0, d1] onto the range [r0, r1] (r0 > r1 for a y axis). */
typedef struct {
    double d0;
    double d1;
    double r0;
    double r1;
} enpi_chart_scale_t;

/* The range position of v; the middle of the range when the domain is empty. */
double enpi_chart_scale_map(const enpi_chart_scale_t *s, double v);

/* One tick of a time axis, in the facility's zone. */
typedef struct {
    int64_t t;        /* UTC ms */
    char label[16];   /* "06:00", "25", "Mar", "2018" */
    char context[24]; /* second line where the larger unit changes ("25 Mar 2018",
                         "Mar 2018", "2018"), else "" */
} enpi_chart_time_tick_t;

/*
 * Time ticks for the axis [from, to]: the finest of 1, 2, 3, 6, 12 hours, 1, 2 days,
 * 1, 2 weeks (Mondays), 1, 2, 3, 6 months, 1, 2, 5, 10... years that gives at most
 * max_ticks ticks (>= 1) inside [from, to]. Ticks sit on local wall-clock boundaries of
 * tz (local hours, midnights, the 1st of a month), so across a DST change they stay on
 * "00:00", "06:00" and are 23 or 25 hours apart where the day is. A local hour skipped
 * by DST gives no tick of its own. The first tick of each larger unit carries a context
 * line. *out is malloc'd (NULL when *n is 0); the caller frees it. Returns 0, ENPI_EINVAL
 * (from >= to, max_ticks < 1) or ENPI_ENOMEM.
 */
int enpi_chart_time_ticks(const enpi_tz_t *tz, int64_t from, int64_t to, int max_ticks,
                          enpi_chart_time_tick_t **out, size_t *n);

/* ------------------------------------------------------------------ drawing */

/* One window of a facility for the SEC chart. */
typedef struct {
    int64_t start; /* UTC ms, inclusive */
    int64_t end;   /* UTC ms, exclusive */
    double energy_kwh;
    double units;        /* SEC is drawn where units > 0; elsewhere a gap */
    double baseline_sec; /* expected SEC of this window (regression model); NAN: none */
} enpi_chart_window_t;

typedef enum {
    ENPI_CHART_BASELINE_NONE = 0, /* no baseline: only the SEC is drawn, and a note */
    ENPI_CHART_BASELINE_CONSTANT, /* one baseline SEC (model sec) */
    ENPI_CHART_BASELINE_WINDOWS,  /* per window expected SEC (model regression) */
} enpi_chart_baseline_t;

typedef struct {
    const char *title;        /* the facility's name (UTF-8) */
    const char *subtitle;     /* e.g. "f001 - 1d windows, 2018-01-01 to 2019-01-01"; may be NULL */
    const char *product_unit; /* "t", "pcs"; NULL: "unit" */
    const enpi_tz_t *tz;      /* the facility's zone: date ticks and axis label */
    int64_t from;             /* the time axis [from, to) */
    int64_t to;
    const enpi_chart_window_t *windows; /* ascending by start */
    size_t n_windows;
    enpi_chart_baseline_t baseline;
    double baseline_sec; /* CONSTANT only */
    double target_pct;   /* 8: target line = baseline x (1 - 0.08) */
    double stretch_pct;  /* 13 */
    const char *note;    /* shown under the legend (e.g. a poor-fit warning); may be NULL */
    double font_size;    /* base text size in user units (13 for a 1200 px PNG) */
} enpi_chart_sec_t;

/*
 * Draws the SEC chart into the rectangle (x, y, w, h) of cr: title, legend, the SEC
 * panel (a step line per window; windows without production are gaps; values far above
 * the rest are clipped and marked), and the energy and production panels sharing the
 * time axis. Leaves cr's state as it found it. Returns 0, or ENPI_ENOMEM.
 */
int enpi_chart_draw_sec(cairo_t *cr, double x, double y, double w, double h,
                        const enpi_chart_sec_t *c);

/* One bar of the savings chart. */
typedef struct {
    const char *label; /* facility name (UTF-8); ellipsized when long */
    bool has_value;    /* false: drawn as "no data" */
    double saving_pct;
} enpi_chart_bar_t;

/*
 * Draws one horizontal bar per facility (saving % of SEC against the baseline), coloured
 * by whether it meets the stretch, the target or neither, with vertical lines at the
 * target and stretch savings, into the rectangle (x, y, w, h). Returns 0 or ENPI_ENOMEM.
 */
int enpi_chart_draw_savings(cairo_t *cr, double x, double y, double w, double h,
                            const enpi_chart_bar_t *bars, size_t n, double target_pct,
                            double stretch_pct, double font_size);

/*
 * Text drawn through pango in DejaVu Sans at `size` user units, `bold` or not, with its
 * top-left corner at (x, y) - shifted by align_x (0 left, 0.5 centre, 1 right) of its
 * width. Wrapped at max_w when max_w > 0. Returns the height used.
 */
double enpi_chart_text(cairo_t *cr, const char *s, double x, double y, double size, bool bold,
                       double align_x, double max_w);

/* ------------------------------------------------------------------ files */

typedef enum { ENPI_CHART_SVG = 0, ENPI_CHART_PNG, ENPI_CHART_PDF } enpi_chart_format_t;

/* The format named by a path's extension (.svg, .png, .pdf; any letter case). Returns 0,
 * or ENPI_EINVAL for any other name. */
int enpi_chart_format_of(const char *path, enpi_chart_format_t *out);

/*
 * A drawing target that writes `path` atomically: the picture goes to a temporary file
 * next to it, renamed over `path` only when complete. Sizes: pixels for PNG, points for
 * SVG and PDF. For a PDF, enpi_chart_file_page() ends a page and starts the next.
 */
typedef struct enpi_chart_file enpi_chart_file_t;

/* Opens the target; *cr_out is the cairo context to draw into (owned by the file).
 * Returns 0, ENPI_EIO (err filled with the reason) or ENPI_ENOMEM. */
int enpi_chart_file_open(const char *path, enpi_chart_format_t fmt, double width, double height,
                         enpi_chart_file_t **out, cairo_t **cr_out, char *err, size_t errlen);
/* PDF: ends the current page; the next drawing goes to a new page of the same size. */
void enpi_chart_file_page(enpi_chart_file_t *f);
/* Finishes the picture and renames it into place. Returns 0, or ENPI_EIO (err filled;
 * nothing is left at path or in the temporary file). Frees f in every case. */
int enpi_chart_file_close(enpi_chart_file_t *f, char *err, size_t errlen);
/* Abandons the picture: frees f and removes the temporary file. NULL is allowed. */
void enpi_chart_file_abort(enpi_chart_file_t *f);

#endif
