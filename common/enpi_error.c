/* enpi_error.c - names of the ENPI_E* codes (see enpi_error.h). */
#include "enpi_error.h"

const char *enpi_strerror(int err)
{
    switch (err) {
    case ENPI_OK: return "success";
    case ENPI_ENOMEM: return "out of memory";
    case ENPI_EINVAL: return "invalid argument";
    case ENPI_EIO: return "input/output error";
    case ENPI_ENOENT: return "not found";
    case ENPI_EPARSE: return "parse error";
    case ENPI_ERANGE: return "value out of range";
    case ENPI_EFULL: return "full";
    case ENPI_ESTATE: return "invalid state";
    case ENPI_EBUSY: return "busy";
    case ENPI_EMQTT: return "MQTT error";
    default: return "unknown error";
    }
}
