/*
 * opencl_device.c - OpenCL status names, device enumeration and listing, and building the
 * embedded kernels.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clblast_c.h>

#include "opencl_device.h"

/* ------------------------------------------------------------------------------------------------
 * status names
 */

const char *l2c_cl_error_name(cl_int err) {
    switch (err) {
    case CL_SUCCESS:                                   return "CL_SUCCESS";
    case CL_DEVICE_NOT_FOUND:                          return "CL_DEVICE_NOT_FOUND";
    case CL_DEVICE_NOT_AVAILABLE:                      return "CL_DEVICE_NOT_AVAILABLE";
    case CL_COMPILER_NOT_AVAILABLE:                    return "CL_COMPILER_NOT_AVAILABLE";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:             return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_OUT_OF_RESOURCES:                          return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY:                        return "CL_OUT_OF_HOST_MEMORY";
    case CL_PROFILING_INFO_NOT_AVAILABLE:              return "CL_PROFILING_INFO_NOT_AVAILABLE";
    case CL_MEM_COPY_OVERLAP:                          return "CL_MEM_COPY_OVERLAP";
    case CL_IMAGE_FORMAT_MISMATCH:                     return "CL_IMAGE_FORMAT_MISMATCH";
    case CL_IMAGE_FORMAT_NOT_SUPPORTED:                return "CL_IMAGE_FORMAT_NOT_SUPPORTED";
    case CL_BUILD_PROGRAM_FAILURE:                     return "CL_BUILD_PROGRAM_FAILURE";
    case CL_MAP_FAILURE:                               return "CL_MAP_FAILURE";
    case CL_MISALIGNED_SUB_BUFFER_OFFSET:              return "CL_MISALIGNED_SUB_BUFFER_OFFSET";
    case CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST:
        return "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST";
    case CL_COMPILE_PROGRAM_FAILURE:                   return "CL_COMPILE_PROGRAM_FAILURE";
    case CL_LINKER_NOT_AVAILABLE:                      return "CL_LINKER_NOT_AVAILABLE";
    case CL_LINK_PROGRAM_FAILURE:                      return "CL_LINK_PROGRAM_FAILURE";
    case CL_DEVICE_PARTITION_FAILED:                   return "CL_DEVICE_PARTITION_FAILED";
    case CL_KERNEL_ARG_INFO_NOT_AVAILABLE:             return "CL_KERNEL_ARG_INFO_NOT_AVAILABLE";
    case CL_INVALID_VALUE:                             return "CL_INVALID_VALUE";
    case CL_INVALID_DEVICE_TYPE:                       return "CL_INVALID_DEVICE_TYPE";
    case CL_INVALID_PLATFORM:                          return "CL_INVALID_PLATFORM";
    case CL_INVALID_DEVICE:                            return "CL_INVALID_DEVICE";
    case CL_INVALID_CONTEXT:                           return "CL_INVALID_CONTEXT";
    case CL_INVALID_QUEUE_PROPERTIES:                  return "CL_INVALID_QUEUE_PROPERTIES";
    case CL_INVALID_COMMAND_QUEUE:                     return "CL_INVALID_COMMAND_QUEUE";
    case CL_INVALID_HOST_PTR:                          return "CL_INVALID_HOST_PTR";
    case CL_INVALID_MEM_OBJECT:                        return "CL_INVALID_MEM_OBJECT";
    case CL_INVALID_IMAGE_FORMAT_DESCRIPTOR:           return "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR";
    case CL_INVALID_IMAGE_SIZE:                        return "CL_INVALID_IMAGE_SIZE";
    case CL_INVALID_SAMPLER:                           return "CL_INVALID_SAMPLER";
    case CL_INVALID_BINARY:                            return "CL_INVALID_BINARY";
    case CL_INVALID_BUILD_OPTIONS:                     return "CL_INVALID_BUILD_OPTIONS";
    case CL_INVALID_PROGRAM:                           return "CL_INVALID_PROGRAM";
    case CL_INVALID_PROGRAM_EXECUTABLE:                return "CL_INVALID_PROGRAM_EXECUTABLE";
    case CL_INVALID_KERNEL_NAME:                       return "CL_INVALID_KERNEL_NAME";
    case CL_INVALID_KERNEL_DEFINITION:                 return "CL_INVALID_KERNEL_DEFINITION";
    case CL_INVALID_KERNEL:                            return "CL_INVALID_KERNEL";
    case CL_INVALID_ARG_INDEX:                         return "CL_INVALID_ARG_INDEX";
    case CL_INVALID_ARG_VALUE:                         return "CL_INVALID_ARG_VALUE";
    case CL_INVALID_ARG_SIZE:                          return "CL_INVALID_ARG_SIZE";
    case CL_INVALID_KERNEL_ARGS:                       return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_WORK_DIMENSION:                    return "CL_INVALID_WORK_DIMENSION";
    case CL_INVALID_WORK_GROUP_SIZE:                   return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_WORK_ITEM_SIZE:                    return "CL_INVALID_WORK_ITEM_SIZE";
    case CL_INVALID_GLOBAL_OFFSET:                     return "CL_INVALID_GLOBAL_OFFSET";
    case CL_INVALID_EVENT_WAIT_LIST:                   return "CL_INVALID_EVENT_WAIT_LIST";
    case CL_INVALID_EVENT:                             return "CL_INVALID_EVENT";
    case CL_INVALID_OPERATION:                         return "CL_INVALID_OPERATION";
    case CL_INVALID_GL_OBJECT:                         return "CL_INVALID_GL_OBJECT";
    case CL_INVALID_BUFFER_SIZE:                       return "CL_INVALID_BUFFER_SIZE";
    case CL_INVALID_MIP_LEVEL:                         return "CL_INVALID_MIP_LEVEL";
    case CL_INVALID_GLOBAL_WORK_SIZE:                  return "CL_INVALID_GLOBAL_WORK_SIZE";
    case CL_INVALID_PROPERTY:                          return "CL_INVALID_PROPERTY";
    case CL_INVALID_IMAGE_DESCRIPTOR:                  return "CL_INVALID_IMAGE_DESCRIPTOR";
    case CL_INVALID_COMPILER_OPTIONS:                  return "CL_INVALID_COMPILER_OPTIONS";
    case CL_INVALID_LINKER_OPTIONS:                    return "CL_INVALID_LINKER_OPTIONS";
    case CL_INVALID_DEVICE_PARTITION_COUNT:            return "CL_INVALID_DEVICE_PARTITION_COUNT";
    case -69:                                          return "CL_INVALID_PIPE_SIZE";
    case -70:                                          return "CL_INVALID_DEVICE_QUEUE";
    case -71:                                          return "CL_INVALID_SPEC_ID";
    case -72:                                          return "CL_MAX_SIZE_RESTRICTION_EXCEEDED";
    case -1000:                                return "CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR";
    case -1001:                                        return "CL_PLATFORM_NOT_FOUND_KHR";
    default:                                           return "unknown OpenCL error";
    }
}

const char *l2c_clblast_status_name(int status) {
    switch (status) {
    case CLBlastNotImplemented:           return "CLBlastNotImplemented";
    case CLBlastInvalidMatrixA:           return "CLBlastInvalidMatrixA";
    case CLBlastInvalidMatrixB:           return "CLBlastInvalidMatrixB";
    case CLBlastInvalidMatrixC:           return "CLBlastInvalidMatrixC";
    case CLBlastInvalidVectorX:           return "CLBlastInvalidVectorX";
    case CLBlastInvalidVectorY:           return "CLBlastInvalidVectorY";
    case CLBlastInvalidDimension:         return "CLBlastInvalidDimension";
    case CLBlastInvalidLeadDimA:          return "CLBlastInvalidLeadDimA";
    case CLBlastInvalidLeadDimB:          return "CLBlastInvalidLeadDimB";
    case CLBlastInvalidLeadDimC:          return "CLBlastInvalidLeadDimC";
    case CLBlastInvalidIncrementX:        return "CLBlastInvalidIncrementX";
    case CLBlastInvalidIncrementY:        return "CLBlastInvalidIncrementY";
    case CLBlastInsufficientMemoryA:      return "CLBlastInsufficientMemoryA";
    case CLBlastInsufficientMemoryB:      return "CLBlastInsufficientMemoryB";
    case CLBlastInsufficientMemoryC:      return "CLBlastInsufficientMemoryC";
    case CLBlastInsufficientMemoryX:      return "CLBlastInsufficientMemoryX";
    case CLBlastInsufficientMemoryY:      return "CLBlastInsufficientMemoryY";
    case CLBlastInsufficientMemoryTemp:   return "CLBlastInsufficientMemoryTemp";
    case CLBlastInvalidBatchCount:        return "CLBlastInvalidBatchCount";
    case CLBlastInvalidOverrideKernel:    return "CLBlastInvalidOverrideKernel";
    case CLBlastMissingOverrideParameter: return "CLBlastMissingOverrideParameter";
    case CLBlastInvalidLocalMemUsage:     return "CLBlastInvalidLocalMemUsage";
    case CLBlastNoHalfPrecision:          return "CLBlastNoHalfPrecision";
    case CLBlastNoDoublePrecision:        return "CLBlastNoDoublePrecision";
    case CLBlastInvalidVectorScalar:      return "CLBlastInvalidVectorScalar";
    case CLBlastInsufficientMemoryScalar: return "CLBlastInsufficientMemoryScalar";
    case CLBlastDatabaseError:            return "CLBlastDatabaseError";
    case CLBlastUnknownError:             return "CLBlastUnknownError";
    case CLBlastUnexpectedError:          return "CLBlastUnexpectedError";
    default:                              return l2c_cl_error_name(status);
    }
}

l2c_status l2c_cl_fail(l2c_status status, cl_int err, const char *what_fmt, ...) {
    char what[768];
    va_list args;
    va_start(args, what_fmt);
    vsnprintf(what, sizeof what, what_fmt, args);
    va_end(args);
    return l2c_fail(status, "%s (%d) while %s", l2c_cl_error_name(err), (int)err, what);
}

/* ------------------------------------------------------------------------------------------------
 * devices: numbered in platform order, then in each platform's device order
 */

const char *l2c_cl_device_type_name(cl_device_type type) {
    if (type & CL_DEVICE_TYPE_GPU) return "GPU";
    if (type & CL_DEVICE_TYPE_CPU) return "CPU";
    if (type & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    return "other";
}

/* Every platform's ids in a malloc'd array; L2C_ERR_NO_DEVICE when there is none. */
static l2c_status get_platforms(cl_platform_id **platforms, cl_uint *n_platforms) {
    *platforms = NULL;
    *n_platforms = 0;
    cl_uint n = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &n);
    if (err == -1001 || (err == CL_SUCCESS && n == 0)) {
        return l2c_fail(L2C_ERR_NO_DEVICE, "no OpenCL platform is installed: %s",
                        L2C_CL_DRIVER_HINT);
    }
    if (err != CL_SUCCESS) {
        return l2c_fail(L2C_ERR_NO_DEVICE, "%s (%d) while listing the OpenCL platforms: %s",
                        l2c_cl_error_name(err), (int)err, L2C_CL_DRIVER_HINT);
    }
    *platforms = malloc(n * sizeof **platforms);
    if (!*platforms) return l2c_fail(L2C_ERR_NOMEM, "out of memory listing OpenCL platforms");
    err = clGetPlatformIDs(n, *platforms, NULL);
    if (err != CL_SUCCESS) {
        free(*platforms);
        *platforms = NULL;
        return l2c_cl_fail(L2C_ERR_NO_DEVICE, err, "listing the OpenCL platforms");
    }
    *n_platforms = n;
    return L2C_OK;
}

/* One platform's device ids in a malloc'd array; a platform without devices gives none. */
static l2c_status get_devices(cl_platform_id platform, cl_device_id **devices,
                              cl_uint *n_devices) {
    *devices = NULL;
    *n_devices = 0;
    cl_uint n = 0;
    cl_int err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 0, NULL, &n);
    if (err == CL_DEVICE_NOT_FOUND || (err == CL_SUCCESS && n == 0)) return L2C_OK;
    if (err != CL_SUCCESS) return l2c_cl_fail(L2C_ERR_NO_DEVICE, err, "listing OpenCL devices");
    *devices = malloc(n * sizeof **devices);
    if (!*devices) return l2c_fail(L2C_ERR_NOMEM, "out of memory listing OpenCL devices");
    err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, n, *devices, NULL);
    if (err != CL_SUCCESS) {
        free(*devices);
        *devices = NULL;
        return l2c_cl_fail(L2C_ERR_NO_DEVICE, err, "listing OpenCL devices");
    }
    *n_devices = n;
    return L2C_OK;
}

static void get_string(cl_device_id device, cl_device_info what, char *out, size_t size) {
    out[0] = '\0';
    if (clGetDeviceInfo(device, what, size, out, NULL) != CL_SUCCESS) {
        snprintf(out, size, "?");
    }
    out[size - 1] = '\0';
}

/* Fills in everything but index. */
static void describe_device(cl_platform_id platform, cl_device_id device, l2c_cl_device *info) {
    memset(info, 0, sizeof *info);
    info->platform = platform;
    info->device = device;
    if (clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof info->platform_name,
                          info->platform_name, NULL) != CL_SUCCESS) {
        snprintf(info->platform_name, sizeof info->platform_name, "?");
    }
    info->platform_name[sizeof info->platform_name - 1] = '\0';
    get_string(device, CL_DEVICE_NAME, info->name, sizeof info->name);
    get_string(device, CL_DEVICE_VERSION, info->version, sizeof info->version);
    get_string(device, CL_DEVICE_OPENCL_C_VERSION, info->c_version, sizeof info->c_version);
    clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof info->type, &info->type, NULL);
    clGetDeviceInfo(device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof info->global_mem,
                    &info->global_mem, NULL);
    clGetDeviceInfo(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof info->max_alloc,
                    &info->max_alloc, NULL);
    clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof info->max_work_group,
                    &info->max_work_group, NULL);
    clGetDeviceInfo(device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof info->local_mem,
                    &info->local_mem, NULL);
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(device, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
    info->correct_div_sqrt = (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0;
}

l2c_status l2c_cl_find_device(int index, l2c_cl_device *device) {
    if (index < -1) {
        return l2c_fail(L2C_ERR_ARG, "OpenCL device index %d is negative (-1 picks the first)",
                        index);
    }

    cl_platform_id *platforms;
    cl_uint n_platforms;
    l2c_status status = get_platforms(&platforms, &n_platforms);
    if (status != L2C_OK) return status;

    /* walk the devices in global order until the wanted one */
    int count = 0;
    int found = 0;
    for (cl_uint p = 0; p < n_platforms && !found && status == L2C_OK; p++) {
        cl_device_id *devices;
        cl_uint n_devices;
        status = get_devices(platforms[p], &devices, &n_devices);
        for (cl_uint d = 0; d < n_devices && !found; d++, count++) {
            if (index == -1 || index == count) {
                describe_device(platforms[p], devices[d], device);
                device->index = count;
                found = 1;
            }
        }
        free(devices);
    }
    free(platforms);
    if (status != L2C_OK) return status;
    if (found) return L2C_OK;
    if (count == 0) {
        return l2c_fail(L2C_ERR_NO_DEVICE, "the OpenCL platforms have no device: %s",
                        L2C_CL_DRIVER_HINT);
    }
    return l2c_fail(L2C_ERR_NO_DEVICE,
                    "there is no OpenCL device %d: %d device(s) found, numbered from 0 (see "
                    "--list-devices), or %s", index, count, L2C_CL_DRIVER_HINT);
}

l2c_status l2c_opencl_list_devices(FILE *out) {
    cl_platform_id *platforms;
    cl_uint n_platforms;
    l2c_status status = get_platforms(&platforms, &n_platforms);
    if (status != L2C_OK) return status;

    int count = 0;
    for (cl_uint p = 0; p < n_platforms && status == L2C_OK; p++) {
        cl_device_id *devices;
        cl_uint n_devices;
        status = get_devices(platforms[p], &devices, &n_devices);
        for (cl_uint d = 0; d < n_devices; d++, count++) {
            l2c_cl_device info;
            describe_device(platforms[p], devices[d], &info);
            double gib = 1024.0 * 1024.0 * 1024.0;
            fprintf(out, "device %d: %s | platform %s | %s | %.2f GiB global memory | "
                    "%.2f GiB max allocation | %s\n", count, info.name, info.platform_name,
                    l2c_cl_device_type_name(info.type), info.global_mem / gib,
                    info.max_alloc / gib, info.version);
        }
        free(devices);
    }
    free(platforms);
    if (status != L2C_OK) return status;
    if (count == 0) {
        return l2c_fail(L2C_ERR_NO_DEVICE, "the OpenCL platforms have no device: %s",
                        L2C_CL_DRIVER_HINT);
    }
    return L2C_OK;
}

/* ------------------------------------------------------------------------------------------------
 * kernels: every embedded source goes into one program, built once per backend
 */

extern const struct l2c_kernel_source {
    const char *name;
    const char *source;
} l2c_kernel_sources[];

/* The build log can be long: the message keeps its first part. */
#define L2C_BUILD_LOG_MAX 6000

/* The kernel file `name`.cl from LLAMA2CL_KERNELS_DIR, which replaces the embedded copies so that
 * kernels can be changed without a rebuild; malloc'd, NULL with the failure recorded. */
static char *read_kernel_file(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.cl", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        l2c_fail(L2C_ERR_IO, "%s: cannot open the kernel source (LLAMA2CL_KERNELS_DIR): %s",
                 path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        text = malloc((size_t)size + 1);
        if (text && fread(text, 1, (size_t)size, f) == (size_t)size) {
            text[size] = '\0';
        } else {
            free(text);
            text = NULL;
        }
    }
    fclose(f);
    if (!text) l2c_fail(L2C_ERR_IO, "%s: cannot read the kernel source", path);
    return text;
}

l2c_status l2c_cl_build_program(cl_context context, const l2c_cl_device *device,
                                cl_program *program) {
    *program = NULL;

    /* one program from all sources, each after a #line naming its file for the build log */
    const char *kernels_dir = getenv("LLAMA2CL_KERNELS_DIR");
    if (kernels_dir && !*kernels_dir) kernels_dir = NULL;
    cl_uint n_files = 0;
    while (l2c_kernel_sources[n_files].name) n_files++;
    const char **sources = malloc((2 * n_files + 1) * sizeof *sources);
    char (*lines)[96] = malloc((n_files + 1) * sizeof *lines);
    char **loaded = calloc(n_files + 1, sizeof *loaded);
    if (!sources || !lines || !loaded) {
        free(sources);
        free(lines);
        free(loaded);
        return l2c_fail(L2C_ERR_NOMEM, "out of memory building the kernels");
    }
    for (cl_uint i = 0; i < n_files; i++) {
        snprintf(lines[i], sizeof lines[i], "\n#line 1 \"%.60s.cl\"\n",
                 l2c_kernel_sources[i].name);
        sources[2 * i] = lines[i];
        sources[2 * i + 1] = l2c_kernel_sources[i].source;
        if (kernels_dir) {
            loaded[i] = read_kernel_file(kernels_dir, l2c_kernel_sources[i].name);
            if (!loaded[i]) {
                for (cl_uint j = 0; j < i; j++) free(loaded[j]);
                free(loaded);
                free(sources);
                free(lines);
                return L2C_ERR_IO;
            }
            sources[2 * i + 1] = loaded[i];
        }
    }
    cl_int err;
    *program = clCreateProgramWithSource(context, 2 * n_files, sources, NULL, &err);
    for (cl_uint i = 0; i < n_files; i++) free(loaded[i]);
    free(loaded);
    free(sources);
    free(lines);
    if (err != CL_SUCCESS) {
        *program = NULL;
        return l2c_cl_fail(L2C_ERR_DEVICE, err, "creating the kernel program for %s",
                           device->name);
    }

    /* OpenCL C 1.2, and divisions and square roots rounded as the CPU rounds them where the
     * device can */
    char options[256] = "";
    int major = 0, minor = 0;
    if (sscanf(device->c_version, "OpenCL C %d.%d", &major, &minor) == 2 &&
        (major > 1 || (major == 1 && minor >= 2))) {
        strcat(options, "-cl-std=CL1.2 ");
    }
    if (device->correct_div_sqrt) strcat(options, "-cl-fp32-correctly-rounded-divide-sqrt");
    err = clBuildProgram(*program, 1, &device->device, options, NULL, NULL);
    if (err == CL_SUCCESS) return L2C_OK;

    /* the build log goes into the message */
    size_t log_size = 0;
    clGetProgramBuildInfo(*program, device->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size);
    char *log = malloc(log_size + 1);
    if (log) {
        log[0] = '\0';
        clGetProgramBuildInfo(*program, device->device, CL_PROGRAM_BUILD_LOG, log_size, log,
                              NULL);
        log[log_size] = '\0';
        if (log_size > L2C_BUILD_LOG_MAX) strcpy(log + L2C_BUILD_LOG_MAX - 5, "\n...");
    }
    clReleaseProgram(*program);
    *program = NULL;
    l2c_status status = l2c_fail(L2C_ERR_DEVICE,
                                 "%s (%d) while building the kernels for %s; build log:\n%s",
                                 l2c_cl_error_name(err), (int)err, device->name,
                                 log ? log : "(out of memory reading the log)");
    free(log);
    return status;
}
