#ifndef FOOTPRINT_NET_AF_H
#define FOOTPRINT_NET_AF_H
enum { AF_UNSPEC = 0, AF_INET = 2, AF_INET6 = 10 };
#endif
