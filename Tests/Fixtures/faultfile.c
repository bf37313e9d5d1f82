// SPDX-License-Identifier: Apache-2.0
// A FUSE file system whose read-only file /image has the bytes of BACKING: attached as a loop device,
// a disk that is slow, has unreadable sectors, or vanishes, for the acquisition and daemon tests. The
// kernel offers no such disk without device-mapper or scsi_debug, which test machines often lack.
//
//   cc -O2 -Wall -Wextra faultfile.c $(pkg-config --cflags --libs fuse3) -o faultfile
//   faultfile BACKING MOUNTPOINT [--delay-ms N] [--bad START:LENGTH]... [--bad-file PATH]
//             [--fail-after START:LENGTH:READS]... [-- FUSE options]
//
// --delay-ms N      every read of /image waits N ms first.
// --bad START:LEN   a read of /image that overlaps these bytes fails whole with EIO, never short, so
//                   the loop device fails exactly the requests that touch a bad sector.
// --bad-file PATH   more bad ranges, one "START LENGTH" line each (# comments, blank lines allowed),
//                   read again on SIGHUP; the --bad ranges stay.
// --fail-after START:LEN:N
//                   reads that touch these bytes succeed N times, then fail with EIO: a sector that
//                   wears out between one read of it and the next (direct_io: every read counts).
// SIGUSR1           the disk vanishes: /image reports size 0 and every read fails with ENXIO.
// SIGUSR2           it comes back with its size and bytes.
//
// /faults lists the bad ranges in force, one "START LENGTH" line each: a test that rewrote the bad
// file and sent SIGHUP reads it until it shows the new ranges, because a signal is delivered some
// time after kill() returns and a read could otherwise still see the old ones.
//
// /image is opened with direct_io, so each read reaches read() below with the offset and size the
// loop driver asked for instead of going through FUSE's page cache, and attributes are never cached,
// so a `losetup -c` after a signal sees the new size. It runs in the foreground, owned by the test.
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct range { uint64_t start, length; };
struct ranges { struct range *items; size_t count; };

static int backing = -1;
static off_t backing_size;
static long delay_ms;
static const char *bad_file;
static struct ranges fixed_bad;   // from --bad, for the whole run
static struct ranges file_bad;    // from --bad-file, replaced on SIGHUP
static struct ranges wearing;     // from --fail-after, with wearing_reads_left[i] good reads left each
static uint64_t *wearing_reads_left;
static pthread_mutex_t bad_lock = PTHREAD_MUTEX_INITIALIZER;

// Set by the signal handlers, read by the file system's threads: only sig_atomic_t is safe here.
static volatile sig_atomic_t vanished;
static volatile sig_atomic_t reload_requested;

static void on_vanish(int sig) { (void)sig; vanished = 1; }
static void on_reappear(int sig) { (void)sig; vanished = 0; }
static void on_reload(int sig) { (void)sig; reload_requested = 1; }

static int append_range(struct ranges *list, uint64_t start, uint64_t length) {
    struct range *grown = realloc(list->items, (list->count + 1) * sizeof *grown);
    if (!grown) return -1;
    grown[list->count++] = (struct range){ start, length };
    list->items = grown;
    return 0;
}

// "START:LENGTH" or "START LENGTH", decimal or 0x hex; 0 when it parsed.
static int parse_range(const char *text, char separator, uint64_t *start, uint64_t *length) {
    char *end;
    errno = 0;
    *start = strtoull(text, &end, 0);
    if (errno || end == text || *end != separator) return -1;
    const char *rest = end + 1;
    while (separator == ' ' && *rest == ' ') rest++;
    *length = strtoull(rest, &end, 0);
    if (errno || end == rest) return -1;
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r') end++;
    return *end == '\0' ? 0 : -1;
}

static int load_bad_file(const char *path, struct ranges *into) {
    FILE *file = fopen(path, "re");
    if (!file) { perror(path); return -1; }
    struct ranges loaded = { NULL, 0 };
    char line[256];
    int status = 0;
    for (unsigned number = 1; fgets(line, sizeof line, file); number++) {
        char *text = line;
        while (*text == ' ' || *text == '\t') text++;
        if (*text == '#' || *text == '\n' || *text == '\r' || *text == '\0') continue;
        for (char *tab; (tab = strchr(text, '\t'));) *tab = ' ';
        uint64_t start, length;
        if (parse_range(text, ' ', &start, &length) != 0 || append_range(&loaded, start, length) != 0) {
            fprintf(stderr, "%s:%u: expected START LENGTH\n", path, number);
            status = -1;
            break;
        }
    }
    fclose(file);
    if (status != 0) { free(loaded.items); return -1; }
    free(into->items);
    *into = loaded;
    return 0;
}

// Rereads the bad file if SIGHUP asked; a bad file that does not parse leaves the old ranges.
static void apply_reload(void) {
    if (!reload_requested || !bad_file) return;
    pthread_mutex_lock(&bad_lock);
    if (reload_requested) {
        // Cleared before reading, so a SIGHUP that arrives during the read is not lost.
        reload_requested = 0;
        if (load_bad_file(bad_file, &file_bad) != 0) fprintf(stderr, "faultfile: kept the previous bad ranges\n");
    }
    pthread_mutex_unlock(&bad_lock);
}

static int overlaps(const struct ranges *list, uint64_t offset, uint64_t size) {
    for (size_t index = 0; index < list->count; index++) {
        const struct range *bad = &list->items[index];
        if (bad->length > 0 && offset < bad->start + bad->length && bad->start < offset + size) return 1;
    }
    return 0;
}

// "START:LENGTH:READS"; 0 when it parsed and was added.
static int append_wearing(const char *text) {
    const char *last = strrchr(text, ':');
    if (!last || last == text) return -1;
    char *prefix = strndup(text, (size_t)(last - text));
    if (!prefix) return -1;
    uint64_t start, length;
    int parsed = parse_range(prefix, ':', &start, &length);
    free(prefix);
    char *end;
    errno = 0;
    uint64_t reads = strtoull(last + 1, &end, 0);
    if (parsed != 0 || errno || end == last + 1 || *end != '\0') return -1;
    uint64_t *grown = realloc(wearing_reads_left, (wearing.count + 1) * sizeof *grown);
    if (!grown) return -1;
    wearing_reads_left = grown;
    wearing_reads_left[wearing.count] = reads;
    return append_range(&wearing, start, length);
}

// Each wearing range the read touches uses up one of its good reads; the read fails once any has none.
static int wears_out(uint64_t offset, uint64_t size) {
    int failed = 0;
    for (size_t index = 0; index < wearing.count; index++) {
        const struct range *worn = &wearing.items[index];
        if (!(offset < worn->start + worn->length && worn->start < offset + size)) continue;
        if (wearing_reads_left[index] == 0) failed = 1;
        else wearing_reads_left[index]--;
    }
    return failed;
}

static int is_bad(uint64_t offset, uint64_t size) {
    pthread_mutex_lock(&bad_lock);
    int bad = overlaps(&fixed_bad, offset, size) || overlaps(&file_bad, offset, size);
    if (wears_out(offset, size)) bad = 1;
    pthread_mutex_unlock(&bad_lock);
    return bad;
}

// The text of /faults into buffer (NULL to measure); returns its length.
static size_t describe_faults(char *buffer, size_t capacity) {
    size_t length = 0;
    const struct ranges *lists[] = { &fixed_bad, &file_bad };
    pthread_mutex_lock(&bad_lock);
    for (size_t list = 0; list < 2; list++) {
        for (size_t index = 0; index < lists[list]->count; index++) {
            const struct range *bad = &lists[list]->items[index];
            char line[48];
            int written = snprintf(line, sizeof line, "%" PRIu64 " %" PRIu64 "\n", bad->start, bad->length);
            if (buffer && length + (size_t)written <= capacity) memcpy(buffer + length, line, (size_t)written);
            length += (size_t)written;
        }
    }
    pthread_mutex_unlock(&bad_lock);
    return length;
}

static void *fault_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
    (void)conn;
    // Sizes change under the kernel when the disk vanishes: never trust a cached one.
    cfg->attr_timeout = 0;
    cfg->entry_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->kernel_cache = 0;
    return NULL;
}

static int fault_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
    (void)fi;
    apply_reload();
    memset(st, 0, sizeof *st);
    if (strcmp(path, "/") == 0) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
        return 0;
    }
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    if (strcmp(path, "/image") == 0) {
        // Size and modification time follow BACKING, so a test can change the file while it is read.
        struct stat current;
        off_t size = backing_size;
        if (fstat(backing, &current) == 0) {
            size = current.st_size;
            st->st_mtim = current.st_mtim;
        }
        st->st_size = vanished ? 0 : size;
        return 0;
    }
    if (strcmp(path, "/faults") == 0) {
        st->st_size = (off_t)describe_faults(NULL, 0);
        return 0;
    }
    return -ENOENT;
}

static int fault_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset, struct fuse_file_info *fi,
                         enum fuse_readdir_flags flags) {
    (void)offset; (void)fi; (void)flags;
    if (strcmp(path, "/") != 0) return -ENOENT;
    fill(buf, ".", NULL, 0, 0);
    fill(buf, "..", NULL, 0, 0);
    fill(buf, "image", NULL, 0, 0);
    fill(buf, "faults", NULL, 0, 0);
    return 0;
}

static int fault_open(const char *path, struct fuse_file_info *fi) {
    if (strcmp(path, "/image") != 0 && strcmp(path, "/faults") != 0) return -ENOENT;
    // /image may be opened read-write so that a loop device can be attached writable and then
    // protected only by its kernel read-only flag (which a test clears, as a disk revalidation
    // can); there is no write operation, so any write fails.
    if ((fi->flags & O_ACCMODE) != O_RDONLY && strcmp(path, "/image") != 0) return -EACCES;
    fi->direct_io = 1;
    fi->keep_cache = 0;
    return 0;
}

static int read_faults(char *buf, size_t size, off_t offset) {
    size_t length = describe_faults(NULL, 0);
    char *text = malloc(length + 1);
    if (!text) return -ENOMEM;
    // The ranges could change between measuring and writing; the shorter text wins.
    size_t written = describe_faults(text, length);
    if (written < length) length = written;
    size_t copied = 0;
    if ((size_t)offset < length) {
        copied = length - (size_t)offset < size ? length - (size_t)offset : size;
        memcpy(buf, text + offset, copied);
    }
    free(text);
    return (int)copied;
}

static int fault_read(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi) {
    (void)fi;
    apply_reload();
    if (strcmp(path, "/faults") == 0) return read_faults(buf, size, offset);
    if (delay_ms > 0) {
        struct timespec pause = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
        while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {}
    }
    if (vanished) return -ENXIO;
    if (size > 0 && is_bad((uint64_t)offset, size)) return -EIO;
    ssize_t got = pread(backing, buf, size, offset);
    return got < 0 ? -errno : (int)got;
}

static const struct fuse_operations operations = {
    .init = fault_init, .getattr = fault_getattr, .readdir = fault_readdir, .open = fault_open, .read = fault_read,
};

static int usage(const char *program) {
    fprintf(stderr,
            "usage: %s BACKING MOUNTPOINT [--delay-ms N] [--bad START:LENGTH]... [--bad-file PATH]\n"
            "       [--fail-after START:LENGTH:READS]... [-- FUSE options]\n",
            program);
    return 64;
}

int main(int argc, char *argv[]) {
    if (argc < 3) return usage(argv[0]);
    backing = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (backing < 0) { perror(argv[1]); return 66; }
    backing_size = lseek(backing, 0, SEEK_END);

    // FUSE sees: program MOUNTPOINT -f [options after --]
    char **fuse_argv = calloc((size_t)argc + 2, sizeof *fuse_argv);
    if (!fuse_argv) return 71;
    int fuse_argc = 0;
    fuse_argv[fuse_argc++] = argv[0];
    fuse_argv[fuse_argc++] = argv[2];
    fuse_argv[fuse_argc++] = "-f";
    for (int index = 3; index < argc; index++) {
        const char *option = argv[index];
        const char *value = index + 1 < argc ? argv[index + 1] : NULL;
        if (strcmp(option, "--") == 0) {
            while (++index < argc) fuse_argv[fuse_argc++] = argv[index];
            break;
        }
        if (!value) return usage(argv[0]);
        index++;
        if (strcmp(option, "--delay-ms") == 0) {
            char *end;
            delay_ms = strtol(value, &end, 10);
            if (*end != '\0' || delay_ms < 0) return usage(argv[0]);
        } else if (strcmp(option, "--bad") == 0) {
            uint64_t start, length;
            if (parse_range(value, ':', &start, &length) != 0) return usage(argv[0]);
            if (append_range(&fixed_bad, start, length) != 0) return 71;
        } else if (strcmp(option, "--fail-after") == 0) {
            if (append_wearing(value) != 0) return usage(argv[0]);
        } else if (strcmp(option, "--bad-file") == 0) {
            // Absolute, because fuse_main changes to / before SIGHUP can ask for it again.
            bad_file = realpath(value, NULL);
            if (!bad_file) { perror(value); return 66; }
            if (load_bad_file(bad_file, &file_bad) != 0) return 66;
        } else {
            return usage(argv[0]);
        }
    }

    // Installed before fuse_main, which then leaves SIGHUP alone: libfuse only claims signals whose
    // handler is still the default, and its own SIGHUP handler would unmount.
    struct sigaction action;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    action.sa_handler = on_vanish;
    sigaction(SIGUSR1, &action, NULL);
    action.sa_handler = on_reappear;
    sigaction(SIGUSR2, &action, NULL);
    action.sa_handler = on_reload;
    sigaction(SIGHUP, &action, NULL);
    // A parent's worker thread (libdispatch, Swift concurrency) may have these blocked, and a
    // blocked mask survives fork and exec: unblock them, or the test's signals never arrive.
    sigset_t controls;
    sigemptyset(&controls);
    sigaddset(&controls, SIGUSR1);
    sigaddset(&controls, SIGUSR2);
    sigaddset(&controls, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &controls, NULL);

    return fuse_main(fuse_argc, fuse_argv, &operations, NULL);
}
