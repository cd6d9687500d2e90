/*
 * retention.c - deleting rollups older than storage.retention (placeholder, issue 5).
 */
typedef int enpi_retention_placeholder_t;
