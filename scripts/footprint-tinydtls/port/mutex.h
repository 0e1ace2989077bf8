/* A single-threaded client: tinydtls's locks compile to nothing. */
#ifndef FOOTPRINT_MUTEX_H
#define FOOTPRINT_MUTEX_H
typedef int mutex_t;
#define MUTEX_INIT 0
#define mutex_lock(m) ((void)(m))
#define mutex_trylock(m) ((void)(m), 1)
#define mutex_unlock(m) ((void)(m))
#endif
