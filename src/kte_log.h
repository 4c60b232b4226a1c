/* Leveled logging to stderr. The extension's output comes back to it as
 * `extension` telemetry, so callers log per state change, never per event. */
#ifndef KTE_LOG_H
#define KTE_LOG_H

enum kte_log_level { KTE_LOG_ERROR = 0, KTE_LOG_WARN, KTE_LOG_INFO, KTE_LOG_DEBUG };

void kte_log_set_level(enum kte_log_level level);
/* Parses "error|warn|info|debug" (case-insensitive); -1 when unknown. */
int kte_log_parse_level(const char *s, enum kte_log_level *out);
void kte_log(enum kte_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define KTE_ERROR(...) kte_log(KTE_LOG_ERROR, __VA_ARGS__)
#define KTE_WARN(...)  kte_log(KTE_LOG_WARN, __VA_ARGS__)
#define KTE_INFO(...)  kte_log(KTE_LOG_INFO, __VA_ARGS__)
#define KTE_DEBUG(...) kte_log(KTE_LOG_DEBUG, __VA_ARGS__)

#endif
