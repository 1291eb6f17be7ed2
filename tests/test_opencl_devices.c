/*
 * test_opencl_devices.c - the device listing shows what OpenCL itself reports, OpenCL and CLBlast
 * codes get their names, and a machine without OpenCL platforms gets L2C_ERR_NO_DEVICE with the
 * driver hint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl.h>
#include <clblast_c.h>

#include "check.h"
#include "checkpoint_writer.h"
#include "llama2cl.h"
#include "opencl_device.h"

static const char *suite = "test_opencl_devices";

/* The devices as OpenCL lists them, in platform order. */
typedef struct {
    char     name[256];
    char     platform[256];
    char     version[256];
    cl_ulong max_alloc;
} found_device;

static int query_devices(found_device *out, int max) {
    cl_platform_id platforms[16];
    cl_uint n_platforms = 0;
    if (clGetPlatformIDs(16, platforms, &n_platforms) != CL_SUCCESS) return 0;
    int n = 0;
    for (cl_uint p = 0; p < n_platforms && p < 16; p++) {
        cl_device_id devices[16];
        cl_uint n_devices = 0;
        cl_int err = clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 16, devices, &n_devices);
        if (err != CL_SUCCESS) continue;
        for (cl_uint d = 0; d < n_devices && d < 16 && n < max; d++, n++) {
            clGetPlatformInfo(platforms[p], CL_PLATFORM_NAME, 256, out[n].platform, NULL);
            clGetDeviceInfo(devices[d], CL_DEVICE_NAME, 256, out[n].name, NULL);
            clGetDeviceInfo(devices[d], CL_DEVICE_VERSION, 256, out[n].version, NULL);
            clGetDeviceInfo(devices[d], CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof(cl_ulong),
                            &out[n].max_alloc, NULL);
        }
    }
    return n;
}

/* Run in a child whose OpenCL loader sees no driver: listing and creating both fail with the
 * hint. Exit 0 when they do, 3 when the loader still found a platform, 1 otherwise. */
static int no_platform_child(const char *dir) {
    FILE *devnull = fopen("/dev/null", "w");
    l2c_status listed = l2c_opencl_list_devices(devnull);
    fclose(devnull);
    if (listed == L2C_OK) return 3;
    CHECK_INT(listed, L2C_ERR_NO_DEVICE);
    CHECK(strstr(l2c_last_error(), "no OpenCL platform") != NULL);
    CHECK(strstr(l2c_last_error(), "--cpu") != NULL);
    CHECK(strstr(l2c_last_error(), "pocl-opencl-icd") != NULL);

    char path[4200];
    snprintf(path, sizeof path, "%s/tiny.bin", dir);
    l2c_gen_spec spec = {0};
    spec.dim = 16;
    spec.hidden_dim = 24;
    spec.n_layers = 1;
    spec.n_heads = 2;
    spec.n_kv_heads = 2;
    spec.vocab_size = 20;
    spec.seq_len = 8;
    spec.shared_classifier = 1;
    spec.seed = 3;
    CHECK_INT(l2c_gen_write(path, &spec), 0);
    l2c_model *model = NULL;
    CHECK_OK(l2c_model_load(path, &model));
    if (model) {
        l2c_opencl_options options;
        l2c_opencl_options_default(&options);
        l2c_backend *backend = NULL;
        CHECK_INT(l2c_backend_opencl_create(model, &options, &backend), L2C_ERR_NO_DEVICE);
        CHECK(backend == NULL);
        CHECK(strstr(l2c_last_error(), "pocl-opencl-icd") != NULL);
        l2c_model_free(model);
    }
    return check_failures ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--no-platform")) return no_platform_child(argv[2]);

    /* status names */
    CHECK_STR(l2c_cl_error_name(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
    CHECK_STR(l2c_cl_error_name(CL_MEM_OBJECT_ALLOCATION_FAILURE),
              "CL_MEM_OBJECT_ALLOCATION_FAILURE");
    CHECK_STR(l2c_cl_error_name(CL_INVALID_KERNEL_ARGS), "CL_INVALID_KERNEL_ARGS");
    CHECK_STR(l2c_cl_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
    CHECK_STR(l2c_cl_error_name(-12345), "unknown OpenCL error");
    CHECK_STR(l2c_clblast_status_name(CLBlastInsufficientMemoryA), "CLBlastInsufficientMemoryA");
    CHECK_STR(l2c_clblast_status_name(CLBlastOpenCLOutOfResources), "CL_OUT_OF_RESOURCES");

    /* the defaults: first device, automatic engine, fp32, no profile, the device's own limits */
    l2c_opencl_options options;
    memset(&options, 0x5a, sizeof options);
    l2c_opencl_options_default(&options);
    CHECK_INT(options.device, -1);
    CHECK_INT(options.gemv, L2C_GEMV_AUTO);
    CHECK_INT(options.dtype, L2C_DTYPE_F32);
    CHECK_INT(options.profile, 0);
    CHECK_INT(options.max_alloc_override, 0);
    CHECK_INT(options.mem_limit, 0);

    /* without any driver the loader finds no platform */
    const char *dir = check_tmpdir(suite);
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "OCL_ICD_VENDORS=%s/no-drivers OCL_ICD_FILENAMES= '%s' "
             "--no-platform '%s'", dir, argv[0], dir);
    int status = -1;
    free(check_run(cmd, &status));
    if (status == 3) {
        printf("  this OpenCL loader ignores OCL_ICD_VENDORS: the no-platform case is not run\n");
    } else {
        CHECK_INT(status, 0);
    }

    /* the listing: one line per device that OpenCL reports, numbered in order */
    found_device want[64];
    int n = query_devices(want, 64);
    if (n == 0) return check_skip(suite, "no OpenCL device");
    char path[4200];
    snprintf(path, sizeof path, "%s/list.txt", dir);
    FILE *out = fopen(path, "w");
    CHECK_OK(l2c_opencl_list_devices(out));
    fclose(out);
    char *text = check_read_file(path, NULL);
    CHECK(text != NULL);
    int lines = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        printf("  %s\n", line);
        if (lines >= n) {
            lines++;
            continue;
        }
        const found_device *d = &want[lines];
        char prefix[32], alloc[64];
        snprintf(prefix, sizeof prefix, "device %d: ", lines);
        snprintf(alloc, sizeof alloc, "%.2f GiB max allocation",
                 d->max_alloc / (1024.0 * 1024.0 * 1024.0));
        CHECK(strncmp(line, prefix, strlen(prefix)) == 0);
        CHECK(strstr(line, d->name) != NULL);
        CHECK(strstr(line, d->platform) != NULL);
        CHECK(strstr(line, d->version) != NULL);
        CHECK(strstr(line, alloc) != NULL);
        CHECK(strstr(line, "GiB global memory") != NULL);
        CHECK(strstr(line, " GPU ") || strstr(line, " CPU ") || strstr(line, " accelerator ") ||
              strstr(line, " other "));
        lines++;
    }
    CHECK_INT(lines, n);
    free(text);
    return check_report(suite);
}
