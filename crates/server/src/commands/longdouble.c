/* INCRBYFLOAT arithmetic in C `long double`, exactly as Redis 7.0 does it.
 *
 * Redis parses both operands with string2ld() (strtold with strict checks), adds them in
 * long double (80-bit x87 on x86_64) and formats the sum with ld2string(LD_STR_HUMAN):
 * "%.17Lf" with trailing zeros (and a trailing dot) removed, "-0" turned into "0". Rust has
 * no long double, and f64 gives different digits (10.5 + 0.1), so this small shim does it.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Redis's MAX_LONG_DOUBLE_CHARS. */
#define DFLY_MAX_LONG_DOUBLE_CHARS (5 * 1024)

/* Redis's string2ld(): 1 on success, 0 if the bytes are not a valid long double. */
static int dfly_string2ld(const char *s, size_t slen, long double *dp) {
    char buf[DFLY_MAX_LONG_DOUBLE_CHARS];
    long double value;
    char *eptr;

    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';

    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' || (size_t)(eptr - buf) != slen ||
        (errno == ERANGE &&
         (value == HUGE_VALL || value == -HUGE_VALL || fpclassify(value) == FP_ZERO)) ||
        errno == EINVAL || isnan(value))
        return 0;

    if (dp) *dp = value;
    return 1;
}

/* Redis's ld2string(..., LD_STR_HUMAN) for a finite value. Returns the length (0 on error,
 * like Redis, which then stores an empty string). */
static size_t dfly_ld2string_human(char *buf, size_t len, long double value) {
    int n = snprintf(buf, len, "%.17Lf", value);
    size_t l;
    if (n < 0 || (size_t)n + 1 > len) {
        if (len > 0) buf[0] = '\0';
        return 0;
    }
    l = (size_t)n;
    if (strchr(buf, '.') != NULL) {
        char *p = buf + l - 1;
        while (*p == '0') {
            p--;
            l--;
        }
        if (*p == '.') l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        l = 1;
    }
    buf[l] = '\0';
    return l;
}

/* value (current string value, `has_value` 0 for a missing key) + incr, formatted.
 * Returns 0 and sets *outlen on success; 1 if either operand is not a valid float;
 * 2 if the sum is NaN or infinite. `out` must hold DFLY_MAX_LONG_DOUBLE_CHARS bytes. */
int damselfly_incrbyfloat(const char *value, size_t value_len, int has_value, const char *incr,
                          size_t incr_len, char *out, size_t out_cap, size_t *outlen) {
    long double v = 0, i = 0;
    if (has_value && !dfly_string2ld(value, value_len, &v)) return 1;
    if (!dfly_string2ld(incr, incr_len, &i)) return 1;
    v += i;
    if (isnan(v) || isinf(v)) return 2;
    *outlen = dfly_ld2string_human(out, out_cap, v);
    return 0;
}

/* Exposed for unit tests: 1 if the bytes parse as Redis's string2ld would accept. */
int damselfly_is_long_double(const char *s, size_t slen) {
    return dfly_string2ld(s, slen, NULL);
}
