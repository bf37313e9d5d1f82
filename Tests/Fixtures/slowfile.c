// SPDX-License-Identifier: Apache-2.0
// A FUSE file system with one read-only file, /image, whose bytes are those of BACKING and whose
// every read waits DELAY_MS first: attached as a loop device, a slow disk for the daemon's tests.
//
//   cc -O2 slowfile.c $(pkg-config --cflags --libs fuse3) -o slowfile
//   slowfile BACKING DELAY_MS MOUNTPOINT -f
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int backing = -1;
static off_t backing_size;
static long delay_ms;

static int slow_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
    (void)fi;
    memset(st, 0, sizeof *st);
    if (strcmp(path, "/") == 0) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
        return 0;
    }
    if (strcmp(path, "/image") != 0) return -ENOENT;
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = backing_size;
    return 0;
}

static int slow_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset, struct fuse_file_info *fi,
                        enum fuse_readdir_flags flags) {
    (void)offset; (void)fi; (void)flags;
    if (strcmp(path, "/") != 0) return -ENOENT;
    fill(buf, ".", NULL, 0, 0);
    fill(buf, "..", NULL, 0, 0);
    fill(buf, "image", NULL, 0, 0);
    return 0;
}

static int slow_open(const char *path, struct fuse_file_info *fi) {
    if (strcmp(path, "/image") != 0) return -ENOENT;
    if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EACCES;
    return 0;
}

static int slow_read(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi) {
    (void)path; (void)fi;
    struct timespec pause = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
    nanosleep(&pause, NULL);
    ssize_t got = pread(backing, buf, size, offset);
    return got < 0 ? -errno : (int)got;
}

static const struct fuse_operations operations = {
    .getattr = slow_getattr, .readdir = slow_readdir, .open = slow_open, .read = slow_read,
};

int main(int argc, char *argv[]) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s BACKING DELAY_MS MOUNTPOINT [FUSE options]\n", argv[0]);
        return 64;
    }
    backing = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (backing < 0) { perror(argv[1]); return 66; }
    backing_size = lseek(backing, 0, SEEK_END);
    delay_ms = strtol(argv[2], NULL, 10);
    // FUSE sees: program MOUNTPOINT [options]
    argv[2] = argv[0];
    return fuse_main(argc - 2, argv + 2, &operations, NULL);
}
