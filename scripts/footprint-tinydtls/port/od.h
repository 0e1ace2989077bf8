#ifndef FOOTPRINT_OD_H
#define FOOTPRINT_OD_H
#define od_hex_dump(data, len, width) ((void)(data), (void)(len), (void)(width))
#endif
