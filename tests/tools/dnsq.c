/*
 * dnsq — a tiny DNS query tool built on c-ares, for the integration tests.
 *
 *   dnsq -s IP:PORT [-t MS] [-r TRIES] [-e EDNS_SIZE] [-T] TYPE NAME...
 *
 * Asks the one server given (never /etc/resolv.conf's) for TYPE (MX, A or
 * AAAA) of each NAME, as an absolute name: ARES_FLAG_NOSEARCH, so no search
 * list is appended (SPEC D1). EDNS0 is on with payload EDNS_SIZE (default
 * 1232; 0 turns EDNS off); -T sends every query over TCP. A truncated UDP
 * answer is retried over TCP by c-ares itself (RFC 7766), which is what the
 * tests check. Every answer record is printed on stdout, one per line:
 *
 *   NAME MX PREF HOST
 *   NAME A ADDRESS TTL
 *   NAME AAAA ADDRESS TTL
 *
 * Failures go to stderr as "dnsq: NAME TYPE: reason". Exit status: 0 every
 * query answered, 1 any query failed, 2 usage.
 *
 * It must never read a length from the answer itself: all parsing is c-ares'.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DNSQ_MAX_ADDRTTLS 512

struct dnsq_query {
    const char *name;
    int type; /* ns_t_mx, ns_t_a, ns_t_aaaa */
    const char *type_name;
};

struct dnsq_state {
    int pending;
    int failed;
};

static struct dnsq_state state;

static void usage(void)
{
    fprintf(stderr, "usage: dnsq -s IP:PORT [-t MS] [-r TRIES] [-e EDNS_SIZE] [-T] "
                    "MX|A|AAAA NAME...\n");
    exit(2);
}

static int type_from_name(const char *name)
{
    if (strcmp(name, "MX") == 0)
        return 15;
    if (strcmp(name, "A") == 0)
        return 1;
    if (strcmp(name, "AAAA") == 0)
        return 28;
    return -1;
}

static int print_mx(const char *name, const unsigned char *abuf, int alen)
{
    struct ares_mx_reply *mx = NULL;
    int status = ares_parse_mx_reply(abuf, alen, &mx);

    if (status != ARES_SUCCESS)
        return status;
    for (struct ares_mx_reply *m = mx; m != NULL; m = m->next)
        printf("%s MX %u %s\n", name, (unsigned)m->priority, m->host);
    ares_free_data(mx);
    return ARES_SUCCESS;
}

static int print_a(const char *name, const unsigned char *abuf, int alen)
{
    struct ares_addrttl ttls[DNSQ_MAX_ADDRTTLS];
    int count = DNSQ_MAX_ADDRTTLS;
    char text[INET_ADDRSTRLEN];
    int status = ares_parse_a_reply(abuf, alen, NULL, ttls, &count);

    if (status != ARES_SUCCESS)
        return status;
    for (int i = 0; i < count; i++) {
        inet_ntop(AF_INET, &ttls[i].ipaddr, text, sizeof text);
        printf("%s A %s %d\n", name, text, ttls[i].ttl);
    }
    return ARES_SUCCESS;
}

static int print_aaaa(const char *name, const unsigned char *abuf, int alen)
{
    struct ares_addr6ttl ttls[DNSQ_MAX_ADDRTTLS];
    int count = DNSQ_MAX_ADDRTTLS;
    char text[INET6_ADDRSTRLEN];
    int status = ares_parse_aaaa_reply(abuf, alen, NULL, ttls, &count);

    if (status != ARES_SUCCESS)
        return status;
    for (int i = 0; i < count; i++) {
        inet_ntop(AF_INET6, &ttls[i].ip6addr, text, sizeof text);
        printf("%s AAAA %s %d\n", name, text, ttls[i].ttl);
    }
    return ARES_SUCCESS;
}

static void query_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    const struct dnsq_query *query = arg;

    state.pending--;
    if (status == ARES_SUCCESS) {
        if (query->type == 15)
            status = print_mx(query->name, abuf, alen);
        else if (query->type == 1)
            status = print_a(query->name, abuf, alen);
        else
            status = print_aaaa(query->name, abuf, alen);
    }
    if (status != ARES_SUCCESS) {
        fprintf(stderr, "dnsq: %s %s: %s (timeouts %d)\n", query->name, query->type_name,
                ares_strerror(status), timeouts);
        state.failed = 1;
    }
}

/* ares_getsock()'s bit mask, read as unsigned: the ARES_GETSOCK_WRITABLE
 * macro shifts a signed 1 by up to 31 places, which is undefined. */
static int socket_readable(int bits, int i)
{
    return ((unsigned)bits & (1u << i)) != 0;
}

static int socket_writable(int bits, int i)
{
    return ((unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM))) != 0;
}

/* One round of the event loop: wait for c-ares' sockets or its next timeout. */
static void wait_and_process(ares_channel channel)
{
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    struct pollfd fds[ARES_GETSOCK_MAXNUM];
    int bits = ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
    int nfds = 0;

    for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
        short events = 0;
        if (socket_readable(bits, i))
            events |= POLLIN;
        if (socket_writable(bits, i))
            events |= POLLOUT;
        if (events != 0) {
            fds[nfds].fd = socks[i];
            fds[nfds].events = events;
            fds[nfds].revents = 0;
            nfds++;
        }
    }
    struct timeval tv;
    struct timeval *tvp = ares_timeout(channel, NULL, &tv);
    int timeout_ms = tvp == NULL ? 1000 : (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
    int ready = poll(fds, (nfds_t)nfds, timeout_ms);
    if (ready < 0 && errno != EINTR) {
        perror("dnsq: poll");
        exit(1);
    }
    if (ready <= 0) {
        ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
        return;
    }
    for (int i = 0; i < nfds; i++) {
        ares_socket_t rfd =
            (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD;
        ares_socket_t wfd = (fds[i].revents & POLLOUT) ? fds[i].fd : ARES_SOCKET_BAD;
        if (rfd != ARES_SOCKET_BAD || wfd != ARES_SOCKET_BAD)
            ares_process_fd(channel, rfd, wfd);
    }
}

static ares_channel open_channel(const char *server, int timeout_ms, int tries, int edns_size,
                                 int tcp_only)
{
    struct ares_options options;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    ares_channel channel;

    memset(&options, 0, sizeof options);
    options.flags = ARES_FLAG_NOSEARCH; /* absolute names only (SPEC D1) */
    if (edns_size > 0) {
        options.flags |= ARES_FLAG_EDNS; /* RFC 6891 */
        options.ednspsz = edns_size;
        mask |= ARES_OPT_EDNSPSZ;
    }
    if (tcp_only)
        options.flags |= ARES_FLAG_USEVC;
    options.timeout = timeout_ms;
    options.tries = tries;
    int status = ares_init_options(&channel, &options, mask);
    if (status != ARES_SUCCESS) {
        fprintf(stderr, "dnsq: ares_init_options: %s\n", ares_strerror(status));
        exit(1);
    }
    status = ares_set_servers_ports_csv(channel, server);
    if (status != ARES_SUCCESS) {
        fprintf(stderr, "dnsq: bad server %s: %s\n", server, ares_strerror(status));
        exit(2);
    }
    return channel;
}

int main(int argc, char **argv)
{
    const char *server = NULL;
    int timeout_ms = 2000, tries = 2, edns_size = 1232, tcp_only = 0, opt;

    while ((opt = getopt(argc, argv, "s:t:r:e:T")) != -1) {
        switch (opt) {
        case 's':
            server = optarg;
            break;
        case 't':
            timeout_ms = atoi(optarg);
            break;
        case 'r':
            tries = atoi(optarg);
            break;
        case 'e':
            edns_size = atoi(optarg);
            break;
        case 'T':
            tcp_only = 1;
            break;
        default:
            usage();
        }
    }
    if (server == NULL || argc - optind < 2 || timeout_ms <= 0 || tries <= 0 || edns_size < 0)
        usage();
    struct dnsq_query query_type = {NULL, type_from_name(argv[optind]), argv[optind]};
    if (query_type.type < 0)
        usage();

    int status = ares_library_init(ARES_LIB_INIT_ALL);
    if (status != ARES_SUCCESS) {
        fprintf(stderr, "dnsq: ares_library_init: %s\n", ares_strerror(status));
        return 1;
    }
    ares_channel channel = open_channel(server, timeout_ms, tries, edns_size, tcp_only);
    int nnames = argc - optind - 1;
    struct dnsq_query *queries = calloc((size_t)nnames, sizeof *queries);
    if (queries == NULL) {
        perror("dnsq: calloc");
        return 1;
    }
    for (int i = 0; i < nnames; i++) {
        queries[i] = query_type;
        queries[i].name = argv[optind + 1 + i];
        state.pending++;
        ares_query(channel, queries[i].name, 1 /* IN */, queries[i].type, query_done, &queries[i]);
    }
    while (state.pending > 0)
        wait_and_process(channel);
    ares_destroy(channel);
    ares_library_cleanup();
    free(queries);
    return state.failed ? 1 : 0;
}
