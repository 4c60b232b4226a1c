/* kte_batch: PutRecords batch planning, request bodies, response parsing,
 * error codes and their classification. */
#include "kte_batch.h"

#include <pthread.h>

#include "kte_test_util.h"

#define MiB 1048576u

static struct kte_rec *mk_rec(const void *data, size_t data_len, const char *pk)
{
    size_t pk_len = strlen(pk);
    struct kte_rec *r = calloc(1, sizeof *r + data_len + pk_len + 1);
    assert_non_null(r);
    r->data_len = (uint32_t)data_len;
    r->pk_len = (uint32_t)pk_len;
    if (data_len)
        memcpy(r->data, data, data_len);
    r->pk = r->data + data_len;
    memcpy(r->pk, pk, pk_len + 1);
    return r;
}

/* A record of data_len bytes of 'd' and a pk of pk_len bytes of 'p'. */
static struct kte_rec *mk_sized(size_t data_len, size_t pk_len)
{
    char pk[257];
    assert_true(pk_len < sizeof pk);
    memset(pk, 'p', pk_len);
    pk[pk_len] = '\0';
    struct kte_rec *r = calloc(1, sizeof *r + data_len + pk_len + 1);
    assert_non_null(r);
    r->data_len = (uint32_t)data_len;
    r->pk_len = (uint32_t)pk_len;
    memset(r->data, 'd', data_len);
    r->pk = r->data + data_len;
    memcpy(r->pk, pk, pk_len + 1);
    return r;
}

static struct kte_rec *link_all(struct kte_rec **v, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        v[i]->next = v[i + 1];
    if (n)
        v[n - 1]->next = NULL;
    return n ? v[0] : NULL;
}

static void free_all(struct kte_rec **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
}

/* ---- plan ---------------------------------------------------------------- */

static void test_plan_empty_and_single(void **state)
{
    (void)state;
    size_t bytes = 99;
    assert_int_equal(kte_batch_plan(NULL, &bytes), 0);
    assert_int_equal(bytes, 0);
    struct kte_rec *r = mk_sized(100, 32);
    assert_int_equal(kte_batch_plan(r, &bytes), 1);
    assert_int_equal(bytes, 132);
    assert_int_equal(kte_batch_plan(r, NULL), 1);
    free(r);
}

static void test_plan_splits_at_500_records(void **state)
{
    (void)state;
    const size_t n = 1201;
    struct kte_rec **v = calloc(n, sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = mk_sized(10, 3);
    link_all(v, n);
    size_t bytes;
    assert_int_equal(kte_batch_plan(v[0], &bytes), 500);
    assert_int_equal(bytes, 500 * 13);
    assert_int_equal(kte_batch_plan(v[500], &bytes), 500);
    assert_int_equal(kte_batch_plan(v[1000], &bytes), 201);
    assert_int_equal(bytes, 201 * 13);
    assert_int_equal(kte_batch_plan(v[1200], &bytes), 1);
    assert_int_equal(kte_batch_plan(v[499], &bytes), 500);
    /* exactly 500 */
    v[499]->next = NULL;
    assert_int_equal(kte_batch_plan(v[0], &bytes), 500);
    v[498]->next = NULL;
    assert_int_equal(kte_batch_plan(v[0], &bytes), 499);
    free_all(v, n);
    free(v);
}

static void test_plan_splits_at_5_mib(void **state)
{
    (void)state;
    /* Six records of exactly 1 MiB, partition key included. */
    struct kte_rec *v[6];
    for (size_t i = 0; i < 6; i++)
        v[i] = mk_sized(MiB - 36, 36);
    link_all(v, 6);
    size_t bytes;
    assert_int_equal(kte_batch_plan(v[0], &bytes), 5); /* 5 MiB exactly fits */
    assert_int_equal(bytes, 5 * MiB);
    assert_int_equal(kte_batch_plan(v[1], &bytes), 5);
    assert_int_equal(kte_batch_plan(v[2], &bytes), 4);
    assert_int_equal(bytes, 4 * MiB);
    free_all(v, 6);

    /* One byte over 5 MiB (in the partition key) leaves the 5th out. */
    for (size_t i = 0; i < 6; i++)
        v[i] = mk_sized(MiB - 36, i == 4 ? 37 : 36);
    link_all(v, 6);
    assert_int_equal(kte_batch_plan(v[0], &bytes), 4);
    assert_int_equal(bytes, 4 * MiB);
    assert_int_equal(kte_batch_plan(v[4], &bytes), 2);
    assert_int_equal(bytes, 2 * MiB + 1);
    free_all(v, 6);
}

static void test_plan_mixed_sizes(void **state)
{
    (void)state;
    /* Many small records then a big one: the big one waits. */
    const size_t n = 101;
    struct kte_rec *v[101];
    for (size_t i = 0; i < 100; i++)
        v[i] = mk_sized(50 * 1024 - 10, 10); /* 50 KiB each, 5000 KiB */
    v[100] = mk_sized(MiB - 10, 10);
    link_all(v, n);
    size_t bytes;
    assert_int_equal(kte_batch_plan(v[0], &bytes), 100);
    assert_int_equal(bytes, 100 * 50 * 1024);
    assert_int_equal(kte_batch_plan(v[80], &bytes), 21); /* 20 * 50 KiB + 1 MiB < 5 MiB */
    assert_int_equal(bytes, 20 * 50 * 1024 + MiB);
    free_all(v, n);
}

static void test_plan_always_takes_one(void **state)
{
    (void)state;
    /* Even a record over the request limit goes alone (never stuck). */
    struct kte_rec *v[2] = {mk_sized(6 * MiB, 8), mk_sized(10, 8)};
    link_all(v, 2);
    size_t bytes;
    assert_int_equal(kte_batch_plan(v[0], &bytes), 1);
    assert_int_equal(bytes, 6 * MiB + 8);
    free_all(v, 2);
}

/* ---- request body ----------------------------------------------------------- */

static void test_body_two_records_stream_name(void **state)
{
    (void)state;
    struct kte_rec *v[2] = {mk_rec("hello", 5, "pk-1"), mk_rec("{\"a\":1}", 7, "p\"k\\2")};
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_batch_body(&b, "my-stream", "", v, 2), 0);
    kt_assert_bytes(b.data, b.len,
                    "{\"Records\":[{\"Data\":\"aGVsbG8=\",\"PartitionKey\":\"pk-1\"},{\"Data\":"
                    "\"eyJhIjoxfQ==\",\"PartitionKey\":\"p\\\"k\\\\2\"}],\"StreamName\":"
                    "\"my-stream\"}");
    kte_buf_free(&b);

    /* A NULL ARN is the same as an empty one. */
    kte_buf_init(&b);
    assert_int_equal(kte_batch_body(&b, "my-stream", NULL, v, 1), 0);
    kt_assert_bytes(b.data, b.len,
                    "{\"Records\":[{\"Data\":\"aGVsbG8=\",\"PartitionKey\":\"pk-1\"}],"
                    "\"StreamName\":\"my-stream\"}");
    kte_buf_free(&b);
    free_all(v, 2);
}

static void test_body_stream_arn(void **state)
{
    (void)state;
    struct kte_rec *v[2] = {mk_rec("ab", 2, "k1"), mk_rec("abcd", 4, "k2")};
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(
        kte_batch_body(&b, "", "arn:aws:kinesis:us-east-1:123456789012:stream/s", v, 2), 0);
    kt_assert_bytes(b.data, b.len,
                    "{\"Records\":[{\"Data\":\"YWI=\",\"PartitionKey\":\"k1\"},{\"Data\":"
                    "\"YWJjZA==\",\"PartitionKey\":\"k2\"}],\"StreamARN\":"
                    "\"arn:aws:kinesis:us-east-1:123456789012:stream/s\"}");
    kte_buf_free(&b);
    free_all(v, 2);
}

static void test_body_appends_and_edge_records(void **state)
{
    (void)state;
    /* Empty data, and the body appended after existing content. */
    struct kte_rec *v[3] = {mk_rec("", 0, "e"), mk_rec("abc", 3, ""), mk_rec("\n", 1, "k")};
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_buf_puts(&b, "PRE:"), 0);
    assert_int_equal(kte_batch_body(&b, "s", "", v, 3), 0);
    kt_assert_bytes(b.data, b.len,
                    "PRE:{\"Records\":[{\"Data\":\"\",\"PartitionKey\":\"e\"},{\"Data\":\"YWJj\","
                    "\"PartitionKey\":\"\"},{\"Data\":\"Cg==\",\"PartitionKey\":\"k\"}],"
                    "\"StreamName\":\"s\"}");
    kte_buf_free(&b);
    kte_buf_init(&b);
    assert_int_equal(kte_batch_body(&b, "s", "", v, 0), 0);
    kt_assert_bytes(b.data, b.len, "{\"Records\":[],\"StreamName\":\"s\"}");
    kte_buf_free(&b);
    free_all(v, 3);
}

static void test_body_base64_round_trip(void **state)
{
    (void)state;
    /* Every byte value and every length mod 3, many records. */
    const size_t n = 300;
    struct kte_rec **v = calloc(n, sizeof *v);
    assert_non_null(v);
    unsigned char data[1100];
    for (size_t i = 0; i < n; i++) {
        size_t len = (i * 37) % sizeof data;
        for (size_t k = 0; k < len; k++)
            data[k] = (unsigned char)(k * 7 + i);
        char pk[32];
        snprintf(pk, sizeof pk, "pk-%zu", i);
        v[i] = mk_rec(data, len, pk);
    }
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_batch_body(&b, "s", "", v, n), 0);
    yajl_val root = kt_json_parse(b.data, b.len);
    assert_non_null(root);
    yajl_val recs = kt_json_get(root, yajl_t_array, "Records", NULL, NULL);
    assert_non_null(recs);
    assert_int_equal(YAJL_GET_ARRAY(recs)->len, n);
    for (size_t i = 0; i < n; i++) {
        yajl_val e = YAJL_GET_ARRAY(recs)->values[i];
        const char *d64 = kt_json_str(e, "Data", NULL);
        assert_non_null(d64);
        assert_int_equal(strlen(d64), 4 * ((v[i]->data_len + 2) / 3));
        unsigned char dec[1200];
        size_t olen = 0;
        assert_int_equal(kt_b64_decode(d64, strlen(d64), dec, sizeof dec, &olen), 0);
        assert_int_equal(olen, v[i]->data_len);
        assert_memory_equal(dec, v[i]->data, olen);
        assert_string_equal(kt_json_str(e, "PartitionKey", NULL), v[i]->pk);
    }
    assert_string_equal(kt_json_str(root, "StreamName", NULL), "s");
    assert_null(kt_json_get(root, yajl_t_any, "StreamARN", NULL, NULL));
    yajl_tree_free(root);
    kte_buf_free(&b);
    free_all(v, n);
    free(v);
}

/* Rebuild the API reference's example request from its own decoded data. */
static void check_docs_request(const char *path)
{
    size_t len = 0;
    char *text = kt_must_read(path, &len);
    yajl_val want = kt_json_parse(text, len);
    assert_non_null(want);
    yajl_val wrecs = kt_json_get(want, yajl_t_array, "Records", NULL, NULL);
    assert_non_null(wrecs);
    size_t n = YAJL_GET_ARRAY(wrecs)->len;
    assert_int_equal(n, 3);
    struct kte_rec *v[3];
    for (size_t i = 0; i < n; i++) {
        yajl_val e = YAJL_GET_ARRAY(wrecs)->values[i];
        const char *d64 = kt_json_str(e, "Data", NULL);
        assert_non_null(d64);
        /* "Gi4sEdd08HypA" in the docs has 13 characters: its last one
         * carries no whole byte. Decode the canonical 12-character part. */
        size_t d64_len = strlen(d64) - strlen(d64) % 4;
        unsigned char dec[64];
        size_t olen = 0;
        assert_int_equal(kt_b64_decode(d64, d64_len, dec, sizeof dec, &olen), 0);
        v[i] = mk_rec(dec, olen, kt_json_str(e, "PartitionKey", NULL));
    }
    assert_memory_equal(v[0]->data, "_<data>_1", 9);
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_batch_body(&b, kt_json_str(want, "StreamName", NULL), "", v, n), 0);
    /* The docs' body without its indentation (and with the third Data in
     * canonical form) is ours byte for byte. */
    kt_assert_bytes(b.data, b.len,
                    "{\"Records\":[{\"Data\":\"XzxkYXRhPl8x\",\"PartitionKey\":\"partitionKey1\"},"
                    "{\"Data\":\"f1PxFQo92Afh\",\"PartitionKey\":\"partitionKey2\"},{\"Data\":"
                    "\"Gi4sEdd08Hyp\",\"PartitionKey\":\"partitionKey3\"}],\"StreamName\":"
                    "\"exampleStreamName\"}");
    kte_buf_free(&b);
    free_all(v, n);
    yajl_tree_free(want);
    free(text);
}

static void test_body_matches_api_reference_example(void **state)
{
    (void)state;
    check_docs_request(KT_FIXTURES "/kinesis/PutRecords.request-body.json");
}

/* ---- responses ------------------------------------------------------------ */

static void check_all_success(const char *path)
{
    size_t len = 0;
    char *body = kt_must_read(path, &len);
    struct kte_rec_result res[3];
    memset(res, 0x55, sizeof res); /* garbage that must be overwritten */
    char err[256] = "";
    assert_int_equal(kte_batch_parse_response(body, len, 3, res, err, sizeof err), 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(res[i].outcome, KTE_REC_OK);
        assert_string_equal(res[i].error_code, "");
    }
    /* Same body, wrong record count. */
    err[0] = '\0';
    assert_int_equal(kte_batch_parse_response(body, len, 2, res, err, sizeof err), -1);
    kt_assert_contains(err, "3");
    kt_assert_contains(err, "2");
    err[0] = '\0';
    assert_int_equal(kte_batch_parse_response(body, len, 4, res, err, sizeof err), -1);
    kt_assert_contains(err, "4");
    free(body);
}

static void check_partial_failure(const char *path)
{
    size_t len = 0;
    char *body = kt_must_read(path, &len);
    struct kte_rec_result res[3];
    memset(res, 0x55, sizeof res);
    char err[256] = "";
    assert_int_equal(kte_batch_parse_response(body, len, 3, res, err, sizeof err), 2);
    assert_int_equal(res[0].outcome, KTE_REC_OK);
    assert_string_equal(res[0].error_code, "");
    assert_int_equal(res[1].outcome, KTE_REC_RETRY);
    assert_string_equal(res[1].error_code, "ProvisionedThroughputExceededException");
    assert_int_equal(res[2].outcome, KTE_REC_RETRY);
    assert_string_equal(res[2].error_code, "InternalFailure");
    assert_int_equal(kte_batch_parse_response(body, len, 1, res, err, sizeof err), -1);
    free(body);
}

static void test_response_own_fixtures(void **state)
{
    (void)state;
    check_all_success(KT_FIXTURES "/kinesis/PutRecords.response-body.all-success.json");
    check_partial_failure(KT_FIXTURES "/kinesis/PutRecords.response-body.partial-failure.json");
}

static void test_response_shared_fixtures(void **state)
{
    (void)state;
    KT_SKIP_WITHOUT_SHARED();
    check_all_success(KT_SHARED_FIXTURES
                      "/kinesis/aws-api-reference/PutRecords.response-body.all-success.json");
    check_partial_failure(
        KT_SHARED_FIXTURES
        "/kinesis/aws-api-reference/PutRecords.response-body.partial-failure.json");
    check_docs_request(KT_SHARED_FIXTURES
                       "/kinesis/aws-api-reference/PutRecords.request-body.json");
}

static void test_response_per_record_codes(void **state)
{
    (void)state;
    const char *body =
        "{\"FailedRecordCount\":5,\"Records\":["
        "{\"ErrorCode\":\"KMSThrottlingException\",\"ErrorMessage\":\"slow down\"},"
        "{\"SequenceNumber\":\"1\",\"ShardId\":\"shardId-000000000000\"},"
        "{\"ErrorCode\":\"KMSAccessDeniedException\",\"ErrorMessage\":\"no\"},"
        "{\"ErrorCode\":\"KMSNotFoundException\"},"
        "{\"ErrorCode\":\"com.amazonaws.kinesis#ProvisionedThroughputExceededException\"},"
        "{\"ErrorCode\":\"KMSDisabledException:http://internal.amazon.com/x/\"},"
        "{\"ErrorCode\":\"\",\"SequenceNumber\":\"2\"}"
        "],\"EncryptionType\":\"KMS\"}";
    struct kte_rec_result res[7];
    char err[128] = "";
    assert_int_equal(kte_batch_parse_response(body, strlen(body), 7, res, err, sizeof err), 5);
    static const struct {
        enum kte_rec_outcome o;
        const char *code;
    } want[] = {
        {KTE_REC_RETRY, "KMSThrottlingException"},
        {KTE_REC_OK, ""},
        {KTE_REC_PERMANENT, "KMSAccessDeniedException"},
        {KTE_REC_PERMANENT, "KMSNotFoundException"},
        {KTE_REC_RETRY, "ProvisionedThroughputExceededException"},
        {KTE_REC_PERMANENT, "KMSDisabledException"},
        {KTE_REC_OK, ""},
    };
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(res[i].outcome, want[i].o);
        assert_string_equal(res[i].error_code, want[i].code);
    }
}

static void test_response_not_a_putrecords_answer(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        size_t n;
    } bad[] = {
        {"", 1},
        {"not json", 1},
        {"{\"Records\":[{}]", 1},
        {"{\"FailedRecordCount\":0}", 1},
        {"{\"Records\":{}}", 1},
        {"{\"Records\":[]}", 1},
        {"[{\"SequenceNumber\":\"1\"}]", 1},
        {"{\"Records\":[{},{}]}", 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct kte_rec_result res[2];
        char err[256] = "";
        int rc = kte_batch_parse_response(bad[i].body, strlen(bad[i].body), bad[i].n, res, err,
                                          sizeof err);
        if (rc != -1)
            print_error("accepted: %s\n", bad[i].body);
        assert_int_equal(rc, -1);
        assert_true(strlen(err) > 0);
    }
    /* An empty batch answered with an empty list is consistent. */
    char err[64];
    assert_int_equal(kte_batch_parse_response("{\"Records\":[]}", 14, 0, NULL, err, sizeof err), 0);
}

/* ---- error codes ------------------------------------------------------------ */

static void check_code(const char *body, const char *want)
{
    char code[KTE_ERRCODE_MAX];
    memset(code, 'X', sizeof code);
    int rc = kte_batch_error_code(body, strlen(body), code, sizeof code);
    if (rc != 0 || strcmp(code, want) != 0)
        print_error("body %s: rc %d code '%.*s', want '%s'\n", body, rc, (int)sizeof code, code,
                    want);
    assert_int_equal(rc, 0);
    assert_string_equal(code, want);
}

static void test_error_code_spellings(void **state)
{
    (void)state;
    /* The awsJson1_1 spellings of botocore's protocol tests. */
    check_code("{\n    \"__type\": \"InvalidGreeting\",\n    \"Message\": \"Hi\"\n}",
               "InvalidGreeting");
    check_code("{\"__type\": \"FooError\"}", "FooError");
    check_code("{\"__type\": \"aws.protocoltests.restjson#FooError\"}", "FooError");
    check_code("{\"__type\": \"aws.protocoltests.restjson#FooError:http://internal.amazon.com/"
               "coral/com.amazon.coral.validate/\"}",
               "FooError");
    check_code("{\"__type\": \"FooError:http://internal.amazon.com/coral/com.amazon.coral.validate/"
               "\"}",
               "FooError");
    check_code("{\"code\": \"FooError\"}", "FooError");
    check_code("{\"code\": \"aws.protocoltests.restjson#FooError\"}", "FooError");
    check_code("{\"code\": \"aws.protocoltests.restjson#FooError:http://internal.amazon.com/coral/"
               "com.amazon.coral.validate/\"}",
               "FooError");
    /* Kinesis' own shapes. */
    check_code("{\"__type\":\"ResourceNotFoundException\",\"message\":\"Stream s under account "
               "123456789012 not found.\"}",
               "ResourceNotFoundException");
    check_code("{\"__type\":\"com.amazon.coral.service#UnrecognizedClientException\","
               "\"message\":\"The security token included in the request is invalid.\"}",
               "UnrecognizedClientException");
    /* __type wins over code; a non-string __type falls back to code. */
    check_code("{\"code\":\"B\",\"__type\":\"A\"}", "A");
    check_code("{\"__type\":5,\"code\":\"B\"}", "B");
}

static void test_error_code_absent(void **state)
{
    (void)state;
    static const char *const bodies[] = {"{}",
                                         "{\"message\":\"x\"}",
                                         "not json",
                                         "",
                                         "[]",
                                         "{\"__type\":null}",
                                         "\"ValidationException\""};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char code[KTE_ERRCODE_MAX] = "";
        assert_int_equal(kte_batch_error_code(bodies[i], strlen(bodies[i]), code, sizeof code), -1);
    }
}

static void test_error_code_small_buffer(void **state)
{
    (void)state;
    char code[5];
    const char *body = "{\"__type\":\"ns#ValidationException\"}";
    assert_int_equal(kte_batch_error_code(body, strlen(body), code, sizeof code), 0);
    assert_string_equal(code, "Vali");
}

static void test_error_code_botocore_fixture(void **state)
{
    (void)state;
    KT_SKIP_WITHOUT_SHARED();
    size_t len = 0;
    char *text = kt_must_read(
        KT_SHARED_FIXTURES "/kinesis/botocore/protocol-tests.awsjson1_1.output.json", &len);
    yajl_val root = kt_json_parse(text, len);
    assert_non_null(root);
    assert_true(YAJL_IS_ARRAY(root));
    size_t checked = 0;
    for (size_t s = 0; s < YAJL_GET_ARRAY(root)->len; s++) {
        yajl_val cases =
            kt_json_get(YAJL_GET_ARRAY(root)->values[s], yajl_t_array, "cases", NULL, NULL);
        for (size_t c = 0; cases && c < YAJL_GET_ARRAY(cases)->len; c++) {
            yajl_val kase = YAJL_GET_ARRAY(cases)->values[c];
            const char *want = kt_json_str(kase, "errorCode", NULL);
            const char *body = kt_json_str(kase, "response", "body");
            if (!want || !body || !*body)
                continue; /* header-only errors are not ours to parse */
            check_code(body, want);
            checked++;
        }
    }
    assert_int_equal(checked, 9);
    yajl_tree_free(root);
    free(text);
}

/* A deeply nested error body, read on a thread with musl's default stack
 * (128 KiB, the layer build's): parsing it must not recurse per level. */
struct deep_call {
    const char *body;
    size_t len;
    int rc;
    char code[KTE_ERRCODE_MAX];
};

static void *deep_error_code(void *arg)
{
    struct deep_call *c = arg;
    c->rc = kte_batch_error_code(c->body, c->len, c->code, sizeof c->code);
    return NULL;
}

static void test_error_code_deep_nesting_small_stack(void **state)
{
    (void)state;
    const size_t depth = 100000;
    const char *head = "{\"__type\":\"ns#ThrottlingException\",\"x\":";
    size_t hl = strlen(head);
    char *body = malloc(hl + 2 * depth + 1);
    assert_non_null(body);
    memcpy(body, head, hl);
    memset(body + hl, '[', depth);
    memset(body + hl + depth, ']', depth);
    body[hl + 2 * depth] = '}';
    struct deep_call c = {.body = body, .len = hl + 2 * depth + 1, .rc = -2};
    pthread_attr_t attr;
    pthread_t t;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, 128 * 1024), 0);
    assert_int_equal(pthread_create(&t, &attr, deep_error_code, &c), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    pthread_attr_destroy(&attr);
    assert_int_equal(c.rc, 0);
    assert_string_equal(c.code, "ThrottlingException");
    free(body);
}

/* ---- classification ---------------------------------------------------------- */

static void test_classification(void **state)
{
    (void)state;
    static const char *const retry[] = {
        "ProvisionedThroughputExceededException",
        "InternalFailure",
        "InternalFailureException",
        "KMSThrottlingException",
        "ThrottlingException",
        "LimitExceededException",
        "ServiceUnavailable",
    };
    static const char *const permanent[] = {
        "ResourceNotFoundException", "AccessDeniedException",    "ValidationException",
        "InvalidArgumentException",  "KMSDisabledException",     "KMSNotFoundException",
        "KMSAccessDeniedException",  "KMSInvalidStateException", "KMSOptInRequired",
    };
    for (size_t i = 0; i < sizeof retry / sizeof retry[0]; i++) {
        if (kte_batch_classify(retry[i]) != KTE_REC_RETRY)
            print_error("%s is not retried\n", retry[i]);
        assert_int_equal(kte_batch_classify(retry[i]), KTE_REC_RETRY);
    }
    for (size_t i = 0; i < sizeof permanent / sizeof permanent[0]; i++) {
        if (kte_batch_classify(permanent[i]) != KTE_REC_PERMANENT)
            print_error("%s is retried\n", permanent[i]);
        assert_int_equal(kte_batch_classify(permanent[i]), KTE_REC_PERMANENT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_empty_and_single),
        cmocka_unit_test(test_plan_splits_at_500_records),
        cmocka_unit_test(test_plan_splits_at_5_mib),
        cmocka_unit_test(test_plan_mixed_sizes),
        cmocka_unit_test(test_plan_always_takes_one),
        cmocka_unit_test(test_body_two_records_stream_name),
        cmocka_unit_test(test_body_stream_arn),
        cmocka_unit_test(test_body_appends_and_edge_records),
        cmocka_unit_test(test_body_base64_round_trip),
        cmocka_unit_test(test_body_matches_api_reference_example),
        cmocka_unit_test(test_response_own_fixtures),
        cmocka_unit_test(test_response_shared_fixtures),
        cmocka_unit_test(test_response_per_record_codes),
        cmocka_unit_test(test_response_not_a_putrecords_answer),
        cmocka_unit_test(test_error_code_spellings),
        cmocka_unit_test(test_error_code_absent),
        cmocka_unit_test(test_error_code_small_buffer),
        cmocka_unit_test(test_error_code_botocore_fixture),
        cmocka_unit_test(test_error_code_deep_nesting_small_stack),
        cmocka_unit_test(test_classification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
