/*
 * The baseline of the check-in benchmark (bench/checkin_wrk.lua): libmicrohttpd,
 * thread pool of 2, a fixed check-in-sized answer on the second call (keep-alive).
 *   cc -O2 -o bare_mhd bench/bare_mhd.c -lmicrohttpd && ./bare_mhd 18080
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static const char body[] = "{\"state\":\"current\",\"current_thumbprint\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"interval\":60,\"commands\":[]}";
static enum MHD_Result h(void *c, struct MHD_Connection *conn, const char *u, const char *m, const char *v, const char *up, size_t *ups, void **cc)
{
    (void)c;(void)u;(void)m;(void)v;(void)up;
    if (*cc == NULL) { *cc = (void *)1; return MHD_YES; }
    if (*ups) { *ups = 0; return MHD_YES; }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}
int main(int argc, char **argv)
{
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, argc > 1 ? atoi(argv[1]) : 18080, NULL, NULL, h, NULL,
        MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_END);
    if (!d) return 1;
    pause();
    return 0;
}
