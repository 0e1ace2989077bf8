/* Logging off: every tinydtls log line compiles to nothing. */
#ifndef FOOTPRINT_LOG_H
#define FOOTPRINT_LOG_H
enum { LOG_NONE, LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_ALL };
#define LOG_LEVEL LOG_NONE
#define LOG_ERROR(...) ((void)0)
#define LOG_WARNING(...) ((void)0)
#define LOG_INFO(...) ((void)0)
#define LOG_DEBUG(...) ((void)0)
#endif
