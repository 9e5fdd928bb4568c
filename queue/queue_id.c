/*
 * queue_id — queue file ids and message ids (queue.h "ids").
 *
 * A file id is 11 base-32 digits of the commit time in microseconds (kept
 * strictly increasing within the process, so two files of one process never
 * share a time even when the clock does not move or steps back) and 5 digits
 * of the pid. The alphabet is in ascending ASCII order, so ids sort by time.
 * Must never: produce an id outside the alphabet or of another length.
 */
#include "queue_impl.h"

#include <pthread.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define TIME_DIGITS 11
#define PID_DIGITS 5
#define INDEX_DIGITS 2

static const char base32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static int base32_value(char c)
{
    const char *p = c ? strchr(base32, c) : NULL;
    return p ? (int)(p - base32) : -1;
}

/* Write v as exactly `digits` base-32 digits, most significant first. */
static void base32_put(char *out, uint64_t v, int digits)
{
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = base32[v & 31];
        v >>= 5;
    }
}

static int base32_get(const char *s, int digits, uint64_t *v)
{
    uint64_t r = 0;
    for (int i = 0; i < digits; i++) {
        int d = base32_value(s[i]);
        if (d < 0)
            return -1;
        r = r << 5 | (uint64_t)d;
    }
    *v = r;
    return 0;
}

static uint64_t now_usec(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

void queue_file_id_new(char *fid, uint64_t *usec)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t last;
    pthread_mutex_lock(&lock);
    uint64_t t = now_usec();
    if (t <= last)
        t = last + 1;
    last = t;
    pthread_mutex_unlock(&lock);
    base32_put(fid, t, TIME_DIGITS);
    base32_put(fid + TIME_DIGITS, (uint64_t)getpid(), PID_DIGITS);
    fid[QUEUE_FILE_ID_LEN] = '\0';
    if (usec)
        *usec = t;
}

void queue_file_id_at(char *fid, uint64_t usec)
{
    base32_put(fid, usec, TIME_DIGITS);
    base32_put(fid + TIME_DIGITS, (uint64_t)getpid(), PID_DIGITS);
    fid[QUEUE_FILE_ID_LEN] = '\0';
}

static int digits_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (base32_value(s[i]) < 0)
            return 0;
    return 1;
}

int queue_file_id_valid(const char *fid)
{
    return strlen(fid) == QUEUE_FILE_ID_LEN && digits_valid(fid, QUEUE_FILE_ID_LEN);
}

int queue_id_valid(const char *id)
{
    uint64_t index = 0;
    if (strlen(id) != QUEUE_ID_LEN || !digits_valid(id, QUEUE_ID_LEN))
        return 0;
    base32_get(id + QUEUE_FILE_ID_LEN, INDEX_DIGITS, &index);
    return index < QUEUE_FILE_MSGS_MAX;
}

void queue_msg_id(const char *fid, unsigned index, char *out)
{
    memcpy(out, fid, QUEUE_FILE_ID_LEN);
    base32_put(out + QUEUE_FILE_ID_LEN, index, INDEX_DIGITS);
    out[QUEUE_ID_LEN] = '\0';
}

int queue_id_time(const char *id, uint64_t *usec)
{
    if (strlen(id) < QUEUE_FILE_ID_LEN)
        return -1;
    return base32_get(id, TIME_DIGITS, usec);
}

/* FNV-1a over the file id part, folded to 8 bits. */
void queue_bucket(const char *id, char out[3])
{
    static const char hex[] = "0123456789abcdef";
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < QUEUE_FILE_ID_LEN && id[i]; i++) {
        h ^= (unsigned char)id[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h ^= h >> 8;
    out[0] = hex[(h >> 4) & 15];
    out[1] = hex[h & 15];
    out[2] = '\0';
}
