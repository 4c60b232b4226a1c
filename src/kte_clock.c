#include "kte_clock.h"

static int64_t clock_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kte_now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t kte_epoch_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t kte_deadline_from_epoch(int64_t epoch_ms)
{
    if (epoch_ms <= 0)
        return 0;
    return kte_now_ms() + (epoch_ms - kte_epoch_ms());
}

struct timespec kte_mono_timespec(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    return ts;
}
