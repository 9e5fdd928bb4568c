/*
 * spec5_sites — the site topology of SPEC section 5 (a hub, two smtp
 * spokes and a third site on an rpc link, the local site being site1) as
 * one string, shared by the tests of the site graph and of routing; each
 * appends the lines of its own cases.
 */
#ifndef ONEHOP_SPEC5_SITES_H
#define ONEHOP_SPEC5_SITES_H

#define SPEC5_SITES                                                                                \
    "site hub     hub.example.com\n"                                                               \
    "site site1   site1.example.com  corp1.example\n"                                              \
    "site site2   site2.example.com\n"                                                             \
    "site site3   site3.example.com\n"                                                             \
    "local site1\n"                                                                                \
    "link site1 hub  10 smtp  [gw.hub.example.com]\n"                                              \
    "link site2 hub  10 smtp\n"                                                                    \
    "link site3 hub  20 rpc   [gw.hub.example.com]\n"

#endif
