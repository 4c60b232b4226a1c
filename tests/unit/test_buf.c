/* kte_buf: growth, printf, JSON string escaping and steal. */
#include "kte_buf.h"

#include "kte_test_util.h"

static void test_init_is_empty(void **state)
{
    (void)state;
    struct kte_buf b;
    kte_buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    kte_buf_free(&b); /* freeing an empty buffer is fine */
    assert_null(b.data);
}

static void test_append_and_puts(void **state)
{
    (void)state;
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_buf_append(&b, "abc", 3), 0);
    assert_int_equal(kte_buf_puts(&b, "de"), 0);
    assert_int_equal(kte_buf_append(&b, "xyz", 0), 0); /* empty append */
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "abcde");
    assert_true(b.cap >= 6);
    kte_buf_free(&b);
}

static void test_append_empty_on_fresh_buffer_terminates(void **state)
{
    (void)state;
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_buf_append(&b, NULL, 0), 0);
    assert_non_null(b.data);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    kte_buf_free(&b);
}

static void test_growth_keeps_content(void **state)
{
    (void)state;
    struct kte_buf b;
    kte_buf_init(&b);
    /* 10000 appends of 7 bytes cross many doublings of the initial 256. */
    for (int i = 0; i < 10000; i++)
        assert_int_equal(kte_buf_append(&b, "0123456", 7), 0);
    assert_int_equal(b.len, 70000);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[b.len], '\0');
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal(b.data[i], '0' + (int)(i % 7));
    kte_buf_free(&b);
}

static void test_reserve_does_not_change_length(void **state)
{
    (void)state;
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_buf_puts(&b, "ab"), 0);
    assert_int_equal(kte_buf_reserve(&b, 100000), 0);
    assert_true(b.cap >= 100003);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "ab");
    char *before = b.data;
    assert_int_equal(kte_buf_append(&b, "c", 1), 0);
    assert_ptr_equal(b.data, before);                    /* reserved: no reallocation */
    assert_int_equal(kte_buf_reserve(&b, SIZE_MAX), -1); /* overflow is refused */
    assert_string_equal(b.data, "abc");
    kte_buf_free(&b);
}

static void test_reset_keeps_storage(void **state)
{
    (void)state;
    struct kte_buf b;
    kte_buf_init(&b);
    kte_buf_reset(&b); /* on an empty buffer: no crash */
    assert_int_equal(kte_buf_puts(&b, "hello"), 0);
    size_t cap = b.cap;
    kte_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_string_equal(b.data, "");
    assert_int_equal(kte_buf_puts(&b, "x"), 0);
    assert_string_equal(b.data, "x");
    kte_buf_free(&b);
}

static void test_printf_small_and_appends(void **state)
{
    (void)state;
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_buf_puts(&b, "n="), 0);
    assert_int_equal(kte_buf_printf(&b, "%d,%s,%05.1f,%llu", -42, "str", 3.14159,
                                    (unsigned long long)UINT64_MAX),
                     0);
    assert_string_equal(b.data, "n=-42,str,003.1,18446744073709551615");
    assert_int_equal(b.len, strlen("n=-42,str,003.1,18446744073709551615"));
    assert_int_equal(kte_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, strlen("n=-42,str,003.1,18446744073709551615"));
    kte_buf_free(&b);
}

static void test_printf_growth_past_initial_capacity(void **state)
{
    (void)state;
    struct kte_buf b;
    kte_buf_init(&b);
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(kte_buf_puts(&b, "<"), 0);
    assert_int_equal(kte_buf_printf(&b, "%s|%d", big, 7), 0);
    assert_int_equal(b.len, 1 + 4999 + 2);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[4999], 'q');
    assert_int_equal(b.data[5000], '|');
    assert_int_equal(b.data[5001], '7');
    assert_int_equal(b.data[5002], '\0');
    /* Exactly filling the current capacity (len + n + 1 == cap) still works,
     * and the next byte grows the buffer. */
    struct kte_buf c;
    kte_buf_init(&c);
    assert_int_equal(kte_buf_printf(&c, "%s", ""), 0);
    size_t cap = c.cap;
    assert_true(cap > 1 && cap < sizeof big);
    memset(big, 'z', cap - 1);
    big[cap - 1] = '\0';
    assert_int_equal(kte_buf_printf(&c, "%s", big), 0);
    assert_int_equal(c.len, cap - 1);
    assert_int_equal(c.cap, cap);
    assert_int_equal(c.data[cap - 1], '\0');
    assert_int_equal(kte_buf_printf(&c, "%c", 'y'), 0);
    assert_int_equal(c.len, cap);
    assert_true(c.cap > cap);
    assert_int_equal(c.data[cap - 2], 'z');
    assert_int_equal(c.data[cap - 1], 'y');
    assert_int_equal(c.data[cap], '\0');
    kte_buf_free(&c);
    kte_buf_free(&b);
}

static void check_json(const char *in, size_t n, const char *want)
{
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_buf_json_string(&b, in, n), 0);
    kt_assert_bytes(b.data, b.len, want);
    assert_int_equal(b.data[b.len], '\0');
    kte_buf_free(&b);
}

static void test_json_string_plain_and_empty(void **state)
{
    (void)state;
    check_json("", 0, "\"\"");
    check_json("hello world", 11, "\"hello world\"");
    /* Only the first n bytes count. */
    check_json("abcdef", 3, "\"abc\"");
}

static void test_json_string_quotes_and_backslash(void **state)
{
    (void)state;
    check_json("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"");
    check_json("\\\\\"\"", 4, "\"\\\\\\\\\\\"\\\"\"");
}

static void test_json_string_control_chars(void **state)
{
    (void)state;
    check_json("\n\r\t", 3, "\"\\n\\r\\t\"");
    check_json("\b\f", 2, "\"\\u0008\\u000c\"");
    check_json("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
    /* An embedded NUL is escaped, not a terminator. */
    check_json("a\0b", 3, "\"a\\u0000b\"");
    /* Every control character, each in the \u00XX or short form. */
    struct kte_buf b;
    kte_buf_init(&b);
    char all[32];
    for (int i = 0; i < 32; i++)
        all[i] = (char)i;
    assert_int_equal(kte_buf_json_string(&b, all, sizeof all), 0);
    yajl_val v = kt_json_parse(b.data, b.len);
    assert_non_null(v);
    assert_true(YAJL_IS_STRING(v));
    /* yajl's decoded strings end at a decoded NUL: compare without it. */
    yajl_tree_free(v);
    kte_buf_reset(&b);
    assert_int_equal(kte_buf_json_string(&b, all + 1, sizeof all - 1), 0);
    v = kt_json_parse(b.data, b.len);
    assert_non_null(v);
    const char *decoded = YAJL_GET_STRING(v);
    assert_non_null(decoded);
    assert_int_equal(strlen(decoded), sizeof all - 1);
    assert_memory_equal(decoded, all + 1, sizeof all - 1);
    yajl_tree_free(v);
    kte_buf_free(&b);
}

static void test_json_string_utf8_passes_through(void **state)
{
    (void)state;
    /* é (2 bytes), € (3), 😀 (4): copied, not escaped. */
    check_json("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
               "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
}

static void test_json_string_appends_after_content(void **state)
{
    (void)state;
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_buf_puts(&b, "{\"k\":"), 0);
    assert_int_equal(kte_buf_json_string(&b, "v\"", 2), 0);
    assert_int_equal(kte_buf_puts(&b, "}"), 0);
    kt_assert_bytes(b.data, b.len, "{\"k\":\"v\\\"\"}");
    kte_buf_free(&b);
}

static void test_json_string_worst_case_growth(void **state)
{
    (void)state;
    /* 1000 control bytes: every byte becomes 6, past the initial capacity. */
    char in[1000];
    memset(in, 0x01, sizeof in);
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_buf_json_string(&b, in, sizeof in), 0);
    assert_int_equal(b.len, 6000 + 2);
    assert_int_equal(b.data[0], '"');
    assert_int_equal(b.data[b.len - 1], '"');
    assert_memory_equal(b.data + 1, "\\u0001\\u0001", 12);
    assert_memory_equal(b.data + b.len - 7, "\\u0001\"", 7);
    kte_buf_free(&b);
}

static void test_steal(void **state)
{
    (void)state;
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_buf_puts(&b, "owned"), 0);
    size_t len = 0;
    char *p = kte_buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 5);
    assert_string_equal(p, "owned");
    /* b is re-initialised and usable again, independent of p. */
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(kte_buf_puts(&b, "new"), 0);
    assert_string_equal(b.data, "new");
    assert_string_equal(p, "owned");
    free(p);
    kte_buf_free(&b);

    /* Stealing an empty buffer gives NULL; len may be omitted. */
    kte_buf_init(&b);
    assert_null(kte_buf_steal(&b, NULL));
    len = 99;
    assert_null(kte_buf_steal(&b, &len));
    assert_int_equal(len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_is_empty),
        cmocka_unit_test(test_append_and_puts),
        cmocka_unit_test(test_append_empty_on_fresh_buffer_terminates),
        cmocka_unit_test(test_growth_keeps_content),
        cmocka_unit_test(test_reserve_does_not_change_length),
        cmocka_unit_test(test_reset_keeps_storage),
        cmocka_unit_test(test_printf_small_and_appends),
        cmocka_unit_test(test_printf_growth_past_initial_capacity),
        cmocka_unit_test(test_json_string_plain_and_empty),
        cmocka_unit_test(test_json_string_quotes_and_backslash),
        cmocka_unit_test(test_json_string_control_chars),
        cmocka_unit_test(test_json_string_utf8_passes_through),
        cmocka_unit_test(test_json_string_appends_after_content),
        cmocka_unit_test(test_json_string_worst_case_growth),
        cmocka_unit_test(test_steal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
