/*
 * pdf.h - what the printable report (pdf.c) shares with `enpi plot`: turning a facility's
 * report figures into the baseline of its SEC chart, so the PDF's charts and the plot
 * draw the same lines. enpi_report_pdf itself is declared in report.h.
 */
#ifndef ENPI_CLI_PDF_H
#define ENPI_CLI_PDF_H

#include <stddef.h>

#include "chart.h"
#include "report.h"

/*
 * Sets c's baseline from f: model sec gives a constant baseline SEC; model regression
 * gives each window with units its expected SEC, (a x days + b x units) / units, where
 * days are the window's local days (or its fraction of 24 h below a day), written into
 * w[i].baseline_sec. When there is no usable baseline, or the fit is poor, one line for
 * the chart's note goes to note (else note is left alone).
 */
void enpi_pdf_chart_baseline(const enpi_report_facility_t *f, const enpi_tz_t *tz,
                             enpi_chart_window_t *w, size_t n, enpi_chart_sec_t *c, char *note,
                             size_t note_len);

#endif
