/*
 * report.c - placeholder (issue 4).
 */
typedef int enpi_report_placeholder_t;
