/*
 * chart_file.c - the files charts are drawn into: SVG, PNG or PDF chosen by the file
 * name, one cairo surface per file (several pages for PDF), written out at close.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cairo-pdf.h>
#include <cairo-svg.h>

#include "chart.h"
#include "enpi_error.h"

/* ------------------------------------------------------------------ files */

int enpi_chart_format_of(const char *path, enpi_chart_format_t *out)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return ENPI_EINVAL;
    if (strcasecmp(dot, ".svg") == 0)
        *out = ENPI_CHART_SVG;
    else if (strcasecmp(dot, ".png") == 0)
        *out = ENPI_CHART_PNG;
    else if (strcasecmp(dot, ".pdf") == 0)
        *out = ENPI_CHART_PDF;
    else
        return ENPI_EINVAL;
    return 0;
}

struct enpi_chart_file {
    enpi_chart_format_t fmt;
    char *path;
    char *tmp;
    FILE *fp;
    bool write_failed;
    cairo_surface_t *surface;
    cairo_t *cr;
};

static cairo_status_t write_cb(void *closure, const unsigned char *data, unsigned int len)
{
    enpi_chart_file_t *f = closure;
    if (fwrite(data, 1, len, f->fp) != len) {
        f->write_failed = true;
        return CAIRO_STATUS_WRITE_ERROR;
    }
    return CAIRO_STATUS_SUCCESS;
}

static void file_free(enpi_chart_file_t *f)
{
    if (f->cr)
        cairo_destroy(f->cr);
    if (f->surface)
        cairo_surface_destroy(f->surface);
    if (f->fp)
        fclose(f->fp);
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    free(f);
}

int enpi_chart_file_open(const char *path, enpi_chart_format_t fmt, double width, double height,
                         enpi_chart_file_t **out, cairo_t **cr_out, char *err, size_t errlen)
{
    *out = NULL;
    *cr_out = NULL;
    enpi_chart_file_t *f = calloc(1, sizeof *f);
    if (!f)
        return ENPI_ENOMEM;
    f->fmt = fmt;
    size_t len = strlen(path);
    f->path = strdup(path);
    f->tmp = malloc(len + 32);
    if (!f->path || !f->tmp) {
        free(f->tmp);
        f->tmp = NULL;
        file_free(f);
        return ENPI_ENOMEM;
    }
    snprintf(f->tmp, len + 32, "%s.tmp-%ld", path, (long)getpid());
    f->fp = fopen(f->tmp, "wb");
    if (!f->fp) {
        snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        file_free(f);
        return ENPI_EIO;
    }
    switch (fmt) {
    case ENPI_CHART_SVG:
        f->surface = cairo_svg_surface_create_for_stream(write_cb, f, width, height);
        cairo_svg_surface_set_document_unit(f->surface, CAIRO_SVG_UNIT_PX);
        break;
    case ENPI_CHART_PDF:
        f->surface = cairo_pdf_surface_create_for_stream(write_cb, f, width, height);
        break;
    case ENPI_CHART_PNG:
        f->surface =
            cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)ceil(width), (int)ceil(height));
        break;
    }
    f->cr = cairo_create(f->surface);
    if (cairo_status(f->cr) != CAIRO_STATUS_SUCCESS) {
        snprintf(err, errlen, "cannot draw '%s': %s", path,
                 cairo_status_to_string(cairo_status(f->cr)));
        file_free(f);
        return ENPI_ENOMEM;
    }
    /* a white page: PNG has no transparency here and SVG viewers vary */
    cairo_set_source_rgb(f->cr, 1, 1, 1);
    cairo_paint(f->cr);
    *out = f;
    *cr_out = f->cr;
    return 0;
}

void enpi_chart_file_page(enpi_chart_file_t *f)
{
    cairo_show_page(f->cr);
    cairo_set_source_rgb(f->cr, 1, 1, 1);
    cairo_paint(f->cr);
}

int enpi_chart_file_close(enpi_chart_file_t *f, char *err, size_t errlen)
{
    int rc = 0;
    cairo_status_t st = cairo_status(f->cr);
    if (st == CAIRO_STATUS_SUCCESS && f->fmt == ENPI_CHART_PNG)
        st = cairo_surface_write_to_png_stream(f->surface, write_cb, f);
    cairo_destroy(f->cr);
    f->cr = NULL;
    cairo_surface_finish(f->surface);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(f->surface);
    cairo_surface_destroy(f->surface);
    f->surface = NULL;
    if (st != CAIRO_STATUS_SUCCESS || f->write_failed) {
        snprintf(err, errlen, "cannot write '%s': %s", f->path,
                 f->write_failed ? strerror(errno) : cairo_status_to_string(st));
        rc = ENPI_EIO;
        goto free_file;
    }
    FILE *fp = f->fp;
    f->fp = NULL;
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        snprintf(err, errlen, "cannot write '%s': %s", f->path, strerror(errno));
        fclose(fp);
        rc = ENPI_EIO;
        goto free_file;
    }
    if (fclose(fp) != 0) {
        snprintf(err, errlen, "cannot write '%s': %s", f->path, strerror(errno));
        rc = ENPI_EIO;
        goto free_file;
    }
    if (rename(f->tmp, f->path) != 0) {
        snprintf(err, errlen, "cannot write '%s': %s", f->path, strerror(errno));
        rc = ENPI_EIO;
        goto free_file;
    }
    free(f->tmp);
    f->tmp = NULL; /* renamed: nothing to remove */
free_file:
    file_free(f);
    return rc;
}

void enpi_chart_file_abort(enpi_chart_file_t *f)
{
    if (f)
        file_free(f);
}
