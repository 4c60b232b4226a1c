/* Processing rules (docs/rules.md): filter, sample and redact one Telemetry
 * event before it becomes a record. Compiled once at start from the KTE_*
 * rule variables; applying them is a pure function of the rules and one
 * event, given a scratch area owned by the caller (one per thread). */
#ifndef KTE_RULES_H
#define KTE_RULES_H

#include "kte_buf.h"
#include "kte_event.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Redaction rules, counted per rule; every custom regex counts as CUSTOM,
 * named or not (its marker names it: [REDACTED:<name>], docs/rules.md). */
enum kte_redact_rule {
    KTE_RX_EMAIL = 0,
    KTE_RX_CREDIT_CARD,
    KTE_RX_AWS_ACCESS_KEY_ID,
    KTE_RX_AWS_SECRET_KEY,
    KTE_RX_JWT,
    KTE_RX_BEARER_TOKEN,
    KTE_RX_IP_ADDRESS,
    KTE_RX_CUSTOM,
    KTE_RX_KINDS
};

enum kte_verdict {
    KTE_VERDICT_KEEP = 0,
    KTE_VERDICT_FILTERED,    /* by type, level or regex */
    KTE_VERDICT_SAMPLED_OUT, /* KTE_SAMPLE_RATE */
};

/* Levels in order; KTE_LEVEL_NONE: the line carries no level we know. */
enum kte_level {
    KTE_LEVEL_NONE = 0,
    KTE_LEVEL_TRACE,
    KTE_LEVEL_DEBUG,
    KTE_LEVEL_INFO,
    KTE_LEVEL_WARN,
    KTE_LEVEL_ERROR,
    KTE_LEVEL_FATAL,
};

struct kte_rules;

/* What applying the rules to one event did. */
struct kte_rules_outcome {
    enum kte_verdict verdict;
    bool redacted;                     /* out holds the rewritten event */
    uint32_t redactions[KTE_RX_KINDS]; /* spans replaced, per rule */
    bool match_limit;                  /* a regex hit its match limit on this event */
};

/* Per-thread working memory (PCRE2 match data, decoded strings). */
struct kte_rules_scratch;
struct kte_rules_scratch *kte_rules_scratch_new(const struct kte_rules *r);
void kte_rules_scratch_free(struct kte_rules_scratch *s);

typedef const char *(*kte_rules_getenv_fn)(const char *name, void *ctx);

/* Compiles the rules from KTE_EXCLUDE_TYPES, KTE_MIN_LEVEL,
 * KTE_INCLUDE_REGEX, KTE_EXCLUDE_REGEX, KTE_SAMPLE_RATE, KTE_SAMPLE_PLATFORM,
 * KTE_REDACT, KTE_REDACT_REGEX and KTE_RULES_FILE. Returns 0 with *out NULL
 * when no rule is set (nothing to do per event), 0 with *out set, or -1 with
 * a message naming the variable, the rule and the problem. */
int kte_rules_load(struct kte_rules **out, kte_rules_getenv_fn get, void *ctx, char *msg,
                   size_t msg_len);
void kte_rules_free(struct kte_rules *r);

/* Applies the rules to ev. rid: the invoke current when the event arrived,
 * used for sampling when the event names no request id. When outcome->redacted,
 * out (reset first) holds the event's JSON text with the redacted spans
 * replaced and every other byte as received. */
void kte_rules_apply(const struct kte_rules *r, struct kte_rules_scratch *s,
                     const struct kte_event_view *ev, const char *rid, struct kte_buf *out,
                     struct kte_rules_outcome *outcome);

/* Pure helpers, exposed for tests and the bench. */
const char *kte_redact_rule_name(enum kte_redact_rule r);
bool kte_luhn_ok(const char *s, size_t n); /* digits, ' ' and '-' only */
enum kte_level kte_level_of_text(const char *line, size_t n);
enum kte_level kte_level_parse(const char *s, size_t n);
/* Whether an invoke with this request id is kept at this rate. */
bool kte_sample_keep(const char *rid, double rate);

#endif
