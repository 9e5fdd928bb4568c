/*
 * clientname — the forward-confirmed client name, through the dnscache's
 * RDNS view. See clientname.h.
 */
#include "smtpd/clientname.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

struct clientname {
    struct dnsclient_req *req;
    clientname_cb *done;
    void *arg;
};

/* The reverse name of peer (RFC 1035 3.5, RFC 3596 2.5); -1 for another family. */
static int reverse_name(const struct sockaddr *peer, struct buf *out)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (peer->sa_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)peer;
        dnsp_reverse_name(4, (const unsigned char *)&a4->sin_addr, out);
        return 0;
    }
    if (peer->sa_family != AF_INET6)
        return -1;
    const unsigned char *a6 = ((const struct sockaddr_in6 *)peer)->sin6_addr.s6_addr;
    if (memcmp(a6, mapped, sizeof(mapped)) == 0)
        dnsp_reverse_name(4, a6 + 12, out);
    else
        dnsp_reverse_name(6, a6, out);
    return 0;
}

static void on_answer(void *arg, const struct dnsp_answer *a)
{
    struct clientname *r = arg;
    const char *name = NULL;
    if (a->status == DNS_STATUS_OK && a->canon[0])
        name = a->canon;
    else if (a->status == DNS_STATUS_NODATA && a->nhosts > 0)
        log_warn("%s", a->reason); /* Postfix: "hostname H does not resolve to address A" */
    clientname_cb *done = r->done;
    void *done_arg = r->arg;
    free(r);
    done(done_arg, name);
}

struct clientname *clientname_lookup(struct dnsclient *dns, const struct sockaddr *peer,
                                     clientname_cb *done, void *arg)
{
    struct buf name = BUF_INIT;
    if (reverse_name(peer, &name) < 0) {
        buf_free(&name);
        return NULL;
    }
    struct clientname *r = xmalloc(sizeof(*r));
    r->done = done;
    r->arg = arg;
    r->req = dnsclient_lookup(dns, DNSP_QTYPE_RDNS, buf_cstr(&name), on_answer, r);
    buf_free(&name);
    return r;
}

void clientname_cancel(struct clientname *r)
{
    if (!r)
        return;
    dnsclient_cancel(r->req);
    free(r);
}
