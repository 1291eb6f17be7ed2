/*
 * status.c - status names and the per-thread message of the last failure.
 */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local char last_error[2048];

const char *l2c_status_name(l2c_status status) {
    switch (status) {
    case L2C_OK:              return "success";
    case L2C_ERR_IO:          return "input/output error";
    case L2C_ERR_FORMAT:      return "malformed file";
    case L2C_ERR_ARG:         return "invalid argument";
    case L2C_ERR_NOMEM:       return "out of memory";
    case L2C_ERR_NO_DEVICE:   return "no OpenCL device";
    case L2C_ERR_DEVICE:      return "OpenCL device error";
    case L2C_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}

const char *l2c_last_error(void) {
    return last_error[0] ? last_error : "no error recorded";
}

l2c_status l2c_fail(l2c_status status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
    return status;
}
