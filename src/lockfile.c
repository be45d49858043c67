/* lockfile.c: take the lock file of SPEC section 5's start-up. It may
 * live in /tmp, where anyone can plant a name first: a symbolic link is
 * never followed (it could truncate another file), a file another user
 * owns is refused (they could hold the lock, or read what we write), and
 * ours is kept at mode 0600. */
#include "lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errfmt.h"
#include "log.h"

/* open_own opens path for the lock, refusing what we did not make; -1
 * with err. */
static int open_own(const char *path, char *err, size_t n)
{
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    struct stat st;
    if (fd < 0 && errno == ELOOP)
        return errf(err, n, "the lock file %s is a symbolic link, which pgwake never follows "
                            "(remove it, or set lock_file to a private path)", path), -1;
    if (fd < 0)
        return errf(err, n, "unable to open the lock file %s: %s (remove a file another user "
                            "made there, or set lock_file to a writable private path)",
                    path, strerror(errno)), -1;
    if (fstat(fd, &st) < 0) {
        errf(err, n, "unable to stat the lock file %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        if (!S_ISREG(st.st_mode))
            errf(err, n, "the lock file %s is not a regular file (remove it, or set lock_file)",
                 path);
        else
            errf(err, n, "the lock file %s belongs to uid %u, not to this daemon's uid %u: another "
                         "user may have planted it (remove it, or set lock_file to a private path)",
                 path, (unsigned)st.st_uid, (unsigned)geteuid());
        close(fd);
        return -1;
    }
    if ((st.st_mode & 077) && fchmod(fd, 0600) < 0) {
        errf(err, n, "unable to make the lock file %s private (chmod 600): %s", path,
             strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* lockfile_take opens and locks path and writes our pid into it; the fd
 * (kept open for the daemon's life: closing it releases the lock), or -1
 * with err when the file is unsafe or another daemon holds it. */
int lockfile_take(const char *path, char *err, size_t n)
{
    int fd = open_own(path, err, n);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        errf(err, n, "another pgwake runs with this configuration (lock file %s is held)", path);
        close(fd);
        return -1;
    }
    char pid[24];
    int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || write(fd, pid, (size_t)len) != len)
        log_warn("unable to write the pid into %s: %s", path, strerror(errno));
    return fd;
}
