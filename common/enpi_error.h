/*
 * enpi_error.h - the error codes every enpi library returns.
 *
 * Functions that act return 0 on success or one of the negative ENPI_E* codes below;
 * enpi_strerror() names them for logs and CLI messages. Foreign errors (RocksDB error
 * strings, Paho return codes, libuv codes) are converted to these at the adapter that
 * meets them, after logging the foreign detail there.
 */
#ifndef ENPI_ERROR_H
#define ENPI_ERROR_H

enum {
    ENPI_OK = 0,
    ENPI_ENOMEM = -1,  /* allocation failed */
    ENPI_EINVAL = -2,  /* bad argument or bad input value */
    ENPI_EIO = -3,     /* file or storage I/O failed */
    ENPI_ENOENT = -4,  /* no such file, zone, key, meter or facility */
    ENPI_EPARSE = -5,  /* text or bytes do not parse */
    ENPI_ERANGE = -6,  /* value outside what is allowed */
    ENPI_EFULL = -7,   /* bounded queue or table is full */
    ENPI_ESTATE = -8,  /* call not valid in the object's current state */
    ENPI_EBUSY = -9,   /* resource held elsewhere (e.g. store locked by another enpid) */
    ENPI_EMQTT = -10,  /* MQTT client error */
};

/* Returns a static, human-readable name of an ENPI_E* code; never NULL. */
const char *enpi_strerror(int err);

#endif
