/*
 * chart.c - placeholder (issue 4).
 */
typedef int enpi_chart_placeholder_t;
