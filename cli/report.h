/*
 * report.h - the programme report of SPEC §6 as plain data: per facility its energy,
 * units, SEC, baseline, expected and saved energy, saving and status (with the
 * regression fit where the model is regression), and the programme's figures; plus a
 * projection to period end when the period is not yet covered by data.
 *
 * Two layers. The pure core (enpi_report_fit, enpi_report_evaluate, enpi_report_uptake,
 * enpi_report_programme, enpi_report_project, enpi_report_status_name) lives in
 * report.c, needs no store and is unit-tested with hand-computed figures.
 * enpi_report_build reads the store through fetch.h and fills an enpi_report_t that
 * `enpi report` prints and that `enpi report --pdf` and `enpi plot` draw from.
 *
 * Conventions: instants are UTC ms; a double that does not apply is NAN (printed as
 * null); every enpi_report_facility_t field is filled whatever the status, so a
 * no_data facility still shows the energy and units it has.
 *
 * DESIGN: single-threaded; an enpi_report_t belongs to its creator.
 */
#ifndef ENPI_CLI_REPORT_H
#define ENPI_CLI_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "config.h"
#include "context.h"
#include "rows.h"
#include "tz.h"

typedef enum {
    ENPI_REPORT_NO_DATA = 0, /* no baseline, baseline without data, or units(P) = 0 */
    ENPI_REPORT_NOT_MET,
    ENPI_REPORT_MET,         /* saving >= target, below stretch */
    ENPI_REPORT_STRETCH_MET, /* saving >= stretch */
} enpi_report_status_t;

/* "no_data", "not_met", "met", "stretch_met". */
const char *enpi_report_status_name(enpi_report_status_t s);

/* An OLS fit E_d = a + b * U_d over baseline days. */
typedef struct {
    double a;      /* kWh per day */
    double b;      /* kWh per unit */
    double r2;     /* coefficient of determination; NAN when the energies do not vary */
    size_t n;      /* baseline days with U_d > 0 */
    bool ok;       /* a and b exist: n >= 2 and the U_d are not all equal */
    bool poor_fit; /* n < 10 or R² < 0.5 (or R² undefined): flagged, not hidden */
} enpi_report_fit_t;

/* One facility's figures over the period. */
typedef struct {
    const enpi_facility_cfg_t *cfg; /* points into the report's configuration */
    const char *id;                 /* cfg->id */
    const char *name;               /* cfg->name (defaults to the id) */
    const char *product_unit;       /* cfg->product_unit; NULL when absent */
    enpi_baseline_model_t model;    /* NONE: no baseline configured */
    bool fixed_sec;                 /* model sec with a fixed { sec: N } */
    const enpi_tz_t *tz;            /* the facility's zone (owned by the context) */
    const char *timezone;           /* its IANA name */
    int64_t from;                   /* the period in this facility's zone, [from, to) */
    int64_t to;
    bool has_baseline_period; /* base_from/base_to are meaningful */
    int64_t base_from;        /* the baseline period in this facility's zone */
    int64_t base_to;
    double energy_kwh;   /* energy(P); 0 when there are no rows */
    double units;        /* units(P) */
    double sec;          /* energy / units; NAN when units = 0 */
    double baseline_sec; /* sec: from the baseline or fixed; regression:
                            expected / units; NAN when it does not apply */
    double expected_kwh; /* NAN for no_data */
    double saved_kwh;    /* expected - energy; NAN for no_data */
    double saving_pct;   /* 100 * saved / expected; NAN for no_data */
    enpi_report_status_t status;
    const char *no_data_reason; /* static text when status is no_data, else NULL */
    bool has_fit;               /* model regression and a fit was attempted */
    enpi_report_fit_t fit;
    bool has_aware_since; /* programme registry dates as instants */
    int64_t aware_since;
    bool has_applying_since;
    int64_t applying_since;
    /* Projection to period end (see enpi_report_project). */
    int64_t data_end;       /* how far the facility's data reaches (fetch.h), INT64_MIN: none */
    bool complete;          /* the data covers the whole period: no projection needed */
    double covered;         /* fraction of the period covered, in (0, 1]; NAN when none */
    double proj_energy_kwh; /* projected to period end; NAN when not projectable or no_data */
    double proj_expected_kwh;
    double proj_saved_kwh;
} enpi_report_facility_t;

/* Aware or applying facilities at period start and end (SPEC §6). */
typedef struct {
    size_t start;       /* *_since <= from */
    size_t end;         /* *_since < to */
    double increase_pp; /* 100 * (end - start) / facilities; NAN when there are none */
    double target_pp;   /* programme aware/applying_increase_pp; NAN when not set (0) */
} enpi_report_uptake_t;

/* The programme's figures over the facilities of the report. */
typedef struct {
    size_t facilities;
    size_t with_data; /* status other than no_data */
    size_t met;       /* met or stretch_met */
    size_t stretch_met;
    double met_pct; /* 100 * met / with_data; NAN when with_data = 0 */
    double stretch_met_pct;
    double expected_kwh; /* sums over the facilities with data */
    double energy_kwh;
    double saved_kwh;
    double saving_pct; /* 100 * saved / expected; NAN when with_data = 0 */
    enpi_report_uptake_t aware;
    enpi_report_uptake_t applying;
} enpi_report_programme_t;

/* The programme's totals projected to period end. */
typedef struct {
    bool needed;          /* some facility with data does not cover the whole period */
    size_t projected;     /* facilities with data scaled up (the others count as they are) */
    size_t unprojectable; /* facilities with data whose data does not reach into the period */
    double energy_kwh;
    double expected_kwh;
    double saved_kwh;
    double saving_pct;
} enpi_report_projection_t;

typedef struct {
    const enpi_config_t *cfg; /* the configuration read (owned by the context) */
    const char *programme;    /* programme.name; NULL when absent */
    enpi_civil_t period_from; /* the period as written (no zone applied) */
    enpi_civil_t period_to;
    int64_t from; /* the period in the top-level zone */
    int64_t to;
    const enpi_tz_t *tz;       /* the top-level zone (owned by the context) */
    double target_pct;         /* programme.target_saving, e.g. 8 */
    double stretch_pct;        /* programme.stretch_saving, e.g. 13 */
    double aware_target_pp;    /* programme.aware_increase_pp (0: no target) */
    double applying_target_pp; /* programme.applying_increase_pp (0: no target) */
    int64_t now_ms;
    enpi_report_facility_t *facilities; /* configuration order; malloc'd */
    size_t n_facilities;
    enpi_report_programme_t programme_figures;
    enpi_report_projection_t projection;
} enpi_report_t;

typedef struct {
    const char *period;      /* "FROM..TO" (dates or date-times); NULL: programme.period */
    const char *facility_id; /* only this facility; NULL: all */
} enpi_report_opts_t;

/*
 * Builds the report from the store. Needs ctx open; the report points into ctx's
 * configuration and zones, so free it before closing ctx. Returns 0, ENPI_EINVAL with
 * d->usage set for a bad --period or an unknown facility id (ENPI_ENOENT), or another
 * ENPI_E* code with d filled; on error *out holds nothing to free.
 */
int enpi_report_build(enpi_cli_ctx_t *ctx, const enpi_report_opts_t *opts, enpi_report_t *out,
                      enpi_cli_diag_t *d);
void enpi_report_free(enpi_report_t *r);

/*
 * Writes the printable programme report to `path` (cli/pdf.c): a summary page and a
 * page per facility. Returns 0 or an ENPI_E* code with d filled.
 */
int enpi_report_pdf(const char *path, const enpi_report_t *r, enpi_cli_ctx_t *ctx,
                    enpi_cli_diag_t *d);

/* ---- the pure core (report.c; no store) ---- */

/*
 * OLS of e on u over the n points with u > 0 (the others are skipped): fills *out
 * (ok false when fewer than two such points or all their u are equal).
 */
void enpi_report_fit(const double *u, const double *e, size_t n, enpi_report_fit_t *out);

/* What enpi_report_evaluate needs for one facility, gathered from the store. */
typedef struct {
    enpi_baseline_model_t model;
    bool fixed_sec; /* model sec with a fixed SEC */
    double fixed_sec_value;
    bool baseline_ok;       /* the baseline period could be read (aligned to windows) */
    double base_energy_kwh; /* model sec from a period: totals over the baseline */
    double base_units;
    size_t base_rows;                /* rows found in the baseline period */
    const enpi_cli_row_t *base_days; /* model regression: 1d rows of the baseline */
    size_t n_base_days;
    bool days_ok;            /* regression: 1d is configured and the period is whole days */
    const char *days_reason; /* why not, when !days_ok */
    double energy_kwh;       /* energy(P), units(P) */
    double units;
    const enpi_cli_row_t *days; /* model regression: 1d rows of P */
    size_t n_days;
    double target_pct;
    double stretch_pct;
} enpi_report_input_t;

/*
 * Fills the figures of *f (energy_kwh .. fit) from *in per SPEC §6: baseline SEC,
 * expected, saved, saving, status and the no_data reason. Leaves the other fields of
 * *f alone.
 */
void enpi_report_evaluate(const enpi_report_input_t *in, enpi_report_facility_t *f);

/*
 * Aware (or applying) counts: since[i] is facility i's date as an instant (has[i] false
 * when it has none), from[i]/to[i] its period. target_pp 0 means no target (NAN).
 */
void enpi_report_uptake(const bool *has, const int64_t *since, const int64_t *from,
                        const int64_t *to, size_t n, double target_pp, enpi_report_uptake_t *out);

/* The programme's figures over r's facilities (their figures and registry dates set). */
void enpi_report_programme(enpi_report_t *r);

/*
 * Projection to period end, assuming each facility's saving rate so far persists: a
 * facility whose data reaches only to data_end < to covers c = (data_end - from) /
 * (to - from) of the period, and its energy, expected and saved are divided by c; one
 * whose data reaches to `to` counts as it is; one with data_end <= from cannot be
 * projected and counts as it is (counted in unprojectable). Sets each facility's
 * complete/covered/proj_* fields and r->projection (needed false when every facility
 * with data is complete). Call after enpi_report_programme.
 */
void enpi_report_project(enpi_report_t *r);

/*
 * The coarsest configured resolution whose windows in zone tz start exactly at `from`
 * and at `to`, so the period is a whole number of its windows. Returns false when no
 * configured resolution fits (e.g. a period starting at 10:07 with 15m as the finest).
 */
bool enpi_report_resolution_for(const enpi_config_t *cfg, const enpi_tz_t *tz, int64_t from,
                                int64_t to, enpi_duration_t *out);

/* The 1d resolution when it is configured (true), for the regression model. */
bool enpi_report_daily(const enpi_config_t *cfg, enpi_duration_t *out);

/*
 * Display width of UTF-8 text in terminal columns: combining marks and zero-width
 * characters 0, East Asian wide characters 2, others 1 (bytes that are not UTF-8 count 1
 * each). Vietnamese written with combining marks (NFD) is as wide as in NFC.
 */
size_t enpi_report_text_width(const char *s);

/*
 * Copies s into buf (size n), cut so its display width is at most `width` columns:
 * when it is cut, the last column holds "…". Never splits a UTF-8 sequence and keeps
 * a cut character's combining marks out. Returns buf.
 */
char *enpi_report_truncate(const char *s, size_t width, char *buf, size_t n);

#endif
