#include "kte_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

/* Process-wide: set once from the configuration before any thread starts. */
static enum kte_log_level g_level = KTE_LOG_WARN;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void kte_log_set_level(enum kte_log_level level)
{
    g_level = level;
}

int kte_log_parse_level(const char *s, enum kte_log_level *out)
{
    for (int i = KTE_LOG_ERROR; i <= KTE_LOG_DEBUG; i++) {
        if (strcasecmp(s, level_names[i]) == 0 ||
            (i == KTE_LOG_WARN && !strcasecmp(s, "warning"))) {
            *out = (enum kte_log_level)i;
            return 0;
        }
    }
    return -1;
}

void kte_log(enum kte_log_level level, const char *fmt, ...)
{
    if (level > g_level)
        return;
    /* One fprintf per line so concurrent threads never interleave a line. */
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[kinesis-telemetry-extension] %s %s\n", level_names[level], line);
}
