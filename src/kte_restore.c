#include "kte_restore.h"

#include <string.h>

enum { SEEN_INIT_START = 1, SEEN_INIT_RUNTIME_DONE = 2, SEEN_INIT_REPORT = 4 };

void kte_restore_init(struct kte_restore *r, bool snapstart)
{
    memset(r, 0, sizeof *r);
    r->snapstart = snapstart;
}

void kte_restore_arm(struct kte_restore *r)
{
    r->armed = r->snapstart;
}

static void begin(struct kte_restore *r)
{
    r->restores++;
    r->in_restore = true;
    r->seen = 0;
}

/* The bit of an init event whose repetition means a re-delivery. */
static unsigned init_bit(const char *type)
{
    if (!strcmp(type, "platform.initStart"))
        return SEEN_INIT_START;
    if (!strcmp(type, "platform.initRuntimeDone"))
        return SEEN_INIT_RUNTIME_DONE;
    if (!strcmp(type, "platform.initReport"))
        return SEEN_INIT_REPORT;
    return 0;
}

/* Events that only an init phase produces: in a restored environment they
 * can only be the snapshot's, delivered again. */
static bool init_phase_event(const char *type)
{
    return init_bit(type) || !strcmp(type, "platform.extension") ||
           !strcmp(type, "platform.telemetrySubscription");
}

bool kte_restore_on_event(struct kte_restore *r, const char *type, bool *redelivered)
{
    *redelivered = false;
    if (!r->snapstart)
        return false;
    unsigned bit = init_bit(type);
    bool begins = false;
    if (r->armed && !r->in_restore &&
        (!strcmp(type, "platform.restoreStart") || (bit && (r->seen & bit)))) {
        begin(r);
        begins = true;
    }
    r->seen |= bit;
    if (r->restores && init_phase_event(type))
        *redelivered = true;
    if (r->in_restore && !strcmp(type, "platform.start"))
        r->in_restore = false;
    return begins;
}

bool kte_restore_on_invoke(struct kte_restore *r)
{
    if (!r->armed || r->invoked)
        return false;
    r->invoked = true;
    if (r->restores)
        return false; /* the telemetry told us first */
    begin(r);
    return true;
}
