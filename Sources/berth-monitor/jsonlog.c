// Docker's json-file log driver format: one object per line,
//   {"log":"hello\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}
// output split at newlines, with size-based rotation (container.log -> .1 -> .2 ...).
#define _GNU_SOURCE
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_NAME "container.log"

static const char record_head[] = "{\"log\":\"";
static const char *const record_stream[] = {
    [STREAM_STDOUT] = "\",\"stream\":\"stdout\",\"time\":\"",
    [STREAM_STDERR] = "\",\"stream\":\"stderr\",\"time\":\"",
};
static const char record_tail[] = "\"}\n";

static char *put_digits(char *p, unsigned long v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10) p[i] = (char)('0' + v % 10);
    return p + width;
}

// By hand rather than gmtime_r+strftime+snprintf: it runs for every record, and those pull
// time-zone and printf machinery into the monitor's resident set. Days to civil date: Howard
// Hinnant's algorithm (proleptic Gregorian calendar).
size_t format_timestamp(const struct timespec *t, char out[40])
{
    long long days = t->tv_sec / 86400, secs = t->tv_sec % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    days += 719468;
    long long era = (days >= 0 ? days : days - 146096) / 146097;
    long long doe = days - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    long long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    long long year = yoe + era * 400 + (month <= 2);
    char *p = put_digits(out, (unsigned long)year, 4);
    *p++ = '-';
    p = put_digits(p, (unsigned long)month, 2);
    *p++ = '-';
    p = put_digits(p, (unsigned long)day, 2);
    *p++ = 'T';
    p = put_digits(p, (unsigned long)(secs / 3600), 2);
    *p++ = ':';
    p = put_digits(p, (unsigned long)(secs / 60 % 60), 2);
    *p++ = ':';
    p = put_digits(p, (unsigned long)(secs % 60), 2);
    *p++ = '.';
    p = put_digits(p, (unsigned long)t->tv_nsec, 9);
    *p++ = 'Z';
    *p = '\0';
    return (size_t)(p - out);
}

// Length of the valid UTF-8 sequence at S (RFC 3629: no overlongs, surrogates or > U+10FFFF),
// or 0 when the bytes are not one.
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

// Escapes the character at S into OUT (at most 6 bytes) as Go's encoding/json does, which
// is what Docker writes: \" \\ \n \r \t, other control characters and <>& as \u00XX, U+2028/9
// escaped, invalid bytes as \ufffd one by one. Returns the bytes consumed from S.
static size_t escape_unit(const unsigned char *s, size_t n, char out[6], size_t *out_len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[0];
    if (c < 0x80) {
        const char *short_form = NULL;
        switch (c) {
        case '"': short_form = "\\\""; break;
        case '\\': short_form = "\\\\"; break;
        case '\n': short_form = "\\n"; break;
        case '\r': short_form = "\\r"; break;
        case '\t': short_form = "\\t"; break;
        default: break;
        }
        if (short_form) {
            memcpy(out, short_form, 2);
            *out_len = 2;
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            memcpy(out, "\\u00", 4);
            out[4] = hex[c >> 4];
            out[5] = hex[c & 15];
            *out_len = 6;
        } else {
            out[0] = (char)c;
            *out_len = 1;
        }
        return 1;
    }
    size_t len = utf8_sequence(s, n);
    if (len == 0) {
        memcpy(out, "\\ufffd", 6);
        *out_len = 6;
        return 1;
    }
    if (len == 3 && c == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9)) {
        memcpy(out, s[2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
        *out_len = 6;
        return 3;
    }
    memcpy(out, s, len);
    *out_len = len;
    return len;
}

static size_t escaped_length(const unsigned char *s, size_t n)
{
    // A first pass: the record's length decides rotation before anything is written.
    size_t total = 0, k;
    char unit[6];
    for (size_t i = 0; i < n;) {
        i += escape_unit(s + i, n - i, unit, &k);
        total += k;
    }
    return total;
}

void jsonlog_flush(struct jsonlog *log)
{
    if (log->wlen == 0) return;
    // A full disk loses log lines, never the container: there is nobody to tell.
    (void)write_all(log->fd, log->wbuf, log->wlen);
    log->wlen = 0;
}

static void put(struct jsonlog *log, const char *p, size_t n)
{
    while (n > 0) {
        if (log->wlen == sizeof log->wbuf) jsonlog_flush(log);
        size_t k = sizeof log->wbuf - log->wlen;
        if (k > n) k = n;
        memcpy(log->wbuf + log->wlen, p, k);
        log->wlen += k;
        p += k;
        n -= k;
    }
}

static int open_log(struct jsonlog *log, int extra_flags)
{
    int fd = openat(log->dirfd, LOG_NAME, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | extra_flags, 0640);
    if (fd < 0) return -1;
    struct stat st;
    log->size = fstat(fd, &st) == 0 ? st.st_size : 0;
    log->fd = fd;
    return 0;
}

int jsonlog_open(struct jsonlog *log, int dirfd, long long max_size, int max_files)
{
    log->dirfd = dirfd;
    log->max_size = max_size;
    log->max_files = max_files < 1 ? 1 : max_files;
    log->wlen = 0;
    return open_log(log, 0);
}

// container.log.(N-2) -> .(N-1) ... container.log -> .1, dropping the oldest; with one file
// the log starts over (Docker's max-file=1).
static void rotate(struct jsonlog *log)
{
    jsonlog_flush(log);
    close(log->fd);
    char from[sizeof LOG_NAME + 12], to[sizeof LOG_NAME + 12];
    for (int i = log->max_files - 1; i >= 1; i--) {
        if (i == 1) snprintf(from, sizeof from, "%s", LOG_NAME);
        else snprintf(from, sizeof from, "%s.%d", LOG_NAME, i - 1);
        snprintf(to, sizeof to, "%s.%d", LOG_NAME, i);
        renameat(log->dirfd, from, log->dirfd, to);
    }
    if (open_log(log, O_TRUNC) != 0) log->fd = -1;
    log->size = 0;
}

static void record(struct jsonlog *log, int stream, const char *data, size_t n, const char *ts, size_t ts_len)
{
    const unsigned char *s = (const unsigned char *)data;
    size_t esc = escaped_length(s, n);
    size_t total = strlen(record_head) + esc + strlen(record_stream[stream]) + ts_len + strlen(record_tail);
    if (log->max_size > 0 && log->size > 0 && log->size + (long long)total > log->max_size) rotate(log);
    if (log->fd < 0) return;
    put(log, record_head, strlen(record_head));
    for (size_t i = 0; i < n;) {
        char unit[6];
        size_t k;
        i += escape_unit(s + i, n - i, unit, &k);
        put(log, unit, k);
    }
    put(log, record_stream[stream], strlen(record_stream[stream]));
    put(log, ts, ts_len);
    put(log, record_tail, strlen(record_tail));
    log->size += (long long)total;
}

// Bytes at the end of BUF that begin a UTF-8 sequence still missing its continuation bytes:
// held back when a long line is cut, so the cut never splits a character.
static size_t incomplete_utf8_tail(const char *buf, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = (unsigned char)buf[len - back];
        if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;
}

void jsonlog_feed(struct jsonlog *log, struct line_splitter *sp, int stream,
                  const char *data, size_t n, const struct timespec *now)
{
    char ts[40];
    size_t ts_len = format_timestamp(now, ts);
    while (n > 0) {
        if (sp->len == 0) {
            // Nothing pending: whole lines go straight from DATA.
            const char *nl;
            while (n > 0 && (nl = memchr(data, '\n', n)) != NULL && (size_t)(nl - data) < LOG_LINE_MAX) {
                size_t k = (size_t)(nl - data) + 1;
                record(log, stream, data, k, ts, ts_len);
                data += k;
                n -= k;
            }
            if (n == 0) break;
        }
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) + 1 : n;
        if (take > LOG_LINE_MAX - sp->len) take = LOG_LINE_MAX - sp->len;
        memcpy(sp->buf + sp->len, data, take);
        sp->len += take;
        data += take;
        n -= take;
        if (sp->buf[sp->len - 1] == '\n') {
            record(log, stream, sp->buf, sp->len, ts, ts_len);
            sp->len = 0;
        } else if (sp->len == LOG_LINE_MAX) {
            size_t keep = incomplete_utf8_tail(sp->buf, sp->len);
            record(log, stream, sp->buf, sp->len - keep, ts, ts_len);
            memmove(sp->buf, sp->buf + sp->len - keep, keep);
            sp->len = keep;
        }
    }
    jsonlog_flush(log);
}

void jsonlog_end_stream(struct jsonlog *log, struct line_splitter *sp, int stream, const struct timespec *now)
{
    if (sp->len > 0) {
        char ts[40];
        size_t ts_len = format_timestamp(now, ts);
        record(log, stream, sp->buf, sp->len, ts, ts_len);
        sp->len = 0;
    }
    jsonlog_flush(log);
}
