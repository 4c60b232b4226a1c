#include "kte_rules.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_tree.h>

/* Bounds on the work of one match call (docs/rules.md): a catastrophic
 * pattern costs at most this much per string, never a stalled listener. */
#define MATCH_LIMIT   100000u
#define DEPTH_LIMIT   1000u
#define HEAP_LIMIT_KB 1024u
#define JIT_STACK_MAX (256u * 1024u)
#define MAX_PATTERNS  64
#define MAX_TYPES     32
#define MAX_NAME      32 /* a custom rule's name; the marker must fit struct pattern */

typedef bool (*validator_fn)(const char *s, size_t n);

/* What a string must contain for a built-in pattern to have a chance: one
 * pass over the string spares most regex calls on ordinary log lines. */
enum feature {
    F_AT = 1,       /* '@' */
    F_DIGITS13 = 2, /* at least 13 digits */
    F_AKEY = 4,     /* 'A' followed by KIA, SIA, BIA, CCA or 3T */
    F_KV = 8,       /* '=' or ':' */
    F_EYJ = 16,     /* "eyJ" */
    F_BEARER = 32,  /* "bearer", any case */
    F_IP = 64,      /* three digit-'.'-digit, or two ':' */
    F_SECRET = 128, /* "secret", any case */
};

struct pattern {
    pcre2_code *code;
    enum kte_redact_rule rule;
    unsigned need;              /* enum feature bits */
    validator_fn valid;         /* NULL: every match counts */
    char name[MAX_NAME + 1];    /* the rule's name: a built-in's, a custom one's or "custom" */
    char marker[MAX_NAME + 12]; /* [REDACTED:<name>] */
};

struct kte_rules {
    char exclude_types[MAX_TYPES][KTE_EVENT_TYPE_MAX];
    size_t n_exclude_types;
    enum kte_level min_level;
    pcre2_code *include_re;
    pcre2_code *exclude_re;
    double sample_rate; /* 1.0: no sampling */
    bool sample_platform;
    struct pattern redact[MAX_PATTERNS];
    size_t n_redact;
    unsigned any_need; /* some pattern has a prefilter */
};

struct span {
    size_t s, e; /* decoded offsets, [s, e) */
    const struct pattern *p;
};

struct kte_rules_scratch {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    /* The decoded JSON string and, per decoded byte, the raw bytes of the
     * escape or character it came from. */
    char *dec;
    size_t *src_s, *src_e;
    size_t dec_cap;
    struct span *spans;
    size_t n_spans, spans_cap;
};

/* ---- built-in patterns --------------------------------------------------- */

static bool ipv6_ok(const char *s, size_t n)
{
    char tmp[64];
    unsigned char addr[16];
    if (n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(AF_INET6, tmp, addr) == 1;
}

static bool ip_ok(const char *s, size_t n)
{
    return memchr(s, ':', n) ? ipv6_ok(s, n) : true; /* IPv4: the pattern is exact */
}

bool kte_luhn_ok(const char *s, size_t n)
{
    int sum = 0, digits = 0;
    for (size_t i = n; i-- > 0;) {
        if (s[i] == ' ' || s[i] == '-')
            continue;
        if (s[i] < '0' || s[i] > '9')
            return false;
        int d = s[i] - '0';
        if (digits++ & 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return digits >= 13 && digits <= 19 && sum % 10 == 0;
}

/* The bytes features() looks at; the others are skipped four at a time.
 * "eyJ" is found by its rare 'J', not by the common 'e'. */
enum { C_DIGIT = 1, C_AT, C_COLON, C_EQ, C_DOT, C_A, C_J, C_B, C_S };
static const unsigned char byte_class[256] = {
    ['0'] = C_DIGIT, ['1'] = C_DIGIT, ['2'] = C_DIGIT, ['3'] = C_DIGIT, ['4'] = C_DIGIT,
    ['5'] = C_DIGIT, ['6'] = C_DIGIT, ['7'] = C_DIGIT, ['8'] = C_DIGIT, ['9'] = C_DIGIT,
    ['@'] = C_AT,    [':'] = C_COLON, ['='] = C_EQ,    ['.'] = C_DOT,   ['A'] = C_A,
    ['J'] = C_J,     ['b'] = C_B,     ['B'] = C_B,     ['s'] = C_S,     ['S'] = C_S,
};

static unsigned features(const char *d, size_t n)
{
    unsigned f = 0, digits = 0, colons = 0, dots = 0;
    const unsigned char *u = (const unsigned char *)d;
    for (size_t i = 0; i < n; i++) {
        while (i + 4 <= n && !(byte_class[u[i]] | byte_class[u[i + 1]] | byte_class[u[i + 2]] |
                               byte_class[u[i + 3]]))
            i += 4;
        if (i >= n)
            break;
        switch (byte_class[u[i]]) {
        case 0:
            break;
        case C_DIGIT:
            digits++;
            break;
        case C_AT:
            f |= F_AT;
            break;
        case C_COLON:
            colons++, f |= F_KV;
            break;
        case C_EQ:
            f |= F_KV;
            break;
        case C_DOT: /* an IPv4 address has three between digits */
            if (i > 0 && i + 1 < n && byte_class[u[i - 1]] == C_DIGIT &&
                byte_class[u[i + 1]] == C_DIGIT)
                dots++;
            break;
        case C_A:
            if (i + 3 < n && ((d[i + 2] == 'I' && d[i + 3] == 'A' &&
                               (d[i + 1] == 'K' || d[i + 1] == 'S' || d[i + 1] == 'B')) ||
                              (d[i + 1] == 'C' && d[i + 2] == 'C' && d[i + 3] == 'A') ||
                              (d[i + 1] == '3' && d[i + 2] == 'T')))
                f |= F_AKEY;
            break;
        case C_J:
            if (i >= 2 && d[i - 2] == 'e' && d[i - 1] == 'y')
                f |= F_EYJ;
            break;
        case C_B:
            if (i + 5 < n && (u[i + 1] | 0x20) == 'e' && !strncasecmp(d + i + 2, "arer", 4))
                f |= F_BEARER;
            break;
        case C_S:
            if (i + 5 < n && (u[i + 1] | 0x20) == 'e' && !strncasecmp(d + i + 2, "cret", 4))
                f |= F_SECRET;
            break;
        }
    }
    if (digits >= 13)
        f |= F_DIGITS13;
    if (dots >= 3 || colons >= 2)
        f |= F_IP;
    return f;
}

/* Every built-in but ip-address and credit-card needs a literal the
 * prefilter sees (any case under (?i)): without it the pattern is not run. */
static const struct builtin {
    const char *name;
    const char *re;
    validator_fn valid;
    unsigned need;
} builtins[KTE_RX_CUSTOM] = {
    [KTE_RX_EMAIL] =
        {"email",
         "(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}+@(?:[A-Za-z0-9-]{1,63}+\\.){1,8}+"
         "[A-Za-z]{2,24}+(?![A-Za-z0-9-])",
         NULL, F_AT},
    [KTE_RX_CREDIT_CARD] = {"credit-card", "(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}+(?![0-9])",
                            kte_luhn_ok, F_DIGITS13},
    [KTE_RX_AWS_ACCESS_KEY_ID] = {"aws-access-key-id",
                                  "(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}"
                                  "(?![A-Z0-9])",
                                  NULL, F_AKEY},
    [KTE_RX_AWS_SECRET_KEY] = {"aws-secret-key",
                               "(?i)(?:aws_?secret_?(?:access_?)?key|secret_?access_?key)"
                               "[\"']?+\\s*+[:=]\\s*+[\"']?+\\K(?-i)[A-Za-z0-9/+=]{40}+"
                               "(?![A-Za-z0-9/+=])",
                               NULL, F_SECRET | F_KV},
    [KTE_RX_JWT] =
        {"jwt", "(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}+\\.eyJ[A-Za-z0-9_-]{4,}+\\.[A-Za-z0-9_-]*+",
         NULL, F_EYJ},
    [KTE_RX_BEARER_TOKEN] = {"bearer-token",
                             "(?i)(?<![A-Za-z0-9])bearer[ \\t]++\\K[A-Za-z0-9._~+/-]{8,}+=*+", NULL,
                             F_BEARER},
    [KTE_RX_IP_ADDRESS] =
        {"ip-address",
         "(?<![0-9A-Za-z.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.)"
         "{3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?![0-9A-Za-z]|\\.[0-9])"
         "|(?<![0-9A-Za-z:.])(?:[0-9A-Fa-f]{0,4}:){2,7}+"
         "(?:(?:[0-9]{1,3}\\.){3}[0-9]{1,3}|[0-9A-Fa-f]{1,4})?(?![0-9A-Za-z:]|\\.[0-9])",
         ip_ok, F_IP},
};

const char *kte_redact_rule_name(enum kte_redact_rule r)
{
    if (r < KTE_RX_CUSTOM)
        return builtins[r].name;
    return r == KTE_RX_CUSTOM ? "custom" : "unknown";
}

/* ---- levels and sampling ------------------------------------------------- */

enum kte_level kte_level_parse(const char *s, size_t n)
{
    static const struct {
        const char *name;
        enum kte_level level;
    } names[] = {
        {"TRACE", KTE_LEVEL_TRACE}, {"DEBUG", KTE_LEVEL_DEBUG},    {"INFO", KTE_LEVEL_INFO},
        {"WARN", KTE_LEVEL_WARN},   {"WARNING", KTE_LEVEL_WARN},   {"ERROR", KTE_LEVEL_ERROR},
        {"FATAL", KTE_LEVEL_FATAL}, {"CRITICAL", KTE_LEVEL_FATAL},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && !strncasecmp(s, names[i].name, n))
            return names[i].level;
    return KTE_LEVEL_NONE;
}

/* The tab-separated fields of a managed runtime's text line:
 *   Python: [LEVEL]\tTIMESTAMP\tREQUEST_ID\tMESSAGE
 *   Node.js: TIMESTAMP\tREQUEST_ID\tLEVEL\tMESSAGE
 * Anything else carries no level we know. */
static enum kte_level text_fields(const char *line, size_t n, const char **rid, size_t *rid_len)
{
    const char *f[4];
    size_t fl[4], nf = 0, start = 0;
    for (size_t i = 0; i <= n && nf < 4; i++)
        if (i == n || line[i] == '\t') {
            f[nf] = line + start;
            fl[nf++] = i - start;
            start = i + 1;
        }
    *rid = NULL;
    *rid_len = 0;
    if (nf >= 3 && fl[0] >= 3 && f[0][0] == '[' && f[0][fl[0] - 1] == ']') {
        *rid = f[2];
        *rid_len = fl[2];
        return kte_level_parse(f[0] + 1, fl[0] - 2);
    }
    if (nf >= 4 && fl[0] >= 10 && f[0][0] >= '0' && f[0][0] <= '9') {
        *rid = f[1];
        *rid_len = fl[1];
        return kte_level_parse(f[2], fl[2]);
    }
    return KTE_LEVEL_NONE;
}

enum kte_level kte_level_of_text(const char *line, size_t n)
{
    const char *rid;
    size_t rl;
    return text_fields(line, n, &rid, &rl);
}

static uint64_t hash_rid(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a finaliser to spread it */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static bool sample_keep_n(const char *rid, size_t n, double rate)
{
    if (rate >= 1.0 || n == 0) /* no invoke to decide for: kept */
        return true;
    return (double)(hash_rid(rid, n) >> 11) / 9007199254740992.0 < rate;
}

bool kte_sample_keep(const char *rid, double rate)
{
    return sample_keep_n(rid, strlen(rid), rate);
}

/* ---- JSON scanning over an event already validated by kte_event_parse ----- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at '"'; returns just past the closing quote, or NULL. A quote closes the
 * string when an even number of backslashes precede it (memchr: the message
 * of a log line is most of an event, and every rule scans past it). */
static const char *skip_string(const char *p, const char *end)
{
    const char *start = ++p;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            return NULL;
        const char *b = q;
        while (b > start && b[-1] == '\\')
            b--;
        if (!((q - b) & 1))
            return q + 1;
        p = q + 1;
    }
    return NULL;
}

static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
               *p != '\t' && *p != '\r')
            p++;
        return p;
    }
    int depth = 0;
    while (p < end) {
        if (*p == '"') {
            if (!(p = skip_string(p, end)))
                return NULL;
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if ((*p == '}' || *p == ']') && --depth == 0)
            return p + 1;
        p++;
    }
    return NULL;
}

/* Calls fn for every member of the object at p (key without quotes, raw). */
typedef bool (*member_fn)(void *ctx, const char *k, size_t kn, const char *v, const char *v_end);

static bool each_member(const char *p, const char *end, member_fn fn, void *ctx)
{
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return false;
    p = skip_ws(p + 1, end);
    while (p < end && *p == '"') {
        const char *k_end = skip_string(p, end);
        if (!k_end)
            return false;
        const char *v = skip_ws(k_end, end);
        if (v >= end || *v != ':')
            return false;
        v = skip_ws(v + 1, end);
        const char *v_end = skip_value(v, end);
        if (!v_end)
            return false;
        if (!fn(ctx, p + 1, (size_t)(k_end - p - 2), v, v_end))
            return true;
        p = skip_ws(v_end, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
    }
    return true;
}

struct find {
    const char *key;
    size_t kn;
    const char *v, *v_end;
};

static bool find_cb(void *ctx, const char *k, size_t kn, const char *v, const char *v_end)
{
    struct find *f = ctx;
    if (kn == f->kn && !memcmp(k, f->key, kn)) {
        f->v = v;
        f->v_end = v_end;
        return false;
    }
    return true;
}

static bool find_member(const char *obj, const char *end, const char *key, const char **v,
                        const char **v_end)
{
    struct find f = {key, strlen(key), NULL, NULL};
    each_member(obj, end, find_cb, &f);
    *v = f.v;
    *v_end = f.v_end;
    return f.v != NULL;
}

/* ---- JSON string decoding with a map back to the raw bytes ---------------- */

static int scratch_reserve(struct kte_rules_scratch *s, size_t n)
{
    if (n <= s->dec_cap)
        return 0;
    size_t cap = s->dec_cap ? s->dec_cap : 256;
    while (cap < n)
        cap *= 2;
    char *d = realloc(s->dec, cap);
    if (d)
        s->dec = d;
    size_t *a = realloc(s->src_s, cap * sizeof *a);
    if (a)
        s->src_s = a;
    size_t *b = realloc(s->src_e, cap * sizeof *b);
    if (b)
        s->src_e = b;
    if (!d || !a || !b)
        return -1;
    s->dec_cap = cap;
    return 0;
}

static int hex4(const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decodes the JSON string body raw[a, b) (no quotes) into s->dec; offsets in
 * the map are relative to raw. Returns the decoded length or -1. */
static long decode(struct kte_rules_scratch *s, const char *raw, size_t a, size_t b)
{
    if (scratch_reserve(s, b - a + 1))
        return -1;
    size_t n = 0, i = a;
    while (i < b) {
        size_t from = i;
        unsigned char out[4];
        int on = 0;
        if (raw[i] != '\\') {
            out[on++] = (unsigned char)raw[i++];
        } else if (i + 1 < b) {
            char c = raw[i + 1];
            i += 2;
            switch (c) {
            case 'n':
                out[on++] = '\n';
                break;
            case 't':
                out[on++] = '\t';
                break;
            case 'r':
                out[on++] = '\r';
                break;
            case 'b':
                out[on++] = '\b';
                break;
            case 'f':
                out[on++] = '\f';
                break;
            case 'u': {
                int cp = hex4(raw + i, raw + b);
                if (cp < 0)
                    return -1;
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 <= b && raw[i] == '\\' &&
                    raw[i + 1] == 'u') {
                    int lo = hex4(raw + i + 2, raw + b);
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                if (cp >= 0xD800 && cp <= 0xDFFF)
                    cp = 0xFFFD; /* a lone surrogate */
                if (cp < 0x80) {
                    out[on++] = (unsigned char)cp;
                } else if (cp < 0x800) {
                    out[on++] = (unsigned char)(0xC0 | (cp >> 6));
                    out[on++] = (unsigned char)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    out[on++] = (unsigned char)(0xE0 | (cp >> 12));
                    out[on++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    out[on++] = (unsigned char)(0x80 | (cp & 0x3F));
                } else {
                    out[on++] = (unsigned char)(0xF0 | (cp >> 18));
                    out[on++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                    out[on++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    out[on++] = (unsigned char)(0x80 | (cp & 0x3F));
                }
                break;
            }
            default:
                out[on++] = (unsigned char)c;
                break; /* \" \\ \/ */
            }
        } else {
            return -1;
        }
        for (int k = 0; k < on; k++) {
            s->dec[n] = (char)out[k];
            s->src_s[n] = from;
            s->src_e[n] = i;
            n++;
        }
    }
    return (long)n;
}

/* ---- matching ------------------------------------------------------------ */

static int add_span(struct kte_rules_scratch *s, size_t a, size_t b, const struct pattern *p)
{
    if (s->n_spans == s->spans_cap) {
        size_t cap = s->spans_cap ? s->spans_cap * 2 : 16;
        struct span *v = realloc(s->spans, cap * sizeof *v);
        if (!v)
            return -1;
        s->spans = v;
        s->spans_cap = cap;
    }
    s->spans[s->n_spans++] = (struct span){a, b, p};
    return 0;
}

/* 1: matched, 0: no match, -1: an error or the match limit. */
static int search(struct kte_rules_scratch *s, const pcre2_code *re, const char *sub, size_t n,
                  size_t from, size_t *a, size_t *b)
{
    int rc = pcre2_match(re, (PCRE2_SPTR)sub, n, from, 0, s->md, s->mctx);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0)
        return -1;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
    *a = ov[0];
    *b = ov[1] < ov[0] ? ov[0] : ov[1]; /* \K in a lookahead can put the start after the end */
    return 1;
}

/* Whether re matches sub; a limit or error counts as out->match_limit and
 * as no match. */
static bool matches(struct kte_rules_scratch *s, const pcre2_code *re, const char *sub, size_t n,
                    struct kte_rules_outcome *out)
{
    size_t a, b;
    int rc = search(s, re, sub, n, 0, &a, &b);
    if (rc < 0)
        out->match_limit = true;
    return rc == 1;
}

static int cmp_span(const void *x, const void *y)
{
    const struct span *a = x, *b = y;
    if (a->s != b->s)
        return a->s < b->s ? -1 : 1;
    return a->p < b->p ? -1 : a->p > b->p; /* the earlier rule names a tie */
}

static const struct pattern limit_pattern = {.rule = KTE_RX_KINDS,
                                             .marker = "[REDACTED:match-limit]"};

/* Redacts the JSON string whose body is raw[a, b). Nothing to replace: out
 * is left alone. Else appends raw[*done, a) (what lies before, unchanged)
 * and the redacted body to out, and sets *done to b: an event with nothing
 * to redact is never copied. Returns the number of spans replaced, -1 on no
 * memory. */
static long redact_string(const struct kte_rules *r, struct kte_rules_scratch *s, const char *raw,
                          size_t a, size_t b, size_t *done, struct kte_buf *out,
                          struct kte_rules_outcome *oc)
{
    /* Without a backslash the string is its own decoding, byte i at raw
     * offset a + i: most log lines, spared the copy and the map. */
    bool plain = !memchr(raw + a, '\\', b - a);
    long n = plain ? (long)(b - a) : decode(s, raw, a, b);
    if (n < 0)
        return 0; /* not ours to fix */
    s->n_spans = 0;
    const char *d = plain ? raw + a : s->dec;
    bool failed = false;
    unsigned have = r->any_need ? features(d, (size_t)n) : 0;
    for (size_t i = 0; i < r->n_redact && !failed; i++) {
        const struct pattern *p = &r->redact[i];
        if (p->need & ~have)
            continue;
        size_t from = 0, ms, me;
        int rc;
        while (from <= (size_t)n && (rc = search(s, p->code, d, (size_t)n, from, &ms, &me)) != 0) {
            if (rc < 0) {
                failed = true; /* fail closed: the whole string goes */
                break;
            }
            if (me > ms && (!p->valid || p->valid(d + ms, me - ms)) && add_span(s, ms, me, p))
                return -1;
            from = me > from ? me : from + 1;
        }
    }
    if (failed) {
        oc->match_limit = true;
        s->n_spans = 0;
        if (n > 0 && add_span(s, 0, (size_t)n, &limit_pattern))
            return -1;
    }
    if (!s->n_spans)
        return 0;
    if (kte_buf_append(out, raw + *done, a - *done))
        return -1;
    qsort(s->spans, s->n_spans, sizeof *s->spans, cmp_span);
    size_t cursor = a, kept = 0, last_end = 0;
    for (size_t i = 0; i < s->n_spans; i++) {
        struct span sp = s->spans[i];
        if (kept && sp.s < last_end) {
            /* Overlaps the previous span: extend it (nothing of a secret stays). */
            if (sp.e > last_end) {
                last_end = sp.e;
                cursor = plain ? a + last_end : s->src_e[last_end - 1];
            }
            continue;
        }
        /* Whole UTF-8 characters only, so the output stays valid UTF-8. */
        while (sp.s > 0 && ((unsigned char)d[sp.s] & 0xC0) == 0x80)
            sp.s--;
        while (sp.e < (size_t)n && ((unsigned char)d[sp.e] & 0xC0) == 0x80)
            sp.e++;
        size_t ra = plain ? a + sp.s : s->src_s[sp.s];
        size_t rb = plain ? a + sp.e : s->src_e[sp.e - 1];
        if (ra < cursor)
            ra = cursor;
        if (kte_buf_append(out, raw + cursor, ra - cursor) || kte_buf_puts(out, sp.p->marker))
            return -1;
        if (sp.p->rule < KTE_RX_KINDS)
            oc->redactions[sp.p->rule]++;
        cursor = rb > ra ? rb : ra;
        last_end = sp.e;
        kept++;
    }
    if (kte_buf_append(out, raw + cursor, b - cursor))
        return -1;
    *done = b;
    return (long)kept;
}

struct redact_ctx {
    const struct kte_rules *r;
    struct kte_rules_scratch *s;
    const char *raw;
    size_t cursor; /* raw[0, cursor) is in out, as redacted */
    struct kte_buf *out;
    struct kte_rules_outcome *oc;
    long total;
    bool oom;
};

static bool redact_value(struct redact_ctx *c, const char *v, const char *v_end);

static bool redact_member(void *ctx, const char *k, size_t kn, const char *v, const char *v_end)
{
    (void)k;
    (void)kn;
    return redact_value(ctx, v, v_end);
}

/* Redacts every string value (not keys) in the JSON value [v, v_end). */
static bool redact_value(struct redact_ctx *c, const char *v, const char *v_end)
{
    if (c->oom)
        return false;
    if (*v == '"') {
        size_t a = (size_t)(v + 1 - c->raw), b = (size_t)(v_end - 1 - c->raw);
        long k = redact_string(c->r, c->s, c->raw, a, b, &c->cursor, c->out, c->oc);
        if (k < 0) {
            c->oom = true;
            return false;
        }
        c->total += k;
    } else if (*v == '{') {
        each_member(v, v_end, redact_member, c);
    } else if (*v == '[') {
        const char *p = skip_ws(v + 1, v_end);
        while (p < v_end && *p != ']') {
            const char *e = skip_value(p, v_end);
            if (!e || !redact_value(c, p, e))
                break;
            p = skip_ws(e, v_end);
            if (p < v_end && *p == ',')
                p = skip_ws(p + 1, v_end);
        }
    }
    return !c->oom;
}

/* ---- applying the rules -------------------------------------------------- */

static bool type_excluded(const struct kte_rules *r, const char *type)
{
    for (size_t i = 0; i < r->n_exclude_types; i++) {
        const char *x = r->exclude_types[i];
        size_t n = strlen(x);
        if (!strcmp(type, x) || (!strchr(x, '.') && !strncmp(type, x, n) && type[n] == '.'))
            return true;
    }
    return false;
}

void kte_rules_apply(const struct kte_rules *r, struct kte_rules_scratch *s,
                     const struct kte_event_view *ev, const char *rid, struct kte_buf *out,
                     struct kte_rules_outcome *oc)
{
    memset(oc, 0, sizeof *oc);
    if (r->n_exclude_types && type_excluded(r, ev->type)) {
        oc->verdict = KTE_VERDICT_FILTERED;
        return;
    }
    const char *end = ev->raw + ev->raw_len;
    bool is_log = !strcmp(ev->type, "function") || !strcmp(ev->type, "extension");
    bool is_platform = !strncmp(ev->type, "platform.", 9);
    const char *rec = NULL, *rec_end = NULL;
    find_member(ev->raw, end, "record", &rec, &rec_end);

    /* The log line's level, request id and message. */
    enum kte_level level = KTE_LEVEL_NONE;
    const char *ev_rid = ev->request_id;
    size_t ev_rid_len = strlen(ev_rid);
    const char *msg = NULL;
    size_t msg_len = 0;
    /* Redaction alone needs neither level nor request id nor message. */
    bool need_meta =
        r->min_level != KTE_LEVEL_NONE || r->sample_rate < 1.0 || r->include_re || r->exclude_re;
    if (!need_meta) {
        /* straight to redaction */
    } else if (is_log && rec && *rec == '"') {
        long n = decode(s, ev->raw, (size_t)(rec + 1 - ev->raw), (size_t)(rec_end - 1 - ev->raw));
        if (n >= 0) {
            const char *lr;
            size_t lrl;
            level = text_fields(s->dec, (size_t)n, &lr, &lrl);
            if (!ev_rid_len && lrl > 0 && lrl < KTE_EVENT_RID_MAX) {
                ev_rid = lr; /* points into s->dec: used before the next decode */
                ev_rid_len = lrl;
            }
            msg = s->dec;
            msg_len = (size_t)n;
        }
    } else if (is_log && rec && *rec == '{') {
        const char *lv, *lv_end;
        if (find_member(rec, rec_end, "level", &lv, &lv_end) && *lv == '"')
            level = kte_level_parse(lv + 1, (size_t)(lv_end - lv - 2));
    }
    if (!ev_rid_len && rid) {
        ev_rid = rid;
        ev_rid_len = strlen(rid);
    }

    if (r->sample_rate < 1.0 && (is_log || (is_platform && r->sample_platform)) &&
        level < KTE_LEVEL_ERROR && !sample_keep_n(ev_rid, ev_rid_len, r->sample_rate)) {
        oc->verdict = KTE_VERDICT_SAMPLED_OUT;
        return;
    }
    if (is_log && r->min_level != KTE_LEVEL_NONE && level != KTE_LEVEL_NONE &&
        level < r->min_level) {
        oc->verdict = KTE_VERDICT_FILTERED;
        return;
    }
    if (is_log && (r->include_re || r->exclude_re)) {
        if (!msg && rec && *rec == '{') {
            const char *m, *m_end;
            if (find_member(rec, rec_end, "message", &m, &m_end) && *m == '"') {
                long n =
                    decode(s, ev->raw, (size_t)(m + 1 - ev->raw), (size_t)(m_end - 1 - ev->raw));
                if (n >= 0) {
                    msg = s->dec;
                    msg_len = (size_t)n;
                }
            }
            if (!msg) {
                msg = rec;
                msg_len = (size_t)(rec_end - rec);
            }
        }
        if (msg) {
            if (r->include_re && !matches(s, r->include_re, msg, msg_len, oc)) {
                oc->verdict = oc->match_limit ? KTE_VERDICT_KEEP : KTE_VERDICT_FILTERED;
                if (oc->verdict)
                    return;
            }
            if (r->exclude_re && matches(s, r->exclude_re, msg, msg_len, oc)) {
                oc->verdict = KTE_VERDICT_FILTERED;
                return;
            }
        }
    }
    if (!r->n_redact || !is_log || !rec || (*rec != '"' && *rec != '{' && *rec != '['))
        return;
    kte_buf_reset(out);
    struct redact_ctx c = {r, s, ev->raw, 0, out, oc, 0, false};
    redact_value(&c, rec, rec_end);
    if (c.oom || c.total == 0) {
        /* Out of memory: the event must not leave unredacted. */
        if (c.oom)
            oc->verdict = KTE_VERDICT_FILTERED;
        kte_buf_reset(out);
        return;
    }
    if (kte_buf_append(out, ev->raw + c.cursor, ev->raw_len - c.cursor)) {
        oc->verdict = KTE_VERDICT_FILTERED;
        return;
    }
    oc->redacted = true;
}

/* ---- scratch ------------------------------------------------------------- */

struct kte_rules_scratch *kte_rules_scratch_new(const struct kte_rules *r)
{
    (void)r;
    struct kte_rules_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->md = pcre2_match_data_create(1, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    s->jit = pcre2_jit_stack_create(32 * 1024, JIT_STACK_MAX, NULL);
    if (!s->md || !s->mctx || !s->jit) {
        kte_rules_scratch_free(s);
        return NULL;
    }
    pcre2_set_match_limit(s->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, DEPTH_LIMIT);
    pcre2_set_heap_limit(s->mctx, HEAP_LIMIT_KB);
    pcre2_jit_stack_assign(s->mctx, NULL, s->jit);
    return s;
}

void kte_rules_scratch_free(struct kte_rules_scratch *s)
{
    if (!s)
        return;
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    pcre2_jit_stack_free(s->jit);
    free(s->dec);
    free(s->src_s);
    free(s->src_e);
    free(s->spans);
    free(s);
}

/* ---- loading ------------------------------------------------------------- */

/* Strings from a variable or the rules file; name[i] is set only for a
 * custom redaction given as {"name": ..., "pattern": ...} (else NULL). */
struct strlist {
    char *v[MAX_PATTERNS];
    char *name[MAX_PATTERNS];
    size_t n;
};

static void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
        free(l->name[i]);
    }
    l->n = 0;
}

static int strlist_add(struct strlist *l, const char *s, size_t n)
{
    if (l->n == MAX_PATTERNS)
        return -1;
    char *c = malloc(n + 1);
    if (!c)
        return -1;
    memcpy(c, s, n);
    c[n] = '\0';
    l->name[l->n] = NULL;
    l->v[l->n++] = c;
    return 0;
}

/* Comma-separated names, blanks around them ignored. */
static int split_commas(const char *v, struct strlist *l)
{
    while (*v) {
        size_t n = strcspn(v, ",");
        const char *a = v, *b = v + n;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a && strlist_add(l, a, (size_t)(b - a)))
            return -1;
        v += n + (v[n] == ',');
    }
    return 0;
}

__attribute__((format(printf, 3, 4))) static int efail(char *err, size_t errlen, const char *fmt,
                                                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A custom redaction given as an object: {"name": NAME, "pattern": PATTERN},
 * both strings, nothing else. */
static int named_pattern(yajl_val e, size_t i, struct strlist *l, char *err, size_t errlen)
{
    const char *name = NULL, *pattern = NULL;
    for (size_t k = 0; k < e->u.object.len; k++) {
        const char *key = e->u.object.keys[k];
        yajl_val v = e->u.object.values[k];
        const char **dst = !strcmp(key, "name") ? &name : !strcmp(key, "pattern") ? &pattern : NULL;
        if (!dst)
            return efail(err, errlen,
                         "element %zu: key \"%s\" is not understood; use \"name\" and "
                         "\"pattern\"",
                         i, key);
        if (!YAJL_IS_STRING(v))
            return efail(err, errlen, "element %zu: \"%s\" is not a string", i, key);
        *dst = v->u.string;
    }
    if (!name || !pattern)
        return efail(err, errlen, "element %zu: an object needs both \"name\" and \"pattern\"", i);
    char *n = strdup(name);
    if (!n || strlist_add(l, pattern, strlen(pattern))) {
        free(n);
        return efail(err, errlen, "more than %d elements", MAX_PATTERNS);
    }
    l->name[l->n - 1] = n;
    return 0;
}

/* A JSON array of strings; with named, custom redactions, whose elements
 * may also be {"name": ..., "pattern": ...}. */
static int json_list(yajl_val t, bool named, struct strlist *l, char *err, size_t errlen)
{
    if (!YAJL_IS_ARRAY(t))
        return efail(err, errlen, "another JSON value");
    for (size_t i = 0; i < t->u.array.len; i++) {
        yajl_val e = t->u.array.values[i];
        if (named && YAJL_IS_OBJECT(e)) {
            if (named_pattern(e, i + 1, l, err, errlen))
                return -1;
        } else if (!YAJL_IS_STRING(e)) {
            return efail(err, errlen, "element %zu is not a string%s", i + 1,
                         named ? " nor an object {\"name\": ..., \"pattern\": ...}" : "");
        } else if (strlist_add(l, e->u.string, strlen(e->u.string))) {
            return efail(err, errlen, "more than %d elements", MAX_PATTERNS);
        }
    }
    return 0;
}

static const char *const known_types[] = {
    "platform",
    "function",
    "extension",
    "platform.initStart",
    "platform.initRuntimeDone",
    "platform.initReport",
    "platform.start",
    "platform.runtimeDone",
    "platform.report",
    "platform.restoreStart",
    "platform.restoreRuntimeDone",
    "platform.restoreReport",
    "platform.extension",
    "platform.telemetrySubscription",
    "platform.logsDropped",
    NULL,
};

struct loader {
    struct kte_rules *r;
    char *msg;
    size_t msg_len;
    bool any;
};

__attribute__((format(printf, 2, 3))) static int lfail(struct loader *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->msg, L->msg_len, fmt, ap);
    va_end(ap);
    return -1;
}

static pcre2_code *compile(struct loader *L, const char *var, const char *what, const char *re)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (!c) {
        PCRE2_UCHAR e[160];
        pcre2_get_error_message(code, e, sizeof e);
        lfail(L, "%s: %s '%s' is not a valid PCRE2 regex: %s at offset %zu", var, what, re,
              (const char *)e, (size_t)off);
        return NULL;
    }
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); /* without JIT (unsupported CPU): interpreted */
    return c;
}

static int set_types(struct loader *L, const char *var, const struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        bool known = false;
        for (const char *const *k = known_types; *k; k++)
            known |= !strcmp(*k, l->v[i]);
        if (!known)
            return lfail(L,
                         "%s names unknown event type '%s'; use platform, function, extension "
                         "or a platform.* type such as platform.start",
                         var, l->v[i]);
        if (L->r->n_exclude_types == MAX_TYPES)
            return lfail(L, "%s: more than %d types", var, MAX_TYPES);
        snprintf(L->r->exclude_types[L->r->n_exclude_types++], KTE_EVENT_TYPE_MAX, "%s", l->v[i]);
    }
    L->any |= l->n > 0;
    return 0;
}

static int set_level(struct loader *L, const char *var, const char *v)
{
    enum kte_level lv = kte_level_parse(v, strlen(v));
    if (lv == KTE_LEVEL_NONE)
        return lfail(L, "%s='%s' is not a level; use TRACE, DEBUG, INFO, WARN, ERROR or FATAL", var,
                     v);
    L->r->min_level = lv;
    L->any = true;
    return 0;
}

static int set_rate(struct loader *L, const char *var, const char *v)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < 0.0 || x > 1.0)
        return lfail(L,
                     "%s='%s' is not a rate; use a number from 0 to 1, e.g. 0.1 to keep a "
                     "tenth of the invokes",
                     var, v);
    L->r->sample_rate = x;
    L->any |= x < 1.0;
    return 0;
}

static int set_redact(struct loader *L, const char *var, const struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        bool all = !strcmp(l->v[i], "all");
        bool found = all;
        for (int b = 0; b < KTE_RX_CUSTOM; b++) {
            if (!all && strcmp(l->v[i], builtins[b].name))
                continue;
            found = true;
            bool have = false;
            for (size_t k = 0; k < L->r->n_redact; k++)
                have |= L->r->redact[k].rule == (enum kte_redact_rule)b;
            if (have)
                continue;
            struct pattern *p = &L->r->redact[L->r->n_redact];
            if (!(p->code = compile(L, var, builtins[b].name, builtins[b].re)))
                return -1;
            L->r->n_redact++;
            p->rule = (enum kte_redact_rule)b;
            p->valid = builtins[b].valid;
            p->need = builtins[b].need;
            L->r->any_need |= p->need;
            snprintf(p->name, sizeof p->name, "%s", builtins[b].name);
            snprintf(p->marker, sizeof p->marker, "[REDACTED:%s]", builtins[b].name);
        }
        if (!found)
            return lfail(L,
                         "%s names unknown rule '%s'; use email, credit-card, aws-access-key-id, "
                         "aws-secret-key, jwt, bearer-token, ip-address or all",
                         var, l->v[i]);
    }
    L->any |= l->n > 0;
    return 0;
}

/* Names every custom rule's marker may not take: the built-ins', and those
 * the engine writes itself. */
static const char *reserved_name(const char *name)
{
    for (int b = 0; b < KTE_RX_CUSTOM; b++)
        if (!strcmp(name, builtins[b].name))
            return "is a built-in rule's name (KTE_REDACT enables the built-in)";
    if (!strcmp(name, "all"))
        return "is reserved (KTE_REDACT=all names every built-in)";
    if (!strcmp(name, "custom"))
        return "is reserved (it marks custom patterns given without a name)";
    if (!strcmp(name, "match-limit"))
        return "is reserved (it marks strings a pattern gave up on)";
    return NULL;
}

static int check_name(struct loader *L, const char *var, size_t i, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MAX_NAME)
        return lfail(L, "%s: pattern %zu name '%s' must be 1 to %d characters long", var, i, name,
                     MAX_NAME);
    size_t bad = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
    if (bad < n)
        return lfail(L,
                     "%s: pattern %zu name '%s' has '%c' at offset %zu; use only A-Z, a-z, 0-9, "
                     "'_', '.' and '-'",
                     var, i, name, name[bad], bad);
    const char *why = reserved_name(name);
    if (why)
        return lfail(L, "%s: pattern %zu name '%s' %s; choose another name", var, i, name, why);
    for (size_t k = 0; k < L->r->n_redact; k++)
        if (L->r->redact[k].rule == KTE_RX_CUSTOM && !strcmp(L->r->redact[k].name, name))
            return lfail(L,
                         "%s: pattern %zu name '%s' is already used by another pattern (names "
                         "are unique across KTE_RULES_FILE and KTE_REDACT_REGEX)",
                         var, i, name);
    return 0;
}

static int set_custom(struct loader *L, const char *var, const struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (L->r->n_redact == MAX_PATTERNS)
            return lfail(L, "%s: more than %d redaction rules", var, MAX_PATTERNS);
        const char *name = l->name[i];
        if (name && check_name(L, var, i + 1, name))
            return -1;
        char what[MAX_NAME + 40];
        if (name)
            snprintf(what, sizeof what, "pattern %zu ('%s')", i + 1, name);
        else
            snprintf(what, sizeof what, "pattern %zu", i + 1);
        struct pattern *p = &L->r->redact[L->r->n_redact];
        if (!(p->code = compile(L, var, what, l->v[i])))
            return -1;
        L->r->n_redact++;
        p->rule = KTE_RX_CUSTOM;
        if (!name)
            name = "custom";
        snprintf(p->name, sizeof p->name, "%s", name);
        snprintf(p->marker, sizeof p->marker, "[REDACTED:%s]", name);
    }
    L->any |= l->n > 0;
    return 0;
}

static int set_filter_re(struct loader *L, const char *var, const char *v, pcre2_code **dst)
{
    pcre2_code_free(*dst);
    *dst = compile(L, var, "pattern", v);
    L->any = true;
    return *dst ? 0 : -1;
}

static bool truthy(const char *v)
{
    return !strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes");
}

/* KTE_RULES_FILE: a JSON object (docs/rules.md). Variables set as well
 * add to its lists and override its single values. */
static int load_file(struct loader *L, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return lfail(L, "KTE_RULES_FILE='%s' cannot be read: %s", path, strerror(errno));
    char *text = malloc(1048576 + 1);
    size_t n = text ? fread(text, 1, 1048576 + 1, f) : 0;
    fclose(f);
    if (!text)
        return lfail(L, "KTE_RULES_FILE: out of memory");
    if (n > 1048576) {
        free(text);
        return lfail(L, "KTE_RULES_FILE='%s' is larger than 1 MiB", path);
    }
    text[n] = '\0';
    char err[200];
    yajl_val t = yajl_tree_parse(text, err, sizeof err);
    free(text);
    if (!t || !YAJL_IS_OBJECT(t)) {
        yajl_tree_free(t);
        return lfail(L, "KTE_RULES_FILE='%s' is not a JSON object: %s", path,
                     t ? "another JSON value" : err);
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < t->u.object.len; i++) {
        const char *k = t->u.object.keys[i];
        yajl_val v = t->u.object.values[i];
        char var[96];
        snprintf(var, sizeof var, "KTE_RULES_FILE key \"%s\"", k);
        struct strlist l = {.n = 0};
        bool list_key =
            !strcmp(k, "excludeTypes") || !strcmp(k, "redact") || !strcmp(k, "redactRegex");
        if (list_key) {
            bool named = !strcmp(k, "redactRegex");
            if (json_list(v, named, &l, err, sizeof err))
                rc = lfail(L, "%s must be an array of %s: %s", var, named ? "patterns" : "strings",
                           err);
            if (rc == 0)
                rc = !strcmp(k, "excludeTypes") ? set_types(L, var, &l)
                     : !strcmp(k, "redact")     ? set_redact(L, var, &l)
                                                : set_custom(L, var, &l);
            strlist_free(&l);
        } else if (!strcmp(k, "sampleRate") && YAJL_IS_NUMBER(v)) {
            char num[64];
            snprintf(num, sizeof num, "%.17g", YAJL_GET_DOUBLE(v));
            rc = set_rate(L, var, num);
        } else if (!strcmp(k, "samplePlatform") && (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))) {
            L->r->sample_platform = YAJL_IS_TRUE(v);
        } else if (YAJL_IS_STRING(v) && !strcmp(k, "minLevel")) {
            rc = set_level(L, var, v->u.string);
        } else if (YAJL_IS_STRING(v) && !strcmp(k, "includeRegex")) {
            rc = set_filter_re(L, var, v->u.string, &L->r->include_re);
        } else if (YAJL_IS_STRING(v) && !strcmp(k, "excludeRegex")) {
            rc = set_filter_re(L, var, v->u.string, &L->r->exclude_re);
        } else {
            rc = lfail(L,
                       "%s is not understood; use excludeTypes, minLevel, includeRegex, "
                       "excludeRegex, sampleRate (number), samplePlatform (boolean), redact, "
                       "redactRegex",
                       var);
        }
    }
    yajl_tree_free(t);
    return rc;
}

int kte_rules_load(struct kte_rules **out, kte_rules_getenv_fn get, void *ctx, char *msg,
                   size_t msg_len)
{
    *out = NULL;
    struct kte_rules *r = calloc(1, sizeof *r);
    if (!r)
        return snprintf(msg, msg_len, "out of memory"), -1;
    r->sample_rate = 1.0;
    struct loader L = {r, msg, msg_len, false};
#define GET(name) ((v = get(name, ctx)) && *v)
    const char *v;
    struct strlist l = {.n = 0};
    int rc = 0;
    if (GET("KTE_RULES_FILE"))
        rc = load_file(&L, v);
    if (rc == 0 && GET("KTE_EXCLUDE_TYPES")) {
        rc = split_commas(v, &l) ? lfail(&L, "KTE_EXCLUDE_TYPES: too many types")
                                 : set_types(&L, "KTE_EXCLUDE_TYPES", &l);
        strlist_free(&l);
    }
    if (rc == 0 && GET("KTE_MIN_LEVEL"))
        rc = set_level(&L, "KTE_MIN_LEVEL", v);
    if (rc == 0 && GET("KTE_INCLUDE_REGEX"))
        rc = set_filter_re(&L, "KTE_INCLUDE_REGEX", v, &r->include_re);
    if (rc == 0 && GET("KTE_EXCLUDE_REGEX"))
        rc = set_filter_re(&L, "KTE_EXCLUDE_REGEX", v, &r->exclude_re);
    if (rc == 0 && GET("KTE_SAMPLE_RATE"))
        rc = set_rate(&L, "KTE_SAMPLE_RATE", v);
    if (rc == 0 && GET("KTE_SAMPLE_PLATFORM"))
        r->sample_platform = truthy(v);
    if (rc == 0 && GET("KTE_REDACT")) {
        rc = split_commas(v, &l) ? lfail(&L, "KTE_REDACT: too many rules")
                                 : set_redact(&L, "KTE_REDACT", &l);
        strlist_free(&l);
    }
    if (rc == 0 && GET("KTE_REDACT_REGEX")) {
        const char *t = v;
        while (*t == ' ')
            t++;
        char err[200];
        if (*t == '[') {
            yajl_val j = yajl_tree_parse(t, err, sizeof err);
            if (!j || json_list(j, true, &l, err, sizeof err))
                rc = lfail(&L,
                           "KTE_REDACT_REGEX starts with '[' but is not a JSON array of "
                           "patterns: %s",
                           err);
            yajl_tree_free(j);
        } else if (strlist_add(&l, v, strlen(v))) {
            rc = lfail(&L, "KTE_REDACT_REGEX: out of memory");
        }
        if (rc == 0)
            rc = set_custom(&L, "KTE_REDACT_REGEX", &l);
        strlist_free(&l);
    }
#undef GET
    if (rc != 0 || !L.any) {
        kte_rules_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void kte_rules_free(struct kte_rules *r)
{
    if (!r)
        return;
    pcre2_code_free(r->include_re);
    pcre2_code_free(r->exclude_re);
    for (size_t i = 0; i < r->n_redact; i++)
        pcre2_code_free(r->redact[i].code);
    free(r);
}
