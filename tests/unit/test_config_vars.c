/* kte_config_vars: the one list of KTE_* variables, unknown names and their
 * closest known name, and the list's agreement with the code that reads the
 * variables (the sources under src/) and with README's configuration table. */
#include "kte_config_vars.h"

#include "kte_test_util.h"

#include <dirent.h>

static const char *closest(const char *name)
{
    return kte_config_var_closest(name, strlen(name));
}

static void test_table_is_well_formed(void **state)
{
    (void)state;
    assert_true(kte_config_vars_count >= 21);
    for (size_t i = 0; i < kte_config_vars_count; i++) {
        const struct kte_config_var *v = &kte_config_vars[i];
        assert_memory_equal(v->name, "KTE_", 4);
        assert_non_null(v->help);
        assert_true(strlen(v->help) > 0);
        assert_null(strchr(v->help, '\n'));
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(v->name, kte_config_vars[j].name);
    }
}

static void test_find_matches_whole_names_only(void **state)
{
    (void)state;
    const struct kte_config_var *v = kte_config_var_find("KTE_STREAM_NAME", 15);
    assert_non_null(v);
    assert_string_equal(v->name, "KTE_STREAM_NAME");
    /* "KTE_FLUSH" is a prefix of KTE_FLUSH_WAIT_MS and a name of its own. */
    assert_string_equal(kte_config_var_find("KTE_FLUSH_WAIT_MS=5", 9)->name, "KTE_FLUSH");
    assert_null(kte_config_var_find("KTE_FLUSH_", 10));
    assert_null(kte_config_var_find("KTE_STREAM", 10));
    assert_null(kte_config_var_find("kte_stream_name", 15));
    assert_null(kte_config_var_find("", 0));
}

static void test_closest_names_typos(void **state)
{
    (void)state;
    assert_string_equal(closest("KTE_STREM_NAME"), "KTE_STREAM_NAME");   /* deletion */
    assert_string_equal(closest("KTE_STREAMS_NAME"), "KTE_STREAM_NAME"); /* insertion */
    assert_string_equal(closest("KTE_ENDPIONT"), "KTE_ENDPOINT");        /* swap */
    assert_string_equal(closest("KTE_LOGLEVEL"), "KTE_LOG_LEVEL");
    assert_string_equal(closest("KTE_TYPE"), "KTE_TYPES");
    assert_string_equal(closest("KTE_STREAM_NAMES"), "KTE_STREAM_NAME");
    assert_string_equal(closest("KTE_BUFFER_TIMEOUT"), "KTE_BUFFER_TIMEOUT_MS");
    assert_string_equal(closest("KTE_PARTITON_KEY"), "KTE_PARTITION_KEY");
}

static void test_closest_is_null_when_nothing_is_plausible(void **state)
{
    (void)state;
    assert_null(closest("KTE_ENCRYPTION")); /* an option of a newer version */
    assert_null(closest("KTE_FOO"));
    assert_null(closest("KTE_"));
    assert_null(closest("KTE_X"));
    char longname[200];
    memset(longname, 'A', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_null(closest(longname));
}

struct seen {
    size_t n;
    char name[8][64];
    const char *closest[8];
};

static void record(const char *name, size_t len, const char *close, void *ctx)
{
    struct seen *s = ctx;
    assert_true(s->n < 8 && len < 64);
    memcpy(s->name[s->n], name, len);
    s->name[s->n][len] = '\0';
    s->closest[s->n] = close;
    s->n++;
}

static void test_check_reports_each_unknown_kte_variable(void **state)
{
    (void)state;
    char *env[] = {
        "PATH=/usr/bin",
        "KTE_STREAM_NAME=s",
        "KTE_STREM_NAME=typo",
        "MY_KTE_STREM_NAME=not ours",
        "kte_stream_name=not ours either",
        "KTE_ENCRYPTION=zstd",
        "KTE_LOG_LEVEL",
        "KTE_FLUSH=end",
        "KTE_FLUSH_WAIT_MS=100",
        "KTE_ENDPOINT=http://x=y",
        NULL,
    };
    struct seen s = {0};
    assert_int_equal(kte_config_vars_check(env, record, &s), 2);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.name[0], "KTE_STREM_NAME");
    assert_string_equal(s.closest[0], "KTE_STREAM_NAME");
    assert_string_equal(s.name[1], "KTE_ENCRYPTION");
    assert_null(s.closest[1]);

    char *clean[] = {"KTE_STREAM_NAME=s", "HOME=/root", NULL};
    assert_int_equal(kte_config_vars_check(clean, record, &s), 0);
    assert_int_equal(kte_config_vars_check(NULL, record, &s), 0);
    assert_int_equal(kte_config_vars_check(env, NULL, NULL), 2);
    assert_int_equal(s.n, 2);
}

/* ---- agreement with the code and README --------------------------------- */

/* Calls fn for every quoted "KTE_NAME" literal in text. */
static void each_quoted_name(const char *text, void (*fn)(const char *, size_t, void *), void *ctx)
{
    for (const char *p = text; (p = strstr(p, "\"KTE_")) != NULL; p++) {
        const char *s = p + 1, *e = s;
        while ((*e >= 'A' && *e <= 'Z') || (*e >= '0' && *e <= '9') || *e == '_')
            e++;
        if (*e == '"')
            fn(s, (size_t)(e - s), ctx);
    }
}

struct names {
    size_t unknown;
    bool used[64];
};

static void mark(const char *name, size_t len, void *ctx)
{
    struct names *n = ctx;
    const struct kte_config_var *v = kte_config_var_find(name, len);
    if (!v) {
        print_error("%.*s is read by the code but missing from kte_config_vars\n", (int)len, name);
        n->unknown++;
        return;
    }
    n->used[v - kte_config_vars] = true;
}

static void test_table_matches_the_code(void **state)
{
    (void)state;
    assert_true(kte_config_vars_count <= 64);
    struct names n = {0};
    DIR *d = opendir(KTE_SOURCE_DIR "/src");
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 3 || strcmp(de->d_name + l - 2, ".c") != 0 ||
            strcmp(de->d_name, "kte_config_vars.c") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/src/%s", KTE_SOURCE_DIR, de->d_name);
        char *text = kt_must_read(path, NULL);
        each_quoted_name(text, mark, &n);
        free(text);
    }
    closedir(d);
    size_t unused = 0;
    for (size_t i = 0; i < kte_config_vars_count; i++) {
        if (!n.used[i]) {
            print_error("%s is in kte_config_vars but no code reads it\n", kte_config_vars[i].name);
            unused++;
        }
    }
    assert_int_equal(n.unknown, 0);
    assert_int_equal(unused, 0);
}

/* README's "## Configuration" section: a table whose rows start with
 * "| `KTE_NAME`". Its names and the list's must be the same. */
static void test_table_matches_readme(void **state)
{
    (void)state;
    char *readme = kt_must_read(KTE_SOURCE_DIR "/README.md", NULL);
    char *sec = strstr(readme, "\n## Configuration\n");
    assert_non_null(sec);
    sec++;
    char *end = strstr(sec + 3, "\n## ");
    if (end)
        *end = '\0';
    struct names n = {0};
    size_t rows = 0;
    for (char *line = sec; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "| `KTE_", 7) != 0)
            continue;
        const char *s = line + 3, *e = strchr(s, '`');
        assert_non_null(e);
        rows++;
        mark(s, (size_t)(e - s), &n);
    }
    free(readme);
    size_t missing = 0;
    for (size_t i = 0; i < kte_config_vars_count; i++) {
        if (!n.used[i]) {
            print_error("%s is missing from README's configuration table\n",
                        kte_config_vars[i].name);
            missing++;
        }
    }
    assert_int_equal(n.unknown, 0);
    assert_int_equal(missing, 0);
    assert_int_equal(rows, kte_config_vars_count);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_well_formed),
        cmocka_unit_test(test_find_matches_whole_names_only),
        cmocka_unit_test(test_closest_names_typos),
        cmocka_unit_test(test_closest_is_null_when_nothing_is_plausible),
        cmocka_unit_test(test_check_reports_each_unknown_kte_variable),
        cmocka_unit_test(test_table_matches_the_code),
        cmocka_unit_test(test_table_matches_readme),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
