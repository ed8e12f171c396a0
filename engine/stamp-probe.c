// The settled stamp's stat check, natively.
// `npm install` / `npm ci` compile it beside the native launcher (scripts/bundle.mjs); without a C
// compiler the build stats the stamp's paths itself (engine/stamp.ts).
//
// Why: a no-op build of 10,000 targets must look at 11,000 paths. From node that is ~3.5 µs a
// path (~40 ms, a third of the build's own time), here ~1 µs.
//
// It only ever confirms. A path is confirmed when its stat gives exactly the signature the stamp
// recorded for it, `f:dev:ino:size:mtimeNs:ctimeNs` as engine/stamp.ts writes it; every other path
// (changed, absent, racy, a symlink where an output was, an error, a number JavaScript would
// round, a path that is not plainly relative or not well-formed UTF-8) is printed for the build
// to look at itself, with the same code as when this program is missing. A wrong "unconfirmed"
// costs a stat; a wrong "confirmed" would be a stale build, so anything unusual is unconfirmed.
// The build starts it once the targets module has run and the key of its specs is computed: both
// run the module's code, which may write files its targets read.
//
//   argv: <root> <stamp file> <the stamp file's signature dev:ino:size:mtimeNs:ctimeNs>
//   the stamp file: one line of JSON, then per path <kind 'o'|'i'>\0<signature>\0<path>\0
//   stdout: the index of every unconfirmed path, one per line, then "end <number of records>\n";
//   or "stale\n" when the file is no longer the one the build read (a rename put another in its
//   place), "cut\n" when its last record is cut short.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Integers above 2^53 reach the stamp through a JavaScript Number, rounded: never confirmed. */
#define EXACT_LIMIT (UINT64_C(1) << 53)
#define NS_LIMIT INT64_C(9000000000)

/* Mirrors isNormalRel (engine/disk.ts): a path node would join by hand rather than normalise. */
static int normal_rel(const char *p) {
  size_t n = strlen(p);
  if (n == 0 || strcmp(p, ".") == 0 || p[0] == '/' || p[n - 1] == '/') return 0;
  if (strstr(p, "//") || strstr(p, "..") || strncmp(p, "./", 2) == 0 || strstr(p, "/./")) return 0;
  if (n >= 2 && strcmp(p + n - 2, "/.") == 0) return 0;
  return 1;
}

/*
 * Well-formed UTF-8 (no overlong form, surrogate or value above U+10FFFF): the build decodes the
 * records as UTF-8, and a malformed byte becomes U+FFFD there, another path than the bytes here.
 */
static int utf8_ok(const unsigned char *p) {
  while (*p) {
    unsigned c = *p;
    int n = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
    if (n < 0) return 0;
    for (int k = 1; k <= n; k++) if ((p[k] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;
    if (c == 0xED && p[1] > 0x9F) return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;
    if (c == 0xF4 && p[1] > 0x8F) return 0;
    p += n + 1;
  }
  return 1;
}

static int sig_of(char *dst, size_t cap, const struct stat *st) {
  uint64_t dev = (uint64_t)st->st_dev, ino = (uint64_t)st->st_ino, size = (uint64_t)st->st_size;
  if (dev >= EXACT_LIMIT || ino >= EXACT_LIMIT || st->st_size < 0 || size >= EXACT_LIMIT) return 0;
  if (st->st_mtim.tv_sec > NS_LIMIT || st->st_mtim.tv_sec < -NS_LIMIT || st->st_ctim.tv_sec > NS_LIMIT || st->st_ctim.tv_sec < -NS_LIMIT) return 0;
  int64_t m = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
  int64_t c = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
  char kind = S_ISREG(st->st_mode) ? 'f' : S_ISDIR(st->st_mode) ? 'd' : 'o';
  int w = snprintf(dst, cap, "%c:%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%" PRId64 ":%" PRId64, kind, dev, ino, size, m, c);
  return w > 0 && (size_t)w < cap;
}

/* Appends to a buffer flushed to stdout when full; exits when the build has gone. */
static char obuf[65536];
static size_t olen;
static void flush_out(void) {
  size_t off = 0;
  while (off < olen) {
    ssize_t w = write(1, obuf + off, olen - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    off += (size_t)w;
  }
  olen = 0;
}
static void emit(const char *s) {
  size_t n = strlen(s);
  if (olen + n > sizeof obuf) flush_out();
  memcpy(obuf + olen, s, n);
  olen += n;
}

struct rec {
  const char *kind, *want, *rel;
  int ok;
};

struct half {
  struct rec *recs;
  size_t from, to;
  const char *root;
};

/* Stats records [from, to) and marks those whose signature is exactly the recorded one. */
static void *stat_range(void *arg) {
  const struct half *h = arg;
  size_t root_len = strlen(h->root);
  char full[PATH_MAX + 2];
  char sig[160];
  if (root_len + 2 >= sizeof full) return NULL; // nothing confirmed: the build looks itself
  memcpy(full, h->root, root_len);
  full[root_len] = '/';
  for (size_t i = h->from; i < h->to; i++) {
    struct rec *r = &h->recs[i];
    if (!((r->kind[0] == 'o' || r->kind[0] == 'i') && r->kind[1] == '\0' && r->want[0] == 'f' && r->want[1] == ':')) continue;
    if (strcmp(h->root, "/") == 0 || !normal_rel(r->rel) || !utf8_ok((const unsigned char *)r->rel)) continue;
    size_t rel_len = strlen(r->rel);
    if (root_len + 1 + rel_len >= sizeof full) continue;
    memcpy(full + root_len + 1, r->rel, rel_len + 1);
    struct stat st;
    // An output is looked at as itself (a symlink there is the build's to refuse), an input
    // through its links, as engine/stamp.ts does.
    int got = r->kind[0] == 'o' ? lstat(full, &st) : stat(full, &st);
    r->ok = got == 0 && S_ISREG(st.st_mode) && sig_of(sig, sizeof sig, &st) && strcmp(sig, r->want) == 0;
  }
  return NULL;
}

/* No answer: the build stats every path itself. */
static int refuse(const char *why) {
  emit(why);
  flush_out();
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: hubmake-stamp-probe <root> <stamp file> <its signature>\n");
    return 2;
  }
  const char *root = argv[1];
  // Without blocking: a FIFO put in the stamp's place must not hold the build (fstat refuses it).
  int fd = open(argv[2], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat self;
  char sig[160];
  if (fd < 0 || fstat(fd, &self) != 0 || !S_ISREG(self.st_mode) || !sig_of(sig, sizeof sig, &self) || strcmp(sig + 2, argv[3]) != 0) return refuse("stale\n");
  size_t len = (size_t)self.st_size;
  char *text = malloc(len + 1);
  if (!text) return 1;
  size_t got = 0;
  while (got < len) {
    ssize_t r = read(fd, text + got, len - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (got != len) return refuse("stale\n");
  text[len] = '\0';
  char *p = memchr(text, '\n', len);
  if (!p) return refuse("stale\n");
  p++;
  char *end = text + len;
  // The records first (three NUL-terminated fields each; one cut short: no answer), then their
  // stats on two threads, the build's thread being idle while it waits for the answer (a 10k
  // no-op: ~5 ms less than one thread, 15 alternating runs each).
  size_t cap = 1024, n = 0;
  struct rec *recs = malloc(cap * sizeof *recs);
  if (!recs) return 1;
  while (p < end) {
    char *kind = p;
    char *want = kind + strnlen(kind, (size_t)(end - kind)) + 1;
    char *rel = want < end ? want + strnlen(want, (size_t)(end - want)) + 1 : end;
    char *next = rel < end ? rel + strnlen(rel, (size_t)(end - rel)) + 1 : end;
    if (next > end || rel >= end) return refuse("cut\n");
    p = next;
    if (n == cap) {
      cap *= 2;
      recs = realloc(recs, cap * sizeof *recs);
      if (!recs) return 1;
    }
    recs[n].kind = kind;
    recs[n].want = want;
    recs[n].rel = rel;
    recs[n].ok = 0;
    n++;
  }
  struct half halves[2] = {{recs, 0, n / 2, root}, {recs, n / 2, n, root}};
  pthread_t other;
  int threaded = n >= 2 && pthread_create(&other, NULL, stat_range, &halves[1]) == 0;
  stat_range(&halves[0]);
  if (threaded) pthread_join(other, NULL);
  else stat_range(&halves[1]);
  char line[32];
  unsigned long i = 0;
  for (; i < n; i++) {
    if (!recs[i].ok) {
      snprintf(line, sizeof line, "%lu\n", i);
      emit(line);
    }
  }
  snprintf(line, sizeof line, "end %lu\n", i);
  emit(line);
  flush_out();
  return 0;
}
