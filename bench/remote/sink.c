/*
 * sink — a small SMTP sink for bench/remote/run.sh: the server end of the
 * case "10% of RCPTs answered 451", which Postfix's smtp-sink cannot play
 * (its -r refuses every RCPT and turns PIPELINING off).
 *
 *   sink ADDRESS PORT RCPTS [EVERY]
 *
 * Listens on ADDRESS:PORT (an IPv4 address), speaks ESMTP with PIPELINING,
 * 8BITMIME and SIZE to any number of clients at once (one poll(2) loop, no
 * threads), and answers every EVERY-th RCPT (counted over all sessions;
 * default 10, 0 = none) with "451 4.3.0 try again later", every other one
 * with 250. DATA after no accepted RCPT gets 554; the content is read up to
 * the final dot and thrown away. It exits 0 once it has answered RCPTS
 * RCPT commands and no transaction with an accepted recipient is still
 * open (every message it accepted got its final reply), printing
 * "messages=M accepted=A deferred=D". A client's line over 4096 bytes
 * closes that client. Exit 1 when it cannot listen.
 *
 * Must never: block on one client, or trust a length from a client.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096
#define CLIENTS_MAX 1024

struct client {
    int fd;
    int in_data;       /* reading the content */
    unsigned accepted; /* RCPTs accepted in the open transaction */
    char in[2 * LINE_MAX_BYTES];
    size_t inlen;
    char *out;
    size_t outlen, outcap;
};

static struct client clients[CLIENTS_MAX];
static struct pollfd pfd[CLIENTS_MAX + 1];
static unsigned long rcpts_wanted, rcpts_seen, every, messages, accepted, deferred;
static unsigned long open_with_rcpts; /* transactions with an accepted RCPT not yet ended */

static void say(struct client *c, const char *text)
{
    size_t n = strlen(text);
    if (c->outlen + n > c->outcap) {
        c->outcap = (c->outlen + n) * 2;
        c->out = realloc(c->out, c->outcap);
        if (!c->out) {
            perror("sink: realloc");
            exit(1);
        }
    }
    memcpy(c->out + c->outlen, text, n);
    c->outlen += n;
}

static void end_transaction(struct client *c)
{
    if (c->accepted)
        open_with_rcpts--;
    c->accepted = 0;
}

static void drop(struct client *c)
{
    end_transaction(c);
    close(c->fd);
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

static int is(const char *line, const char *cmd)
{
    return strncasecmp(line, cmd, strlen(cmd)) == 0;
}

/* One command line (without its CRLF); 0, or -1 to close. */
static int command(struct client *c, const char *line)
{
    if (is(line, "EHLO"))
        say(c, "250-sink.bench.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
               "250 SIZE 104857600\r\n");
    else if (is(line, "HELO"))
        say(c, "250 sink.bench.test\r\n");
    else if (is(line, "MAIL"))
        say(c, "250 2.1.0 Ok\r\n");
    else if (is(line, "RCPT")) {
        rcpts_seen++;
        if (every && rcpts_seen % every == 0) {
            deferred++;
            say(c, "451 4.3.0 try again later\r\n");
        } else {
            if (c->accepted++ == 0)
                open_with_rcpts++;
            accepted++;
            say(c, "250 2.1.5 Ok\r\n");
        }
    } else if (is(line, "DATA")) {
        if (c->accepted) {
            c->in_data = 1;
            say(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
        } else
            say(c, "554 5.5.1 Error: no valid recipients\r\n");
    } else if (is(line, "RSET")) {
        end_transaction(c);
        say(c, "250 2.0.0 Ok\r\n");
    } else if (is(line, "QUIT")) {
        say(c, "221 2.0.0 Bye\r\n");
        return -1;
    } else
        say(c, "250 2.0.0 Ok\r\n"); /* NOOP and the rest */
    return 0;
}

/* A content line: the final dot ends the message. */
static void content(struct client *c, const char *line)
{
    if (strcmp(line, ".") != 0)
        return;
    c->in_data = 0;
    messages++;
    end_transaction(c);
    say(c, "250 2.0.0 Ok: queued\r\n");
}

/* Every whole line of c's input; -1 to close. */
static int lines(struct client *c)
{
    size_t start = 0;
    int rc = 0;
    for (;;) {
        char *nl = memchr(c->in + start, '\n', c->inlen - start);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (c->in + start));
        char *line = c->in + start;
        line[len] = '\0';
        if (len && line[len - 1] == '\r')
            line[len - 1] = '\0';
        start += len + 1;
        if (c->in_data)
            content(c, line);
        else if (command(c, line) < 0) {
            rc = -1;
            break;
        }
    }
    memmove(c->in, c->in + start, c->inlen - start);
    c->inlen -= start;
    if (c->inlen > LINE_MAX_BYTES)
        return -1;
    return rc;
}

static void flush_out(struct client *c)
{
    while (c->outlen) {
        ssize_t n = write(c->fd, c->out, c->outlen);
        if (n <= 0)
            return; /* EAGAIN: poll for POLLOUT */
        memmove(c->out, c->out + n, c->outlen - (size_t)n);
        c->outlen -= (size_t)n;
    }
}

static void on_readable(struct client *c)
{
    ssize_t n = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        drop(c);
        return;
    }
    c->inlen += (size_t)n;
    int rc = lines(c);
    flush_out(c);
    if (rc < 0)
        drop(c);
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        size_t i = 0;
        while (i < CLIENTS_MAX && clients[i].fd >= 0)
            i++;
        if (i == CLIENTS_MAX) {
            close(fd);
            continue;
        }
        clients[i].fd = fd;
        say(&clients[i], "220 sink.bench.test ESMTP\r\n");
        flush_out(&clients[i]);
    }
}

static int listen_on(const char *addr, const char *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        fprintf(stderr, "sink: %s is not an IPv4 address\n", addr);
        exit(1);
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 512) < 0) {
        fprintf(stderr, "sink: listen on %s:%s: %s\n", addr, port, strerror(errno));
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: sink ADDRESS PORT RCPTS [EVERY]\n");
        return 2;
    }
    rcpts_wanted = strtoul(argv[3], NULL, 10);
    every = argc > 4 ? strtoul(argv[4], NULL, 10) : 10;
    int lfd = listen_on(argv[1], argv[2]);
    for (size_t i = 0; i < CLIENTS_MAX; i++)
        clients[i].fd = -1;
    while (rcpts_seen < rcpts_wanted || open_with_rcpts > 0) {
        pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (size_t i = 0; i < CLIENTS_MAX; i++)
            pfd[i + 1] = (struct pollfd){.fd = clients[i].fd,
                                         .events = POLLIN | (clients[i].outlen ? POLLOUT : 0)};
        if (poll(pfd, CLIENTS_MAX + 1, 1000) < 0 && errno != EINTR) {
            perror("sink: poll");
            return 1;
        }
        if (pfd[0].revents & POLLIN)
            accept_all(lfd);
        for (size_t i = 0; i < CLIENTS_MAX; i++) {
            struct client *c = &clients[i];
            if (c->fd < 0 || !pfd[i + 1].revents)
                continue;
            if (pfd[i + 1].revents & POLLOUT)
                flush_out(c);
            if (pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR))
                on_readable(c);
        }
    }
    printf("messages=%lu accepted=%lu deferred=%lu\n", messages, accepted, deferred);
    return 0;
}
