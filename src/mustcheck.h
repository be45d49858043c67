/* mustcheck.h: MUSTCHECK marks a function whose result says whether it worked
 * (false, NULL, -1, an exit code): a caller that drops it fails the build
 * (-Werror). Not for best-effort calls whose result callers may ignore: gcc
 * does not accept a (void) cast as looking at it. */
#ifndef PGWAKE_MUSTCHECK_H
#define PGWAKE_MUSTCHECK_H

#define MUSTCHECK __attribute__((warn_unused_result))

#endif
