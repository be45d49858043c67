/* statuspage.h: the HTML status page served at GET / (statuspage.c). */
#ifndef PGWAKE_STATUSPAGE_H
#define PGWAKE_STATUSPAGE_H

extern const char statuspage_html[];

#endif
