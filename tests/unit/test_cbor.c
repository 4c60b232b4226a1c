/* kte_cbor and the CBOR side of kte_batch: the PutRecords request in
 * Kinesis's CBOR protocol, its answers and error bodies (including
 * kinesis-local's own bytes), malformed and hostile answers, and the rule
 * that decides when the service refused the protocol itself. */
#include "kte_batch.h"
#include "kte_cbor.h"
#include "kte_kinesis.h"

#include <cbor.h>

#include "kte_test_util.h"

/* kinesis-local (kinesis-mock 0.6.2) answering PutRecords for two records in
 * CBOR: successful entries carry ErrorCode and ErrorMessage as null. */
static const char mock_ok[] = "\xa3nEncryptionTypedNONEqFailedRecordCount\x00gRecords\x82"
                              "\xa4iErrorCode\xf6lErrorMessage\xf6nSequenceNumberx8"
                              "49680689427604242331242639786323837566503158025046458370"
                              "gShardIdtshardId-000000000000"
                              "\xa4iErrorCode\xf6lErrorMessage\xf6nSequenceNumberx8"
                              "49680689427604242331242639786325046492322772654221164546"
                              "gShardIdtshardId-000000000000";

/* Its error body for a missing stream (HTTP 400). */
static const char mock_not_found[] =
    "\xa2"
    "f__typex\x19ResourceNotFoundExceptiongmessagexG"
    "Stream arn arn:aws:kinesis:us-east-1:000000000000:stream/nope not found";

/* cbor2.dumps of four entries: ok, throttled, ok (ErrorCode null), denied. */
static const char partial[] =
    "\xa3\x71\x46\x61\x69\x6c\x65\x64\x52\x65\x63\x6f\x72\x64\x43\x6f\x75\x6e"
    "\x74\x02\x67\x52\x65\x63\x6f\x72\x64\x73\x84\xa2\x6e\x53\x65\x71\x75\x65"
    "\x6e\x63\x65\x4e\x75\x6d\x62\x65\x72\x61\x31\x67\x53\x68\x61\x72\x64\x49"
    "\x64\x74\x73\x68\x61\x72\x64\x49\x64\x2d\x30\x30\x30\x30\x30\x30\x30\x30"
    "\x30\x30\x30\x30\xa2\x69\x45\x72\x72\x6f\x72\x43\x6f\x64\x65\x78\x26\x50"
    "\x72\x6f\x76\x69\x73\x69\x6f\x6e\x65\x64\x54\x68\x72\x6f\x75\x67\x68\x70"
    "\x75\x74\x45\x78\x63\x65\x65\x64\x65\x64\x45\x78\x63\x65\x70\x74\x69\x6f"
    "\x6e\x6c\x45\x72\x72\x6f\x72\x4d\x65\x73\x73\x61\x67\x65\x6d\x52\x61\x74"
    "\x65\x20\x65\x78\x63\x65\x65\x64\x65\x64\xa2\x69\x45\x72\x72\x6f\x72\x43"
    "\x6f\x64\x65\xf6\x6e\x53\x65\x71\x75\x65\x6e\x63\x65\x4e\x75\x6d\x62\x65"
    "\x72\x61\x32\xa2\x69\x45\x72\x72\x6f\x72\x43\x6f\x64\x65\x75\x41\x63\x63"
    "\x65\x73\x73\x44\x65\x6e\x69\x65\x64\x45\x78\x63\x65\x70\x74\x69\x6f\x6e"
    "\x6c\x45\x72\x72\x6f\x72\x4d\x65\x73\x73\x61\x67\x65\x62\x6e\x6f\x6e\x45"
    "\x6e\x63\x72\x79\x70\x74\x69\x6f\x6e\x54\x79\x70\x65\x64\x4e\x4f\x4e\x45";

#define LEN(a) (sizeof(a) - 1)

static int parse(const void *body, size_t len, size_t n, struct kte_rec_result *res)
{
    char err[200] = "";
    int rc = kte_batch_parse_response_cbor(body, len, n, res, err, sizeof err);
    if (rc < 0)
        assert_true(err[0] != '\0');
    return rc;
}

static void test_available(void **state)
{
    (void)state;
    assert_true(kte_cbor_available());
}

static void test_mock_answer(void **state)
{
    (void)state;
    struct kte_rec_result res[2];
    memset(res, 0xA5, sizeof res);
    assert_int_equal(parse(mock_ok, LEN(mock_ok), 2, res), 0);
    assert_int_equal(res[0].outcome, KTE_REC_OK);
    assert_int_equal(res[1].outcome, KTE_REC_OK);
    /* The wrong number of records is no answer to this call. */
    assert_int_equal(parse(mock_ok, LEN(mock_ok), 3, res), -1);
    assert_int_equal(parse(mock_ok, LEN(mock_ok), 1, res), -1);
}

static void test_partial_failure(void **state)
{
    (void)state;
    struct kte_rec_result res[4];
    memset(res, 0xA5, sizeof res);
    assert_int_equal(parse(partial, LEN(partial), 4, res), 2);
    assert_int_equal(res[0].outcome, KTE_REC_OK);
    assert_int_equal(res[1].outcome, KTE_REC_RETRY);
    assert_string_equal(res[1].error_code, "ProvisionedThroughputExceededException");
    assert_int_equal(res[2].outcome, KTE_REC_OK);
    assert_int_equal(res[3].outcome, KTE_REC_PERMANENT);
    assert_string_equal(res[3].error_code, "AccessDeniedException");
}

/* The same shape with indefinite-length map, array and texts (chunked
 * "ErrorCode" key and code), as a streaming encoder may write it. */
static void test_indefinite_lengths(void **state)
{
    (void)state;
    static const char body[] = "\xbf"
                               "gRecords\x9f"
                               "\xa0" /* {} : ok */
                               "\xbf\x7f"
                               "eError"
                               "dCode\xff" /* key in two chunks */
                               "\x7f"
                               "jThrottling"
                               "\xff" /* code in one chunk */
                               "\xff" /* end of entry */
                               "\xff" /* end of Records */
                               "qFailedRecordCount\x01"
                               "\xff";
    struct kte_rec_result res[2];
    assert_int_equal(parse(body, LEN(body), 2, res), 1);
    assert_int_equal(res[0].outcome, KTE_REC_OK);
    assert_int_equal(res[1].outcome, KTE_REC_RETRY);
    assert_string_equal(res[1].error_code, "Throttling");
}

/* Tags and odd values around the entries change nothing. */
static void test_tags_and_values(void **state)
{
    (void)state;
    static const char body[] = "\xa2"
                               "gRecords\x81\xa2"
                               "dTime\xc1\x1a\x5f\x00\x00\x00" /* tag 1: epoch time */
                               "iErrorCode\xd8\x20"
                               "aX"              /* tag 32 on the code */
                               "aZ\xf9\x3c\x00"; /* "Z": half float 1.0 */
    struct kte_rec_result res[1];
    assert_int_equal(parse(body, LEN(body), 1, res), 1);
    assert_string_equal(res[0].error_code, "X");
}

static void test_malformed_answers(void **state)
{
    (void)state;
    struct kte_rec_result res[4];
    /* Every proper prefix is truncated. */
    for (size_t k = 0; k < LEN(partial); k++)
        assert_int_equal(parse(partial, k, 4, res), -1);
    /* Trailing bytes. */
    char more[LEN(partial) + 1];
    memcpy(more, partial, LEN(partial));
    more[LEN(partial)] = '\0';
    assert_int_equal(parse(more, sizeof more, 4, res), -1);
    /* JSON is not CBOR. */
    const char *json = "{\"FailedRecordCount\":0,\"Records\":[{}]}";
    assert_int_equal(parse(json, strlen(json), 1, res), -1);
    /* A key that is no text. */
    assert_int_equal(parse("\xa1\x01\x02", 3, 1, res), -1);
    assert_int_equal(parse("\xa1\x80\x02", 3, 1, res), -1);
    /* A container claiming more than the body holds; a huge byte string. */
    assert_int_equal(parse("\x9b\xff\xff\xff\xff\xff\xff\xff\xff", 9, 1, res), -1);
    assert_int_equal(parse("\xbb\x7f\xff\xff\xff\xff\xff\xff\xff", 9, 1, res), -1);
    assert_int_equal(parse("\x5b\xff\xff\xff\xff\xff\xff\xff\xff", 9, 1, res), -1);
    /* Breaks where none belongs; a map's break after a key. */
    assert_int_equal(parse("\xff", 1, 1, res), -1);
    assert_int_equal(parse("\xa1"
                           "aa\xff",
                           4, 1, res),
                     -1);
    assert_int_equal(parse("\xbf"
                           "aa\xff",
                           4, 1, res),
                     -1);
    /* An indefinite text with a byte-string chunk. */
    assert_int_equal(parse("\x7f\x41x\xff", 4, 1, res), -1);
    /* Text that is not UTF-8 (a stray continuation byte, an overlong form, a
     * surrogate), as a key, a code, or a chunk. */
    assert_int_equal(parse("\xa1\x62\xc3\x28\x00", 5, 1, res), -1);
    assert_int_equal(parse("\xa1\x61x\x62\xc0\xaf", 6, 1, res), -1);
    assert_int_equal(parse("\xa1\x61x\x63\xed\xa0\x80", 7, 1, res), -1);
    assert_int_equal(parse("\xa1\x7f\x61\xff\xff\x00", 6, 1, res), -1);
    /* Empty body. */
    assert_int_equal(parse("", 0, 1, res), -1);
}

/* UTF-8 is checked eight bytes at a time, then the last eight as one word:
 * a text of every length up to 40 with a bad sequence (stray continuation
 * byte, overlong, surrogate, truncated) or a good multi-byte character at
 * every offset is refused or taken accordingly, as a key of the answer. */
static void test_utf8_check_at_every_offset_and_length(void **state)
{
    (void)state;
    static const struct {
        const char *seq;
        size_t len;
        bool valid;
    } cases[] = {
        {"\x80", 1, false},         {"\xc0\xaf", 2, false},
        {"\xed\xa0\x80", 3, false}, {"\xf4\x90\x80\x80", 4, false},
        {"\xe2\x82", 2, false},     {"\xc3\xa9", 2, true},
        {"\xe2\x82\xac", 3, true},  {"\xf0\x9f\x98\x80", 4, true},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t n = cases[c].len; n <= 40; n++)
            for (size_t at = 0; at + cases[c].len <= n; at++) {
                /* {text: 0} as the whole answer: an unknown key, ignored when valid */
                unsigned char body[64];
                size_t k = 0;
                body[k++] = 0xa1;
                body[k++] = (unsigned char)(0x78); /* text, one-byte length */
                body[k++] = (unsigned char)n;
                memset(body + k, 'a', n);
                memcpy(body + k + at, cases[c].seq, cases[c].len);
                k += n;
                body[k++] = 0x00;
                char err[100];
                yajl_callbacks none = {0};
                int rc = kte_cbor_walk(body, k, &none, NULL, NULL, err, sizeof err);
                if (rc != (cases[c].valid ? 0 : -1))
                    print_error("case %zu, length %zu, offset %zu: %d\n", c, n, at, rc);
                assert_int_equal(rc, cases[c].valid ? 0 : -1);
            }
}

/* FailedRecordCount 0 ahead of a Records array that says it holds exactly
 * the records sent ends the reading: what follows the array's head is not
 * read (a body cut after it, or garbage after it, is taken). */
static void test_zero_failed_stops_at_records(void **state)
{
    (void)state;
    size_t head = 0;
    while (head + 9 <= LEN(mock_ok) && memcmp(mock_ok + head, "gRecords\x82", 9) != 0)
        head++;
    assert_true(head + 9 <= LEN(mock_ok));
    head += 9; /* just after the array's head */
    struct kte_rec_result res[2];
    /* The array's head claims two entries: a body without two more bytes
     * cannot hold them, and is refused before anything is believed. */
    assert_int_equal(parse(mock_ok, head, 2, res), -1);
    assert_int_equal(parse(mock_ok, head + 1, 2, res), -1);
    for (size_t cut = head + 2; cut <= LEN(mock_ok); cut++) {
        memset(res, 0xA5, sizeof res);
        assert_int_equal(parse(mock_ok, cut, 2, res), 0);
        for (size_t i = 0; i < 2; i++) {
            assert_int_equal(res[i].outcome, KTE_REC_OK);
            assert_string_equal(res[i].error_code, "");
        }
    }
    char junk[LEN(mock_ok) + 4];
    memcpy(junk, mock_ok, head);
    memcpy(junk + head, "\xff\xff\x1c\x00", 4);
    assert_int_equal(parse(junk, head + 4, 2, res), 0);
    /* Before the array's head it is an ordinary truncated body. */
    for (size_t cut = 0; cut < head; cut++)
        assert_int_equal(parse(mock_ok, cut, 2, res), -1);
    /* 0 written in a longer form is still 0 (the entry, a stray break, is
     * not read). */
    static const char wide[] = "\xa2qFailedRecordCount\x19\x00\x00gRecords\x81\xff";
    assert_int_equal(parse(wide, LEN(wide), 1, res), 0);
}

/* Every other answer is read to its end, entries counted and checked. */
static void test_zero_failed_read_in_full_otherwise(void **state)
{
    (void)state;
    struct kte_rec_result res[3];
    /* The array holds another number of entries than records were sent. */
    assert_int_equal(parse(mock_ok, LEN(mock_ok), 3, res), -1);
    assert_int_equal(parse(mock_ok, LEN(mock_ok), 1, res), -1);
    /* The count comes after Records: the entries decide. */
    static const char after[] = "\xa2gRecords\x82\xa0\xa1iErrorCodeaX"
                                "qFailedRecordCount\x00";
    assert_int_equal(parse(after, LEN(after), 2, res), 1);
    assert_int_equal(res[0].outcome, KTE_REC_OK);
    assert_string_equal(res[1].error_code, "X");
    /* A count that is not 0, or not an unsigned integer, or an array of
     * unknown length: read in full, so the malformed entry after the array's
     * head (a stray break; an unterminated one) is found. */
#define CASE(lit)                                                                                  \
    {                                                                                              \
        lit, LEN(lit)                                                                              \
    }
    static const struct {
        const char *body;
        size_t len;
    } not_zero[] = {
        CASE("\xa2qFailedRecordCount\x01gRecords\x81\xff"),         /* 1 */
        CASE("\xa2qFailedRecordCount\x20gRecords\x81\xff"),         /* -1 */
        CASE("\xa2qFailedRecordCount\x61\x30gRecords\x81\xff"),     /* "0" */
        CASE("\xa2qFailedRecordCount\xf9\x00\x00gRecords\x81\xff"), /* 0.0 */
        CASE("\xa2qFailedRecordCount\xf6gRecords\x81\xff"),         /* null */
        CASE("\xa2qFailedRecordCount\x00gRecords\x9f\xa0"),         /* indefinite Records */
        CASE("\xa2qFailedRecordCounx\x00gRecords\x81\xff"),         /* another key */
    };
#undef CASE
    for (size_t i = 0; i < sizeof not_zero / sizeof not_zero[0]; i++) {
        int rc = parse(not_zero[i].body, not_zero[i].len, 1, res);
        if (rc != -1)
            print_error("case %zu stopped early: %d\n", i, rc);
        assert_int_equal(rc, -1);
    }
    /* A FailedRecordCount inside an entry is no answer's count. */
    static const char nested[] = "\xa1gRecords\x82\xa1qFailedRecordCount\x00\xa0";
    assert_int_equal(parse(nested, LEN(nested), 2, res), 0);
    assert_int_equal(parse(nested, LEN(nested) - 1, 2, res), -1);
    /* A second Records after the stop point is never reached; a first one
     * read in full, then the count, then another array: counted as before. */
    static const char twice[] = "\xa3gRecords\x81\xa0qFailedRecordCount\x00gRecords\x81\xa0";
    assert_int_equal(parse(twice, LEN(twice), 1, res), -1);
}

/* Unsigned integers reach yajl_number as their decimal text; negative ones
 * and floats stay null. */
struct numbers {
    char seen[8][24];
    int n, nulls;
};

static int num_cb(void *ctx, const char *v, size_t len)
{
    struct numbers *s = ctx;
    assert_true(s->n < 8 && len < 24);
    memcpy(s->seen[s->n], v, len);
    s->seen[s->n++][len] = '\0';
    return 1;
}

static int null_cb(void *ctx)
{
    ((struct numbers *)ctx)->nulls++;
    return 1;
}

static void test_unsigned_integers_as_numbers(void **state)
{
    (void)state;
    static const char body[] = "\x88"
                               "\x00"
                               "\x17"
                               "\x18\x18"
                               "\x19\xff\xff"
                               "\x1a\x00\x01\x00\x00"
                               "\x1b\xff\xff\xff\xff\xff\xff\xff\xff"
                               "\x20"          /* -1 */
                               "\xf9\x3c\x00"; /* 1.0 */
    static const char *const want[] = {"0", "23", "24", "65535", "65536", "18446744073709551615"};
    yajl_callbacks cb = {0};
    cb.yajl_number = num_cb;
    cb.yajl_null = null_cb;
    struct numbers s = {0};
    char err[100];
    assert_int_equal(
        kte_cbor_walk((const unsigned char *)body, LEN(body), &cb, &s, NULL, err, sizeof err), 0);
    assert_int_equal(s.n, 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(s.seen[i], want[i]);
    assert_int_equal(s.nulls, 2);
    /* Without yajl_number they are null, as before. */
    cb.yajl_number = NULL;
    s = (struct numbers){0};
    assert_int_equal(
        kte_cbor_walk((const unsigned char *)body, LEN(body), &cb, &s, NULL, err, sizeof err), 0);
    assert_int_equal(s.nulls, 8);
    /* A number is no map key. */
    assert_int_equal(
        kte_cbor_walk((const unsigned char *)"\xa1\x01\x02", 3, &cb, &s, NULL, err, sizeof err),
        -1);
}

/* Every array's length reaches array_len before its yajl_start_array. */
static int arr_cb(void *ctx)
{
    uint64_t **p = ctx;
    *p[1]++ = *p[0];
    return 1;
}

static void test_array_lengths(void **state)
{
    (void)state;
    static const char body[] = "\x83\x80\x9f\x01\xff\x98\x18"
                               "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                               "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    uint64_t len = 7, got[4] = {0};
    uint64_t *ctx[2] = {&len, got};
    yajl_callbacks cb = {0};
    cb.yajl_start_array = arr_cb;
    char err[100];
    assert_int_equal(
        kte_cbor_walk((const unsigned char *)body, LEN(body), &cb, ctx, &len, err, sizeof err), 0);
    assert_true(got[0] == 3 && got[1] == 0 && got[2] == KTE_CBOR_INDEFINITE && got[3] == 24);
}

/* KTE_CBOR_MAX_DEPTH levels parse; one more does not, and nothing recurses. */
static void test_depth_limit(void **state)
{
    (void)state;
    char body[200];
    for (int depth = KTE_CBOR_MAX_DEPTH; depth <= KTE_CBOR_MAX_DEPTH + 1; depth++) {
        size_t k = 0;
        body[k++] = '\xa1';
        memcpy(body + k, "gRecords\x81", 9);
        k += 9;
        body[k++] = '\xa1'; /* the one entry, {"x": depth - 3 nested arrays} */
        body[k++] = '\x61';
        body[k++] = 'x';
        for (int i = 3; i < depth; i++)
            body[k++] = '\x81';
        body[k++] = '\x00';
        struct kte_rec_result res[1];
        int rc = parse(body, k, 1, res);
        assert_int_equal(rc, depth <= KTE_CBOR_MAX_DEPTH ? 0 : -1);
    }
    /* A million nested arrays fail early, without recursion. */
    size_t n = 1000000;
    char *deep = malloc(n);
    assert_non_null(deep);
    memset(deep, '\x81', n);
    struct kte_rec_result res[1];
    assert_int_equal(parse(deep, n, 1, res), -1);
    free(deep);
}

static void test_error_bodies(void **state)
{
    (void)state;
    char code[KTE_ERRCODE_MAX];
    assert_int_equal(
        kte_batch_error_code_cbor(mock_not_found, LEN(mock_not_found), code, sizeof code), 0);
    assert_string_equal(code, "ResourceNotFoundException");
    /* A namespaced type with a ":uri" suffix, as botocore trims it. */
    static const char ns[] = "\xa2"
                             "f__typex\x3f"
                             "com.amazonaws.kinesis#ResourceNotFoundException:http://internal"
                             "gmessageinot found";
    assert_int_equal(kte_batch_error_code_cbor(ns, LEN(ns), code, sizeof code), 0);
    assert_string_equal(code, "ResourceNotFoundException");
    /* "code" when there is no __type; the first occurrence decides. */
    static const char c2[] = "\xa2"
                             "dcodeuExpiredTokenException"
                             "dcodeaX";
    assert_int_equal(kte_batch_error_code_cbor(c2, LEN(c2), code, sizeof code), 0);
    assert_string_equal(code, "ExpiredTokenException");
    /* No code, not a map, JSON, nested __type: none. */
    assert_int_equal(kte_batch_error_code_cbor("\xa1gmessageaz", 11, code, sizeof code), -1);
    assert_int_equal(kte_batch_error_code_cbor("\x81\x01", 2, code, sizeof code), -1);
    const char *json = "{\"__type\":\"ThrottlingException\"}";
    assert_int_equal(kte_batch_error_code_cbor(json, strlen(json), code, sizeof code), -1);
    static const char nested[] = "\xa1"
                                 "ax\xa1"
                                 "f__typeaY";
    assert_int_equal(kte_batch_error_code_cbor(nested, LEN(nested), code, sizeof code), -1);
}

/* The request decodes (with libcbor's own loader) to exactly the records. */
static void test_request_body(void **state)
{
    (void)state;
    char big[300];
    memset(big, 0xEE, sizeof big);
    struct kte_wire w[3] = {
        {.data = "\x00\xff{\"a\":1}", .len = 9, .pk = "pk-1", .pk_len = 4},
        {.data = big, .len = sizeof big, .pk = "\xc3\xa9t\xc3\xa9", .pk_len = 5},
        {.data = "", .len = 0, .pk = "k", .pk_len = 1},
    };
    for (int arn = 0; arn <= 1; arn++) {
        struct kte_buf b;
        kte_buf_init(&b);
        assert_int_equal(kte_cbor_body_wire(&b, "my-stream",
                                            arn ? "arn:aws:kinesis:us-east-1:1:stream/s" : "", w,
                                            3),
                         0);
        struct cbor_load_result lr;
        cbor_item_t *root = cbor_load((cbor_data)b.data, b.len, &lr);
        assert_non_null(root);
        assert_int_equal(lr.read, b.len);
        assert_true(cbor_isa_map(root) && cbor_map_is_definite(root));
        assert_int_equal(cbor_map_size(root), 2);
        struct cbor_pair *top = cbor_map_handle(root);
        assert_int_equal(cbor_string_length(top[0].key), 7);
        assert_memory_equal(cbor_string_handle(top[0].key), "Records", 7);
        const char *sk = arn ? "StreamARN" : "StreamName";
        const char *sv = arn ? "arn:aws:kinesis:us-east-1:1:stream/s" : "my-stream";
        assert_int_equal(cbor_string_length(top[1].key), strlen(sk));
        assert_memory_equal(cbor_string_handle(top[1].key), sk, strlen(sk));
        assert_int_equal(cbor_string_length(top[1].value), strlen(sv));
        assert_memory_equal(cbor_string_handle(top[1].value), sv, strlen(sv));
        cbor_item_t *recs = top[0].value;
        assert_true(cbor_isa_array(recs));
        assert_int_equal(cbor_array_size(recs), 3);
        for (size_t i = 0; i < 3; i++) {
            cbor_item_t *e = cbor_array_handle(recs)[i];
            assert_int_equal(cbor_map_size(e), 2);
            struct cbor_pair *p = cbor_map_handle(e);
            assert_memory_equal(cbor_string_handle(p[0].key), "Data", 4);
            assert_true(cbor_isa_bytestring(p[0].value));
            assert_int_equal(cbor_bytestring_length(p[0].value), w[i].len);
            if (w[i].len)
                assert_memory_equal(cbor_bytestring_handle(p[0].value), w[i].data, w[i].len);
            assert_memory_equal(cbor_string_handle(p[1].key), "PartitionKey", 12);
            assert_true(cbor_isa_string(p[1].value));
            assert_int_equal(cbor_string_length(p[1].value), w[i].pk_len);
            assert_memory_equal(cbor_string_handle(p[1].value), w[i].pk, w[i].pk_len);
        }
        cbor_decref(&root);
        /* No base64: the body is the data plus a small overhead per record. */
        assert_true(b.len < 9 + 300 + 0 + 3 * 40 + 40);
        kte_buf_free(&b);
    }
}

static void test_refusal_rule(void **state)
{
    (void)state;
    /* The protocol itself. */
    assert_true(kte_kinesis_refuses_cbor(404, "HTTP 404"));
    assert_true(kte_kinesis_refuses_cbor(400, "SerializationException"));
    assert_true(kte_kinesis_refuses_cbor(400, "UnknownOperationException"));
    assert_true(kte_kinesis_refuses_cbor(415, "HTTP 415"));
    assert_true(kte_kinesis_refuses_cbor(415, "UnsupportedMediaTypeException"));
    /* The request, the records, the credentials, the load: not the protocol. */
    assert_false(kte_kinesis_refuses_cbor(200, ""));
    assert_false(kte_kinesis_refuses_cbor(400, "ResourceNotFoundException"));
    assert_false(kte_kinesis_refuses_cbor(400, "ValidationException"));
    assert_false(kte_kinesis_refuses_cbor(400, "ProvisionedThroughputExceededException"));
    assert_false(kte_kinesis_refuses_cbor(400, "ExpiredTokenException"));
    assert_false(kte_kinesis_refuses_cbor(403, "HTTP 403"));
    assert_false(kte_kinesis_refuses_cbor(429, "HTTP 429"));
    assert_false(kte_kinesis_refuses_cbor(408, "HTTP 408"));
    assert_false(kte_kinesis_refuses_cbor(500, "SerializationException"));
    assert_false(kte_kinesis_refuses_cbor(503, "HTTP 503"));
    assert_false(kte_kinesis_refuses_cbor(0, "Couldn't connect to server (curl error 7)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_available),
        cmocka_unit_test(test_mock_answer),
        cmocka_unit_test(test_partial_failure),
        cmocka_unit_test(test_indefinite_lengths),
        cmocka_unit_test(test_tags_and_values),
        cmocka_unit_test(test_malformed_answers),
        cmocka_unit_test(test_utf8_check_at_every_offset_and_length),
        cmocka_unit_test(test_zero_failed_stops_at_records),
        cmocka_unit_test(test_zero_failed_read_in_full_otherwise),
        cmocka_unit_test(test_unsigned_integers_as_numbers),
        cmocka_unit_test(test_array_lengths),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_error_bodies),
        cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_refusal_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
