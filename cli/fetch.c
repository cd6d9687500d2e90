/*
 * fetch.c - placeholder (issue 4).
 */
typedef int enpi_fetch_placeholder_t;
