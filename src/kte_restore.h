/* Telling a SnapStart restore apart, as a pure state machine (no threads,
 * no clock), so that the rules are tested on their own.
 *
 * What an external extension is given (docs/lifecycle.md has the sources):
 * the Extensions API has no RESTORE event for extensions; the extension's
 * event/next that was pending when the snapshot was taken simply returns the
 * first INVOKE of the restored environment. The Telemetry API delivers
 * platform.restoreStart/restoreRuntimeDone/restoreReport, and delivers the
 * snapshot's init events (initStart, initRuntimeDone, initReport) again.
 * A restore therefore begins at the first of:
 *  - the first INVOKE after init (in Lambda every restored copy resumes in
 *    the event/next that ended init);
 *  - platform.restoreStart;
 *  - an init event of a type already seen (a re-delivery: an environment
 *    has one init),
 * unless a restore already began and the restored environment's first
 * platform.start has not arrived yet (the other signals of the same
 * restore). The last two also catch a process restored more than once from
 * its own later state (lambda-sim's model: the same processes resumed). */
#ifndef KTE_RESTORE_H
#define KTE_RESTORE_H

#include <stdbool.h>

struct kte_restore {
    bool snapstart;    /* AWS_LAMBDA_INITIALIZATION_TYPE=snap-start; otherwise nothing happens */
    bool armed;        /* init ended: the snapshot may be taken from here on */
    bool invoked;      /* an INVOKE came after init */
    bool in_restore;   /* a restore began; its first platform.start has not come */
    unsigned restores; /* restores begun in this process */
    unsigned seen;     /* init event types seen since init or the last restore */
};

void kte_restore_init(struct kte_restore *r, bool snapstart);

/* The extension is about to wait in event/next at the end of init. */
void kte_restore_arm(struct kte_restore *r);

/* Returns whether a restore begins now, before the event of this type is
 * recorded. *redelivered says whether the event is one of the snapshot's
 * init events delivered again in a restored environment. */
bool kte_restore_on_event(struct kte_restore *r, const char *type, bool *redelivered);

/* An INVOKE from event/next. Returns whether a restore begins now. */
bool kte_restore_on_invoke(struct kte_restore *r);

#endif
