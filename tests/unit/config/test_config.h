/*
 * test_config.h - the groups of the test_config executable (one file per concern) and
 * small helpers they share.
 */
#ifndef ENPI_TEST_CONFIG_H
#define ENPI_TEST_CONFIG_H

#include <stddef.h>
#include <string.h>

#include "config.h"

int test_config_valid_group(void);
int test_config_errors_group(void);
int test_config_values_group(void);

/* Parses NUL-terminated YAML named "enpid.yaml"; errbuf receives the message. */
static inline int test_parse(const char *yaml, enpi_config_t **out, char *errbuf, size_t n)
{
    return enpi_config_parse("enpid.yaml", yaml, strlen(yaml), out, errbuf, n);
}

#endif
