/*
 * reload.c - SIGHUP: re-reading the configuration (placeholder until issue 5's work lands).
 */
#include "enpid.h"

void enpid_reload(enpid_t *d)
{
    log_notice("signal SIGHUP: reload not yet supported; configuration unchanged");
}
