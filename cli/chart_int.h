/*
 * chart_int.h - what the files of the chart drawing share (private to cli/chart_*.c):
 * the colours, a panel with its scales and value ticks, and the drawing helpers of
 * chart_draw.c (text through pango, lines, value and time axes).
 *
 * All of it draws with cairo in user units on the caller's cairo_t, on the caller's
 * thread; nothing here keeps state between calls.
 */
#ifndef ENPI_CLI_CHART_INT_H
#define ENPI_CLI_CHART_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cairo.h>

#include "chart.h"

typedef struct {
    double r, g, b;
} rgb_t;

static const rgb_t c_text = {0.13, 0.13, 0.13};
static const rgb_t c_muted = {0.40, 0.40, 0.40};
static const rgb_t c_axis = {0.55, 0.55, 0.55};
static const rgb_t c_grid = {0.90, 0.90, 0.90};
static const rgb_t c_sec = {0.12, 0.31, 0.61};
static const rgb_t c_base = {0.25, 0.25, 0.25};
static const rgb_t c_target = {0.88, 0.50, 0.00};
static const rgb_t c_stretch = {0.16, 0.60, 0.24};
static const rgb_t c_energy = {0.42, 0.60, 0.84};
static const rgb_t c_prod = {0.72, 0.58, 0.36};
static const rgb_t c_notmet = {0.80, 0.27, 0.22};
static const rgb_t c_met = {0.56, 0.80, 0.45};

typedef struct {
    double x, y, w, h; /* plot area */
    enpi_chart_scale_t sx, sy;
    enpi_chart_ticks_t ticks;
} panel_t;

/* Draws text; align_x, align_y: 0 left/top, 0.5 centre, 1 right/bottom. Returns height. */
double chart_draw_text(cairo_t *cr, const char *s, double x, double y, double size, bool bold,
                       bool italic, double align_x, double align_y, double max_w, bool ellipsize);

/* The width of s set in size (bold or not), measured by pango. */
double chart_text_width(cairo_t *cr, const char *s, double size, bool bold);

/* Sets the cairo source colour. */
void chart_set_rgb(cairo_t *cr, rgb_t c);

/* A line from (x0, y0) to (x1, y1) in colour c, width lw, dashed when dash > 0. */
void chart_stroke_line(cairo_t *cr, double x0, double y0, double x1, double y1, rgb_t c, double lw,
                       double dash);

/* Sets p->ticks and p->sy for data in [lo, hi], with as many ticks as the height holds. */
void chart_panel_value_axis(panel_t *p, double lo, double hi, double fs);

/* The widest tick label of a value axis. */
double chart_ticks_label_width(cairo_t *cr, const enpi_chart_ticks_t *t, double fs);

/* Grid lines, tick labels left of the area and the axis label turned upwards at label_x. */
void chart_panel_draw_value_axis(cairo_t *cr, const panel_t *p, const char *label, double label_x,
                                 double fs);

/* Chooses date ticks whose measured labels do not collide across width w. */
int chart_fit_time_ticks(cairo_t *cr, const enpi_tz_t *tz, const enpi_chart_scale_t *sx,
                         int64_t from, int64_t to, double fs, enpi_chart_time_tick_t **out,
                         size_t *n);

/* Vertical grid lines at the ticks from top to bottom, labels (and context) below. */
void chart_draw_time_axis(cairo_t *cr, const enpi_chart_time_tick_t *k, size_t n,
                          const enpi_chart_scale_t *sx, double top, double bottom,
                          double right_limit, double fs);

#endif
