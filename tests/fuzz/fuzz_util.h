/* Shared by the fuzz harnesses (tests/fuzz/fuzz_*.c). Each harness is its
 * own executable, linked either with libFuzzer (KTE_FUZZ=ON, clang) or with
 * replay_main.c (every other build, which replays the committed corpus under
 * ctest), so everything here is static inline. */
#ifndef KTE_FUZZ_UTIL_H
#define KTE_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test does not hold: a finding, like a
 * sanitizer report. abort() so that libFuzzer saves the input and ctest's
 * replay fails. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Whether a fixed-size char field holds a terminated string. */
#define FUZZ_TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

#endif
