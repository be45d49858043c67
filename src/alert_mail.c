/* alert_mail.c: alert emails: RFC 5322 text (From, To, Subject in RFC 2047
 * when not ASCII, Date, Message-ID, UTF-8 plain text body), the envelope from
 * the From and To lists, and libcurl's SMTP options (TLS whenever a user is
 * set, so credentials never travel in clear text). */
#include "alert_mail.h"
#include "config_keys.h"
#include "errfmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#define LINE_MAX_BODY 900 /* longer body lines are split (RFC 5322 caps lines at 998) */
#define SUBJ_CHUNK 39     /* bytes per encoded word: 52 base64 chars, a 73-column line */

/* trim_dup returns s[0..len) without surrounding blanks (malloc'd). */
static char *trim_dup(const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    return strndup(s, len);
}

/* mailbox_addr turns "Name <a@b>" or "a@b" (len bytes) into "<a@b>", or NULL
 * when there is no address or it holds characters an envelope cannot carry. */
static char *mailbox_addr(const char *s, size_t len)
{
    char *t = trim_dup(s, len);
    if (!t)
        return NULL;
    char *addr = t, *lt = strrchr(t, '<');
    if (lt) {
        char *gt = strchr(lt, '>');
        if (!gt) {
            free(t);
            return NULL;
        }
        *gt = '\0';
        addr = lt + 1;
    }
    bool ok = *addr && strchr(addr, '@');
    for (const unsigned char *c = (const unsigned char *)addr; ok && *c; c++)
        ok = *c > ' ' && *c != 0x7f && *c != '<' && *c != '>' && *c != ',';
    char *out = NULL;
    if (ok && asprintf(&out, "<%s>", addr) < 0)
        out = NULL;
    free(t);
    return out;
}

/* rcpt_list splits a comma-separated list (commas inside double quotes, as in
 * "Doe, Jane" <j@x>, do not split) into envelope addresses. */
static bool rcpt_list(const char *to, struct curl_slist **out, char *why, size_t n)
{
    *out = NULL;
    const char *start = to;
    bool quoted = false;
    for (const char *c = to;; c++) {
        if (*c == '"')
            quoted = !quoted;
        if (*c && (*c != ',' || quoted))
            continue;
        size_t len = (size_t)(c - start);
        if (strspn(start, " \t") < len) { /* skip empty items such as "a@b, " */
            char *addr = mailbox_addr(start, len);
            struct curl_slist *l = addr ? curl_slist_append(*out, addr) : NULL;
            if (!l) {
                snprintf(why, n, "email_to: \"%.*s\" is not an address", (int)len, start);
                free(addr);
                curl_slist_free_all(*out);
                *out = NULL;
                return false;
            }
            *out = l;
            free(addr);
        }
        if (!*c)
            break;
        start = c + 1;
    }
    return *out || errf(why, n, "email_to holds no address");
}

static void base64(FILE *m, const unsigned char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        fputc(tab[v >> 18 & 63], m);
        fputc(tab[v >> 12 & 63], m);
        fputc(i + 1 < n ? tab[v >> 6 & 63] : '=', m);
        fputc(i + 2 < n ? tab[v & 63] : '=', m);
    }
}

/* utf8_cut returns at most max bytes of s[0..len) ending on a character boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    return cut ? cut : max;
}

/* put_subject writes the Subject header: printable ASCII folded at spaces
 * near 78 columns, anything else as RFC 2047 "B" encoded words of whole
 * UTF-8 characters, one per line. */
static void put_subject(FILE *m, const char *s)
{
    bool ascii = true;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        ascii = ascii && *c >= ' ' && *c < 0x7f;
    fputs("Subject:", m);
    size_t len = strlen(s);
    if (ascii) {
        size_t col = 8;
        for (const char *w = s; *w;) {
            size_t wl = strcspn(w, " ");
            if (wl) {
                if (col > 8 && col + 1 + wl > 78) {
                    fputs("\r\n", m);
                    col = 0;
                }
                fprintf(m, " %.*s", (int)wl, w);
                col += 1 + wl;
            }
            w += wl + strspn(w + wl, " ");
        }
    } else {
        for (size_t off = 0, i = 0; off < len; i++) {
            size_t k = utf8_cut(s + off, len - off, SUBJ_CHUNK);
            fputs(i ? "\r\n =?UTF-8?B?" : " =?UTF-8?B?", m);
            base64(m, (const unsigned char *)s + off, k);
            fputs("?=", m);
            off += k;
        }
    }
    fputs("\r\n", m);
}

/* put_date writes an RFC 5322 date in local time with English names (the
 * locale never changes a mail header). */
static void put_date(FILE *m, time_t t)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    fprintf(m, "Date: %s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld\r\n", days[tm.tm_wday],
            tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
            sign, off / 60, off % 60);
}

/* put_message_id writes a Message-ID unique across daemons (host), restarts
 * (pid, time) and messages (a counter); host keeps only domain characters. */
static void put_message_id(FILE *m, const char *host)
{
    static unsigned seq; /* loop thread only */
    struct timeval tv;
    gettimeofday(&tv, NULL);
    fprintf(m, "Message-ID: <%lld.%ld.%u.pgwake@", (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000,
            (long)getpid(), ++seq);
    bool any = false;
    for (const char *c = host ? host : ""; *c; c++)
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.')
            fputc(*c, m), any = true;
    fputs(any ? ">\r\n" : "localhost>\r\n", m);
}

/* put_header writes "Name: value" with CR and LF in value turned into spaces. */
static void put_header(FILE *m, const char *name, const char *value)
{
    fprintf(m, "%s: ", name);
    for (const char *c = value; *c; c++)
        fputc(*c == '\r' || *c == '\n' ? ' ' : *c, m);
    fputs("\r\n", m);
}

/* put_body writes body with CRLF line ends, splitting lines too long for SMTP. */
static void put_body(FILE *m, const char *body)
{
    for (const char *line = body; *line;) {
        size_t len = strcspn(line, "\n");
        const char *p = line;
        size_t left = len;
        do {
            size_t k = utf8_cut(p, left, LINE_MAX_BODY);
            fwrite(p, 1, k, m);
            fputs("\r\n", m);
            p += k, left -= k;
        } while (left);
        line += len + (line[len] == '\n');
    }
}

/* mail_job_init builds the whole message and its envelope into m (zeroed
 * first); false with why set when an address is unusable. */
bool mail_job_init(MailJob *m, const MailParams *p, char *why, size_t n)
{
    memset(m, 0, sizeof *m);
    m->from_addr = mailbox_addr(p->from, strlen(p->from));
    if (!m->from_addr) {
        snprintf(why, n, "email_from: \"%s\" is not an address", p->from);
        return false;
    }
    if (!rcpt_list(p->to, &m->rcpts, why, n)) {
        mail_job_free(m);
        return false;
    }
    m->url = strdup(p->url);
    m->user = p->user ? strdup(p->user) : NULL;
    m->password = p->password ? strdup(p->password) : NULL;
    FILE *f = open_memstream(&m->msg, &m->len);
    if (!f || !m->url || (p->user && !m->user) || (p->password && !m->password)) {
        if (f)
            fclose(f);
        mail_job_free(m);
        return errf(why, n, "out of memory");
    }
    put_header(f, "From", p->from);
    put_header(f, "To", p->to);
    put_subject(f, p->subject);
    put_date(f, p->when);
    put_message_id(f, p->host);
    fputs("MIME-Version: 1.0\r\n"
          "Content-Type: text/plain; charset=utf-8\r\n"
          "Content-Transfer-Encoding: 8bit\r\n"
          "Auto-Submitted: auto-generated\r\n",
          f);
    put_header(f, "X-Pgwake-Alert", p->kind);
    fputs("\r\n", f);
    put_body(f, p->body);
    if (fclose(f) != 0) {
        mail_job_free(m);
        return errf(why, n, "out of memory");
    }
    return true;
}

/* mail_job_free releases what mail_job_init built, the password wiped first. */
void mail_job_free(MailJob *m)
{
    if (m->password)
        explicit_bzero(m->password, strlen(m->password));
    free(m->url);
    free(m->user);
    free(m->password);
    free(m->from_addr);
    curl_slist_free_all(m->rcpts);
    free(m->msg);
    memset(m, 0, sizeof *m);
}

static size_t mail_read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    MailJob *m = arg;
    size_t want = size * nitems, left = m->len - m->off;
    if (want > left)
        want = left;
    memcpy(buf, m->msg + m->off, want);
    m->off += want;
    return want;
}

/* reply_cb keeps the first error reply (4xx, 5xx) of a try: libcurl hands
 * SMTP replies to the header function, and "451 4.3.0 try again later" says
 * more in a log than libcurl's "Weird server reply". */
static size_t reply_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    MailJob *m = arg;
    size_t len = size * nitems, n = len;
    if (m->reply[0] || len < 3 || (buf[0] != '4' && buf[0] != '5'))
        return len;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n >= sizeof m->reply)
        n = sizeof m->reply - 1;
    for (size_t i = 0; i < n; i++) /* the server's text: keep it printable */
        m->reply[i] = (unsigned char)buf[i] >= ' ' && buf[i] != 0x7f ? buf[i] : '?';
    m->reply[n] = '\0';
    return len;
}

/* mail_easy_setup sets the SMTP options of one try on e. TLS is required
 * (CURLUSESSL_ALL: STARTTLS on smtp://, implicit on smtps://) whenever a user
 * is set (in smtp_user or in the URL), so a server without STARTTLS fails the transfer instead of getting
 * the password in clear text; without a user, a plain local relay is allowed.
 * The response timeout bounds the waits libcurl makes outside the multi
 * interface's control (end of DATA, QUIT). */
bool mail_easy_setup(CURL *e, MailJob *m, int64_t timeout_ms, char *why, size_t n)
{
    /* Credentials in the URL (smtp://user:pass@host) count like smtp_user. */
    bool tls = m->user || url_has_userinfo(m->url) || strncasecmp(m->url, "smtps:", 6) == 0;
    long resp_s = (long)((timeout_ms + 999) / 1000);
    m->off = 0;
    m->reply[0] = '\0';
    CURLcode rc = CURLE_OK;
#define SET(opt, val) \
    do { if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val); } while (0)
    SET(CURLOPT_URL, m->url);
    SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    SET(CURLOPT_USE_SSL, (long)(tls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
    SET(CURLOPT_MAIL_FROM, m->from_addr);
    SET(CURLOPT_MAIL_RCPT, m->rcpts);
    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_READFUNCTION, mail_read_cb);
    SET(CURLOPT_READDATA, m);
    SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->len);
    SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, resp_s > 0 ? resp_s : 1L);
    SET(CURLOPT_HEADERFUNCTION, reply_cb);
    SET(CURLOPT_HEADERDATA, m);
    if (m->user) {
        SET(CURLOPT_USERNAME, m->user);
        SET(CURLOPT_PASSWORD, m->password ? m->password : "");
    }
#undef SET
    if (rc != CURLE_OK) {
        snprintf(why, n, "libcurl refused an SMTP option: %s", curl_easy_strerror(rc));
        return false;
    }
    return true;
}
