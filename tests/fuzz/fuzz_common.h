/*
 * fuzz_common.h - what the libFuzzer targets share: an input as a file the loaders can open, and
 * the property every failure must have (one line naming the cause).
 */
#ifndef L2C_FUZZ_COMMON_H
#define L2C_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "llama2cl.h"

/* Writes size bytes into an anonymous in-memory file; path gets a name that open() accepts.
 * Returns the descriptor, to close after use. Aborts when the kernel refuses: that is no finding
 * but a broken fuzzing host. */
static inline int fuzz_file(const uint8_t *data, size_t size, char *path, size_t path_size) {
    int fd = memfd_create("l2c-fuzz", 0);
    if (fd < 0) {
        perror("memfd_create");
        abort();
    }
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            perror("write");
            abort();
        }
        done += (size_t)n;
    }
    snprintf(path, path_size, "/proc/self/fd/%d", fd);
    return fd;
}

/* A failed call must leave one non-empty line: a message without a newline. */
static inline void fuzz_check_message(l2c_status status) {
    const char *message = l2c_last_error();
    if (status == L2C_OK) return;
    if (!message || !message[0] || strchr(message, '\n')) {
        fprintf(stderr, "failure %d left the message \"%s\", not one line\n", (int)status,
                message ? message : "(null)");
        abort();
    }
}

#endif /* L2C_FUZZ_COMMON_H */
