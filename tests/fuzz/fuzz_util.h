/* Shared by the fuzz harnesses (tests/fuzz/fuzz_*.c). Each harness is its
 * own executable, linked either with libFuzzer (KTE_FUZZ=ON, clang) or with
 * replay_main.c (every other build, which replays the committed corpus under
 * ctest), so everything here is static inline. */
#ifndef KTE_FUZZ_UTIL_H
#define KTE_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

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

/* Whether p[0..n) is exactly one JSON value, by yajl with the settings
 * kte_event_parse uses (UTF-8 checked, no comments, nothing after it). */
static inline bool fuzz_one_json_value(const char *p, size_t n)
{
    yajl_handle h = yajl_alloc(NULL, NULL, NULL);
    FUZZ_CHECK(h != NULL);
    bool ok = yajl_parse(h, (const unsigned char *)p, n) == yajl_status_ok &&
              yajl_complete_parse(h) == yajl_status_ok;
    yajl_free(h);
    return ok;
}

#endif
