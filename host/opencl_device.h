/*
 * opencl_device.h - the OpenCL plumbing of the device backend: readable names for OpenCL and
 * CLBlast status codes, the global device numbering that l2c_opencl_list_devices prints and
 * l2c_opencl_options.device selects, and building the embedded kernels.
 */
#ifndef L2C_OPENCL_DEVICE_H
#define L2C_OPENCL_DEVICE_H

#include <CL/cl.h>

#include "internal.h"

/* The hint that ends every "no device" message. */
#define L2C_CL_DRIVER_HINT "use --cpu, or install an OpenCL driver such as pocl-opencl-icd, " \
                           "mesa-opencl-icd or your GPU vendor's ICD"

/* "CL_OUT_OF_RESOURCES" for -5; "unknown OpenCL error" for codes no header names. */
const char *l2c_cl_error_name(cl_int err);

/* "CLBlastInsufficientMemoryA" for -1011; OpenCL codes that CLBlast passes through get their
 * OpenCL name. */
const char *l2c_clblast_status_name(int status);

/* What the backend needs to know about one device. */
typedef struct {
    cl_platform_id platform;
    cl_device_id   device;
    int            index;              /* global index over all platforms */
    char           name[256];
    char           platform_name[256];
    char           version[256];       /* CL_DEVICE_VERSION, "OpenCL 3.0 ..." */
    char           c_version[256];     /* CL_DEVICE_OPENCL_C_VERSION */
    cl_device_type type;
    cl_ulong       global_mem;         /* CL_DEVICE_GLOBAL_MEM_SIZE */
    cl_ulong       max_alloc;          /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
    size_t         max_work_group;     /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
    cl_ulong       local_mem;          /* CL_DEVICE_LOCAL_MEM_SIZE */
    int            correct_div_sqrt;   /* CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT is supported */
} l2c_cl_device;

/* "GPU", "CPU", "accelerator" or "other". */
const char *l2c_cl_device_type_name(cl_device_type type);

/* Finds the device with global index index (-1: the first one); L2C_ERR_NO_DEVICE when there is
 * no platform or no such device. */
l2c_status l2c_cl_find_device(int index, l2c_cl_device *device);

/* Fails with "<OpenCL error name> (<code>) while <what>" after formatting what. Returns status. */
l2c_status l2c_cl_fail(l2c_status status, cl_int err, const char *what_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Builds one program from every embedded kernel source (the .cl files of kernels_cl); on a
 * compile error the message holds the device's build log. */
l2c_status l2c_cl_build_program(cl_context context, const l2c_cl_device *device,
                                cl_program *program);

/* For tests: makes every product of an OpenCL backend use the named engines, whatever the
 * device would pick. gemv: "clblast" (fp32 weights only), "rows" or "wg"; gemm: "clblast" or
 * "own"; NULL keeps the current one. */
l2c_status l2c_cl_force_engines(l2c_backend *backend, const char *gemv, const char *gemm);

/* fp32 to fp16 bits, rounded to nearest with ties to even: overflow gives infinity, values
 * below the smallest subnormal half round to (signed) zero, NaN stays NaN. */
uint16_t l2c_float_to_half(float value);

#endif /* L2C_OPENCL_DEVICE_H */
