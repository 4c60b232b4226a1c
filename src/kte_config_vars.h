/* The one list of every KTE_* variable the extension reads (name and a
 * one-line help), and the check that finds unknown KTE_* names in an
 * environment with the closest known name: a typo (KTE_STREM_NAME) or an
 * option of a newer version is warned about at start instead of being
 * ignored silently. README's configuration table is checked against this
 * list by tests/unit/test_config_vars.c. */
#ifndef KTE_CONFIG_VARS_H
#define KTE_CONFIG_VARS_H

#include <stddef.h>

struct kte_config_var {
    const char *name;
    const char *help;
};

/* Every variable, in the order of README's configuration table. */
extern const struct kte_config_var kte_config_vars[];
extern const size_t kte_config_vars_count;

/* The entry for name (name_len bytes, not necessarily NUL-terminated), or NULL. */
const struct kte_config_var *kte_config_var_find(const char *name, size_t name_len);

/* The known name closest to name (optimal string alignment distance: one
 * insertion, deletion, substitution or swap of neighbours each cost 1), or
 * NULL when none is close enough to be a plausible typo. */
const char *kte_config_var_closest(const char *name, size_t name_len);

/* Called for each unknown KTE_* variable: its name (not NUL-terminated) and
 * the closest known name or NULL. */
typedef void (*kte_unknown_var_fn)(const char *name, size_t name_len, const char *closest,
                                   void *ctx);

/* Scans envp ("NAME=value" strings, NULL-terminated) for KTE_* names that are
 * not in the list; calls fn for each and returns how many there were. Pure:
 * no output of its own. */
size_t kte_config_vars_check(char *const *envp, kte_unknown_var_fn fn, void *ctx);

/* At start: one warning (KTE_WARN) per unknown KTE_* variable in envp, naming
 * the closest known name; never an error. Returns how many there were. */
size_t kte_config_vars_warn_unknown(char *const *envp);

#endif
