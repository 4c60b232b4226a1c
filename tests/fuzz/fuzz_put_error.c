/* PutRecords error bodies (HTTP 4xx/5xx): kte_batch_error_code. Byte 0 sets
 * the size of the caller's code buffer (1 + byte % 128), which is allocated
 * exactly; the rest is the body. The result is compared with a reference
 * built on yajl_tree (what kte_batch_error_code itself used before it
 * became a streaming parse): the first "__type" member of the top-level
 * object if it is a string, else the first "code" member if it is one. */
#include "kte_batch.h"

#include "fuzz_util.h"

#include <stdbool.h>
#include <yajl/yajl_tree.h>

/* The reference's raw code (before prefix and suffix are cut), or NULL. */
static const char *reference(yajl_val root)
{
    const char *type_path[] = {"__type", NULL};
    const char *code_path[] = {"code", NULL};
    yajl_val t = yajl_tree_get(root, type_path, yajl_t_string);
    if (!t)
        t = yajl_tree_get(root, code_path, yajl_t_string);
    return t ? YAJL_GET_STRING(t) : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cap = 1 + data[0] % 128;
    const char *body = (const char *)data + 1;
    char *code = malloc(cap);
    FUZZ_CHECK(code != NULL);
    int rc = kte_batch_error_code(body, size - 1, code, cap);

    /* yajl_tree_parse reads a C string: the body up to its first NUL. */
    char *copy = strndup(body, size - 1);
    FUZZ_CHECK(copy != NULL);
    char ebuf[128];
    yajl_val root = yajl_tree_parse(copy, ebuf, sizeof ebuf);
    const char *want = root ? reference(root) : NULL;
    /* yajl_tree's keys are C strings: "__type\u0000" matches "__type"
     * there, and not in kte_batch_error_code, which is right. */
    bool comparable = true;
    for (size_t i = 0; i + 6 <= size - 1; i++)
        if (!memcmp(body + i, "\\u0000", 6))
            comparable = false;
    if (comparable)
        FUZZ_CHECK((rc == 0) == (want != NULL));
    if (rc == 0) {
        /* A terminated code without "namespace#" or ":uri", cut out of the
         * reference's, classified as one of the two outcomes. */
        FUZZ_CHECK(memchr(code, '\0', cap) != NULL);
        FUZZ_CHECK(strchr(code, '#') == NULL && strchr(code, ':') == NULL);
        FUZZ_CHECK(!comparable || strstr(want, code) != NULL);
        enum kte_rec_outcome o = kte_batch_classify(code);
        FUZZ_CHECK(o == KTE_REC_RETRY || o == KTE_REC_PERMANENT);
    }
    yajl_tree_free(root);
    free(copy);
    free(code);
    return 0;
}
