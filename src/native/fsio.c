/*
 * The pool's per-file system calls in one call each, and a whole task's files in one
 * (src/hash/native-io.ts loads it; src/hash/worker.ts uses it where it loads). Perf: a
 * small file sent by a local peer took thirteen calls from JavaScript into Node's fs, each
 * with its own exception path and a Stats object per stat; here it is one per side, and one
 * per batch of files (see bench/RESULTS.md). And the placement
 * is atomic: renameat2(RENAME_NOREPLACE) where Node has only an lstat then a rename. The
 * times set are the nanosecond nearest to the milliseconds given (setTimes too).
 *
 * readFile(path, data, at, length, offset, out) -> number
 *   open(O_RDONLY | O_NOFOLLOW | O_NONBLOCK), pread into data[at, at + length) from the
 *   file's offset until length bytes or the end of the file, fstat, close. Returns the bytes
 *   read, with out[0..3) = st_size, mtimeMs (as Node computes it), st_ino; or a negative
 *   errno, with out[0] = the failed step (STEP_*).
 *
 * createFile(path, data, at, length, meta, placeAt, out) -> number
 *   open(O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, meta[0]), write data[at, at + length),
 *   fchown(meta[1], meta[2]) unless both are -1 (EPERM ignored: without the privilege the
 *   file keeps the writer's owner), futimens(meta[3], meta[4]): access and modification
 *   times in milliseconds (NaN: now), unless both are NaN; fstat, and fchmod(meta[0]) then
 *   fstat again only when the mode differs (the umask, or fchown clearing set-ID bits); close;
 *   then, when placeAt is a string, a rename there that fails if anything is at placeAt.
 *   The bytes go in write(2) calls of at most WRITE_SLICE. Returns 0, with out[0..7) =
 *   st_size, mtimeMs, st_mode & 07777, st_ino, st_uid, st_gid, and 1 when placed (0:
 *   something was there, or the rename failed: the file stays at path); or a negative errno
 *   with out[0] = the failed step. A failed file is left at path for the caller to remove,
 *   as Node's fs would leave it.
 *
 * readBatch(text, nums, data, cursor, out) -> string
 * writeBatch(text, nums, data, trusted, cursor, out) -> string
 *   A pool task whole: the files of a packed read or write task (src/hash/task-codec.ts
 *   lays them out) each read as readFile reads it and its pieces hashed, or each checked
 *   against the sender's digests and created as createFile creates it (or written into the
 *   file that exists); the outcomes written as task-codec.ts packs them: their numbers into
 *   out, their strings as the call's value. A file whose system call fails (or, read, that
 *   is no longer what the scan saw) stops the call after it, with the cursor saying why
 *   (CUR_*); JavaScript adds its outcome (Node's message) and calls again, to go on after
 *   it. Perf: the workers' JavaScript per file (unpacking it, a call and a result object,
 *   the digests as BigInt and hex, packing the outcome) cost ~4.3 s of user CPU in a 1M
 *   small-file push, a fifth of async's (bench/RESULTS.md).
 *
 * setTimes(path, atimeMs, mtimeMs, nofollow) -> number
 *   utimensat, with AT_SYMLINK_NOFOLLOW when nofollow (a link's own times); the times as
 *   createFile takes them. Returns 0, or a negative errno.
 *
 * xxh64(data, at, length) -> bigint
 *   The XXH64 (seed 0) of data[at, at + length): a piece's digest (src/hash/digest.ts), the
 *   same number as xxhash-wasm's h64 of those bytes. Perf: hashed where they lie, with no
 *   copy into wasm memory, at about twice xxhash-wasm's speed (bench/RESULTS.md).
 *   xxHash's own header is in vendor/ (xxHash 0.8.1, BSD-2-Clause, as Debian ships it).
 *
 * Nothing here keeps state between calls: the pool's threads call it at the same time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Only XXH64 is used; every function inline, nothing else of the header compiled in. */
#define XXH_INLINE_ALL
#define XXH_NO_XXH3
#include "vendor/xxhash.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

/* The most bytes one write(2) is given: WRITE_SLICE_BYTES in src/hash/worker.ts says why. */
#define WRITE_SLICE (256 * 1024)

/* The failed step, as out[0] says it (native-io.ts names the system call). */
enum { STEP_OPEN = 1, STEP_READ, STEP_WRITE, STEP_FCHMOD, STEP_FCHOWN, STEP_FUTIMES, STEP_FSTAT };

static napi_value number(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

/* A string argument as a new C string (free it), or NULL after throwing. */
static char *string_arg(napi_env env, napi_value v, const char *what) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  char *s = malloc(len + 1);
  if (!s) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

/* The bytes of a Uint8Array, or NULL after throwing. An empty one may have no memory at
 * all (its pointer NULL): a pointer to nothing is returned for it. */
static unsigned char *bytes_arg(napi_env env, napi_value v, size_t *len) {
  static unsigned char nothing[1];
  napi_typedarray_type t;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, len, &data, NULL, NULL) != napi_ok ||
      t != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "data must be a Uint8Array");
    return NULL;
  }
  return data != NULL ? data : nothing;
}

/* A Float64Array argument's numbers and their count, or NULL after throwing `what`. */
static double *doubles_len(napi_env env, napi_value v, size_t *len, const char *what) {
  napi_typedarray_type t;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, len, &data, NULL, NULL) != napi_ok ||
      t != napi_float64_array) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  return data;
}

/* A Float64Array argument of `need` numbers or more, or NULL after throwing `what`. */
static double *doubles_arg(napi_env env, napi_value v, size_t need, const char *what) {
  size_t len;
  double *data = doubles_len(env, v, &len, what);
  if (data && len < need) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  return data;
}

/* A non-negative integer argument, or -1 after throwing. */
static int64_t size_arg(napi_env env, napi_value v) {
  int64_t n;
  if (napi_get_value_int64(env, v, &n) != napi_ok || n < 0) {
    napi_throw_type_error(env, NULL, "offsets and lengths must be non-negative integers");
    return -1;
  }
  return n;
}

/* The call's first n arguments into argv, or false after throwing `usage` (fewer given). */
static bool args(napi_env env, napi_callback_info info, size_t n, napi_value *argv,
                 const char *usage) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  return true;
}

/* data, at, length (three arguments from argv): the span data[at, at + length) of a
 * Uint8Array, or NULL after throwing. */
static unsigned char *span_args(napi_env env, napi_value *argv, int64_t *at, int64_t *length) {
  size_t cap;
  unsigned char *data = bytes_arg(env, argv[0], &cap);
  if (!data) return NULL;
  *at = size_arg(env, argv[1]);
  *length = *at < 0 ? -1 : size_arg(env, argv[2]);
  if (*length < 0) return NULL;
  if ((uint64_t)*at + (uint64_t)*length > cap) {
    napi_throw_range_error(env, NULL, "the bytes are not all in data");
    return NULL;
  }
  return data;
}

/* As Node's msFromTimeSpec: sec * 1e3 + nsec / 1e6 in doubles (no FMA: binding.gyp). */
static double mtime_ms(const struct stat *st) {
  return (double)st->st_mtim.tv_sec * 1e3 + (double)st->st_mtim.tv_nsec / 1e6;
}

/* Milliseconds since the epoch (as Node's Stats.mtimeMs) as a timespec, to the nearest
 * nanosecond the double holds (Node's fs takes seconds in a double, and libuv 1.46, Node
 * 20's, then truncates them to whole microseconds: a copy's time could land more than a
 * microsecond before its source's). NaN is now. */
static struct timespec ms_timespec(double ms) {
  struct timespec ts;
  if (isnan(ms)) {
    ts.tv_sec = 0;
    ts.tv_nsec = UTIME_NOW;
    return ts;
  }
  double sec = floor(ms / 1000);
  long nsec = (long)llround((ms - sec * 1000) * 1e6);
  if (nsec >= 1000000000) {
    sec += 1;
    nsec -= 1000000000;
  } else if (nsec < 0) {
    sec -= 1;
    nsec += 1000000000;
  }
  ts.tv_sec = (time_t)sec;
  ts.tv_nsec = nsec;
  return ts;
}

/* open, pread into buf until length bytes or the end of the file, fstat, close: 0 with the
 * bytes read in *got and the stat after in *st, or an errno with the failed step in *step. */
static int read_one(const char *path, unsigned char *buf, int64_t length, int64_t offset,
                    int64_t *got, struct stat *st, int *step) {
  /* O_NONBLOCK: see SOURCE_OPEN in src/hash/worker.ts (a FIFO does not hold the thread). */
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *step = STEP_OPEN;
    return errno;
  }
  *got = 0;
  while (*got < length) {
    ssize_t n = pread(fd, buf + *got, (size_t)(length - *got), (off_t)(offset + *got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      *step = STEP_READ;
      return e;
    }
    if (n == 0) break;
    *got += n;
  }
  if (fstat(fd, st) != 0) {
    int e = errno;
    close(fd);
    *step = STEP_FSTAT;
    return e;
  }
  close(fd);
  return 0;
}

static napi_value read_file(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!args(env, info, 6, argv, "readFile(path, data, at, length, offset, out)")) return NULL;
  int64_t at, length;
  unsigned char *data = span_args(env, argv + 1, &at, &length);
  if (!data) return NULL;
  int64_t offset = size_arg(env, argv[4]);
  if (offset < 0) return NULL;
  double *out = doubles_arg(env, argv[5], 3, "out must be a Float64Array of 3 or more");
  if (!out) return NULL;
  char *path = string_arg(env, argv[0], "readFile: the path must be a string");
  if (!path) return NULL;
  int64_t got;
  struct stat st;
  int step;
  int e = read_one(path, data + at, length, offset, &got, &st, &step);
  free(path);
  if (e != 0) {
    out[0] = step;
    return number(env, -e);
  }
  out[0] = (double)st.st_size;
  out[1] = mtime_ms(&st);
  out[2] = (double)st.st_ino;
  return number(env, (double)got);
}

/* renameat2(RENAME_NOREPLACE); where the file system or kernel lacks it, an lstat of the
 * target and a rename (as Node's fs can do it). 1 when placed. */
static int place(const char *from, const char *to) {
  if (syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 1;
  if (errno != EINVAL && errno != ENOSYS) return 0;
  struct stat st;
  if (lstat(to, &st) == 0 || errno != ENOENT) return 0;
  return rename(from, to) == 0;
}

/* One step of createFile: a call that fails keeps its errno and step for the answer. */
#define STEP(s, call)                                                                         \
  do {                                                                                        \
    *step = (s);                                                                              \
    if ((call) != 0) {                                                                        \
      e = errno;                                                                              \
      goto done;                                                                              \
    }                                                                                         \
  } while (0)

/* createFile's work (see the top of this file): 0 with the stat in *st and *placed set, or
 * an errno with the failed step in *step. meta: mode, uid, gid, atimeMs, mtimeMs. */
static int create_one(const char *path, const unsigned char *data, int64_t length,
                      const double *meta, const char *target, struct stat *st, bool *placed,
                      int *step) {
  int e = 0;
  *step = STEP_OPEN;
  /* Created with its mode, so most files need no fchmod (the umask may take bits away: the
   * mode is checked below). Perf: an fchmod per file cost ~1.7 s of CPU in a 1M-file push.
   * The file is not visible with that mode to anyone else: the transfer cache is private. */
  mode_t mode = (mode_t)meta[0] & 07777;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return errno;
  *step = STEP_WRITE;
  for (int64_t put = 0; put < length;) {
    int64_t want = length - put < WRITE_SLICE ? length - put : WRITE_SLICE;
    ssize_t n = write(fd, data + put, (size_t)want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      e = errno;
      goto done;
    }
    put += n;
  }
  *step = STEP_FCHOWN;
  if ((meta[1] != -1 || meta[2] != -1) &&
      fchown(fd, (uid_t)(int64_t)meta[1], (gid_t)(int64_t)meta[2]) != 0 && errno != EPERM) {
    e = errno;
    goto done;
  }
  if (!isnan(meta[3]) || !isnan(meta[4])) {
    struct timespec ts[2] = {ms_timespec(meta[3]), ms_timespec(meta[4])};
    STEP(STEP_FUTIMES, futimens(fd, ts));
  }
  STEP(STEP_FSTAT, fstat(fd, st));
  /* The umask took bits away, or fchown cleared set-user/group-ID: set the mode now (after
   * fchown, so those bits stay), and answer the stat as it then is. */
  if ((st->st_mode & 07777) != mode) {
    STEP(STEP_FCHMOD, fchmod(fd, mode));
    STEP(STEP_FSTAT, fstat(fd, st));
  }
done:
  close(fd);
  if (e == 0) *placed = target != NULL && place(path, target);
  return e;
}

/* A created file's stat as out[0..6) has it: st_size, mtimeMs, st_mode & 07777, st_ino,
 * st_uid, st_gid (the order of StatNumbers in src/core/packing.ts). */
static void stat_out(double *out, const struct stat *st) {
  out[0] = (double)st->st_size;
  out[1] = mtime_ms(st);
  out[2] = (double)(st->st_mode & 07777);
  out[3] = (double)st->st_ino;
  out[4] = (double)st->st_uid;
  out[5] = (double)st->st_gid;
}

static napi_value create_file(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!args(env, info, 7, argv, "createFile(path, data, at, length, meta, placeAt, out)"))
    return NULL;
  int64_t at, length;
  unsigned char *data = span_args(env, argv + 1, &at, &length);
  if (!data) return NULL;
  double *meta = doubles_arg(env, argv[4], 5, "meta must be a Float64Array of 5 or more");
  double *out = meta ? doubles_arg(env, argv[6], 7, "out must be a Float64Array of 7 or more")
                     : NULL;
  if (!out) return NULL;
  napi_valuetype place_type;
  napi_typeof(env, argv[5], &place_type);
  char *path = string_arg(env, argv[0], "createFile: the path must be a string");
  if (!path) return NULL;
  char *target = NULL;
  if (place_type == napi_string) {
    target = string_arg(env, argv[5], "createFile: placeAt must be a string");
    if (!target) {
      free(path);
      return NULL;
    }
  }
  struct stat st;
  bool placed = false;
  int step;
  int e = create_one(path, data + at, length, meta, target, &st, &placed, &step);
  free(path);
  free(target);
  if (e != 0) {
    out[0] = step;
    return number(env, -e);
  }
  stat_out(out, &st);
  out[6] = placed;
  return number(env, 0);
}

#undef STEP

/* Batches: a pool task's files in one call each (readBatch, writeBatch). */

/* The piece of the content digest (CHUNK_SIZE in src/hash/digest.ts). */
#define CHUNK ((int64_t)4 * 1024 * 1024)

/* The flags of a packed write item and of its outcome (src/hash/task-codec.ts). */
enum { ITEM_CREATE = 2, ITEM_PLACE_AT = 4, ITEM_MTIME = 8, ITEM_ATIME = 16 };
enum { DONE_OK = 1, DONE_STAGED = 2, DONE_PLACED = 4, DONE_DIGEST = 8, DONE_MISMATCH = 16 };

/* The cursor of a batch (a Float64Array of CURSOR numbers, zeros at first), kept between the
 * calls of one batch: a call stops after a file whose system call failed, JavaScript adds
 * that file's outcome (its message is Node's), and the next call goes on after it. */
enum {
  CUR_DONE,  /* files taken */
  CUR_TEXT,  /* where the next string of the task's text starts (its separator) */
  CUR_NUMS,  /* the next number of the task */
  CUR_DATA,  /* readBatch: where the next file's bytes go in data */
  CUR_OUT,   /* the next number of the outcomes */
  CUR_FAILED, /* 1: this call stopped after a failed file (the last one taken) */
  CUR_ERRNO, /* its errno, negative; 0: readBatch found the file changed */
  CUR_STEP,  /* the step that failed (STEP_*) */
  CUR_AFTER, /* readBatch, a changed file: st_size, mtimeMs, st_ino, bytes read (4 numbers) */
  CURSOR = CUR_AFTER + 4
};

/* A packed task (src/core/packing.ts) being read: its text copied as UTF-8 (the NUL before
 * each string ends the one before it; the last ends at the copy's terminator), and its
 * numbers. Anything that does not add up sets bad. */
typedef struct {
  char *text;
  size_t len, at;
  const double *nums;
  size_t count, n;
  bool bad;
} reader_t;

static const char *take_str(reader_t *r) {
  if (r->at >= r->len || r->text[r->at] != '\0') {
    r->bad = true;
    return "";
  }
  const char *s = r->text + r->at + 1;
  r->at += 1 + strlen(s);
  return s;
}

static double take_num(reader_t *r) {
  if (r->n >= r->count) {
    r->bad = true;
    return 0;
  }
  return r->nums[r->n++];
}

/* A number that must be a whole number from 0 to 2^53. */
static int64_t take_size(reader_t *r) {
  double v = take_num(r);
  if (!(v >= 0 && v <= 9007199254740992.0) || v != floor(v)) {
    r->bad = true;
    return 0;
  }
  return (int64_t)v;
}

/* The outcomes' text being written: each string after a NUL, as PackWriter joins them. */
typedef struct {
  char *buf;
  size_t len, cap;
  bool oom;
} text_t;

static void put_text(text_t *t, const char *s, size_t n) {
  if (t->oom) return;
  if (t->len + n > t->cap) {
    size_t cap = t->cap * 2 > t->len + n ? t->cap * 2 : t->len + n + 4096;
    char *b = realloc(t->buf, cap);
    if (!b) {
      t->oom = true;
      return;
    }
    t->buf = b;
    t->cap = cap;
  }
  memcpy(t->buf + t->len, s, n);
  t->len += n;
}

static const char HEX[] = "0123456789abcdef";

/* A digest as pieceHex writes it: 16 lowercase hex digits. */
static void hex16(char *h, uint64_t d) {
  for (int i = 0; i < 16; i++) h[i] = HEX[(d >> (60 - 4 * i)) & 15];
}

static void put_digest(text_t *t, uint64_t d) {
  char h[17];
  h[0] = '\0';
  hex16(h + 1, d);
  put_text(t, h, 17);
}

/* 16 hex digits as a digest; false for anything else. */
static bool parse_hex16(const char *h, uint64_t *d) {
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) {
    char c = h[i];
    int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (x < 0) return false;
    v = v << 4 | (uint64_t)x;
  }
  if (h[16] != '\0') return false;
  *d = v;
  return true;
}

/* The whole file's digest from its pieces' (combineDigests in src/hash/digest.ts: the
 * XXH64 of the pieces' digests, 8 big-endian bytes each). */
static uint64_t combine(const uint64_t *raw, int64_t count, unsigned char *scratch) {
  for (int64_t i = 0; i < count; i++)
    for (int b = 0; b < 8; b++) scratch[i * 8 + b] = (unsigned char)(raw[i] >> (56 - 8 * b));
  return XXH64(scratch, (size_t)count * 8, 0);
}

/* What both batch calls take: the task's text and numbers, the cursor, the outcomes'
 * numbers. */
typedef struct {
  reader_t r;
  double *cursor;
  double *out;
  size_t out_len;
  int64_t count;
} batch_t;


/* Opens a batch where its cursor stands; false after throwing. Free b->r.text after. */
static bool batch_open(napi_env env, napi_value text, napi_value nums, napi_value cursor,
                       napi_value out, batch_t *b) {
  memset(b, 0, sizeof *b);
  size_t cursor_len;
  b->r.nums = doubles_len(env, nums, &b->r.count, "the task's numbers must be a Float64Array");
  b->cursor = b->r.nums ? doubles_len(env, cursor, &cursor_len, "cursor: a Float64Array")
                        : NULL;
  b->out = b->cursor ? doubles_len(env, out, &b->out_len, "out must be a Float64Array") : NULL;
  if (!b->out) return false;
  if (cursor_len < CURSOR || b->r.count < 1 || b->out_len < 1) {
    napi_throw_range_error(env, NULL, "a batch needs its task, a cursor and room for outcomes");
    return false;
  }
  if (napi_get_value_string_utf8(env, text, NULL, 0, &b->r.len) != napi_ok) {
    napi_throw_type_error(env, NULL, "the task's text must be a string");
    return false;
  }
  b->r.text = malloc(b->r.len + 1);
  if (!b->r.text) {
    napi_throw_error(env, NULL, "out of memory");
    return false;
  }
  napi_get_value_string_utf8(env, text, b->r.text, b->r.len + 1, &b->r.len);
  b->count = (int64_t)b->r.nums[0];
  if (b->cursor[CUR_NUMS] == 0) {
    b->cursor[CUR_NUMS] = 1;
    b->cursor[CUR_OUT] = 1;
    b->out[0] = (double)b->count;
  }
  b->r.at = (size_t)b->cursor[CUR_TEXT];
  b->r.n = (size_t)b->cursor[CUR_NUMS];
  b->cursor[CUR_FAILED] = 0;
  return true;
}

/* Where the batch stands, kept for the next call; the outcomes' text of this call as the
 * call's value (or NULL after throwing). */
static napi_value batch_close(napi_env env, batch_t *b, text_t *t, size_t out_at) {
  free(b->r.text);
  b->cursor[CUR_TEXT] = (double)b->r.at;
  b->cursor[CUR_NUMS] = (double)b->r.n;
  b->cursor[CUR_OUT] = (double)out_at;
  napi_value v = NULL;
  if (b->r.bad)
    napi_throw_error(env, NULL, "packed task: its layout does not add up");
  else if (t->oom)
    napi_throw_error(env, NULL, "out of memory");
  else
    napi_create_string_latin1(env, t->len ? t->buf : "", t->len, &v);
  free(t->buf);
  return v;
}

static void failed(double *cursor, int e, int step) {
  cursor[CUR_FAILED] = 1;
  cursor[CUR_ERRNO] = -e;
  cursor[CUR_STEP] = step;
}

/* readBatch(text, nums, data, cursor, out) -> string: read() of src/hash/worker.ts for a
 * whole packed batch of segments (packReadSegments), each read as readFile reads it into
 * data (back to back, from cursor[CUR_DATA]), checked against what it was expected to be
 * and its pieces hashed, the outcomes written as packReadOutcomes lays them out. */
static napi_value read_batch(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!args(env, info, 5, argv, "readBatch(text, nums, data, cursor, out)")) return NULL;
  size_t cap;
  unsigned char *data = bytes_arg(env, argv[2], &cap);
  batch_t b;
  if (!data || !batch_open(env, argv[0], argv[1], argv[3], argv[4], &b)) return NULL;
  double *cur = b.cursor, *out = b.out;
  size_t o = (size_t)cur[CUR_OUT];
  int64_t at = (int64_t)cur[CUR_DATA];
  text_t t = {0};
  while (cur[CUR_DONE] < b.count && !b.r.bad) {
    const char *path = take_str(&b.r);
    int64_t offset = take_size(&b.r), length = take_size(&b.r);
    double size = take_num(&b.r), mtime = take_num(&b.r), ino = take_num(&b.r);
    if (b.r.bad || (uint64_t)(at + length) > cap || o + 4 > b.out_len) {
      b.r.bad = true;
      break;
    }
    cur[CUR_DONE] += 1;
    int64_t got;
    struct stat st;
    int step;
    int e = read_one(path, data + at, length, offset, &got, &st, &step);
    if (e != 0) {
      failed(cur, e, step);
      break;
    }
    double mt = mtime_ms(&st);
    if ((double)st.st_ino != ino || (double)st.st_size != size || mt != mtime || got < length) {
      failed(cur, 0, 0);
      cur[CUR_AFTER] = (double)st.st_size;
      cur[CUR_AFTER + 1] = mt;
      cur[CUR_AFTER + 2] = (double)st.st_ino;
      cur[CUR_AFTER + 3] = (double)got;
      break;
    }
    out[o++] = 1;
    out[o++] = (double)at;
    out[o++] = (double)length;
    out[o++] = (double)((length + CHUNK - 1) / CHUNK);
    for (int64_t p = 0; p < length; p += CHUNK)
      put_digest(&t, XXH64(data + at + p, (size_t)(length - p < CHUNK ? length - p : CHUNK), 0));
    at += length;
  }
  cur[CUR_DATA] = (double)at;
  return batch_close(env, &b, &t, o);
}

/* A piece of a file that exists, written at its offset (writePiece in worker.ts). */
static int write_piece(const char *path, const unsigned char *data, int64_t length,
                       int64_t offset, int *step) {
  *step = STEP_OPEN;
  int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  *step = STEP_WRITE;
  for (int64_t put = 0; put < length;) {
    int64_t want = length - put < WRITE_SLICE ? length - put : WRITE_SLICE;
    ssize_t n = pwrite(fd, data + put, (size_t)want, (off_t)(offset + put));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return e;
    }
    put += n;
  }
  close(fd);
  return 0;
}

/* writeBatch(text, nums, data, trusted, cursor, out) -> string: write() of
 * src/hash/worker.ts for a whole packed batch of items (packWriteItems): each item's pieces
 * checked against the sender's digests (trusted: the bytes were hashed into those digests
 * by this process's own read, and are not hashed again), then written into the file that
 * exists, or the file created and placed as createFile does it; the outcomes written as
 * packWriteOutcomes lays them out. */
static napi_value write_batch(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!args(env, info, 6, argv, "writeBatch(text, nums, data, trusted, cursor, out)"))
    return NULL;
  size_t cap;
  unsigned char *data = bytes_arg(env, argv[2], &cap);
  bool trusted;
  if (data && napi_get_value_bool(env, argv[3], &trusted) != napi_ok) {
    napi_throw_type_error(env, NULL, "writeBatch: trusted must be a boolean");
    return NULL;
  }
  batch_t b;
  if (!data || !batch_open(env, argv[0], argv[1], argv[4], argv[5], &b)) return NULL;
  double *cur = b.cursor, *out = b.out;
  size_t o = (size_t)cur[CUR_OUT];
  text_t t = {0};
  /* Room for the digests of an item of up to 64 pieces (a transfer batch has 2); more
   * are allocated. */
  uint64_t raw_here[64];
  unsigned char scratch_here[64 * 8];
  const char *hex_here[64];
  while (cur[CUR_DONE] < b.count && !b.r.bad) {
    int flags = (int)take_num(&b.r);
    const char *path = take_str(&b.r);
    int64_t offset = take_size(&b.r), start = take_size(&b.r), length = take_size(&b.r);
    int64_t pieces = take_size(&b.r);
    if (b.r.bad || pieces > (int64_t)b.r.len) {
      b.r.bad = true;
      break;
    }
    bool big = pieces > 64;
    const char **hex = big ? malloc(sizeof *hex * (size_t)pieces) : hex_here;
    uint64_t *raw = big ? malloc(sizeof *raw * (size_t)pieces) : raw_here;
    unsigned char *scratch = big ? malloc(8 * (size_t)pieces) : scratch_here;
    if (!hex || !raw || !scratch) {
      t.oom = true;
    } else {
      for (int64_t i = 0; i < pieces; i++) hex[i] = take_str(&b.r);
      double meta[5] = {0, -1, -1, NAN, NAN};
      if (flags & ITEM_CREATE) {
        meta[0] = take_num(&b.r);
        meta[1] = take_num(&b.r);
        meta[2] = take_num(&b.r);
        if (flags & ITEM_MTIME) meta[4] = take_num(&b.r);
        if (flags & ITEM_ATIME) meta[3] = take_num(&b.r);
      }
      const char *place_at = flags & ITEM_PLACE_AT ? take_str(&b.r) : NULL;
      if (b.r.bad || (uint64_t)(start + length) > cap || o + 7 > b.out_len) {
        b.r.bad = true;
      } else {
        cur[CUR_DONE] += 1;
        const unsigned char *bytes = data + start;
        bool bad = pieces != (length + CHUNK - 1) / CHUNK;
        for (int64_t i = 0; i < pieces && !bad; i++) {
          if (trusted && parse_hex16(hex[i], &raw[i])) continue;
          int64_t p = i * CHUNK;
          raw[i] = XXH64(bytes + p, (size_t)(length - p < CHUNK ? length - p : CHUNK), 0);
          char h[16];
          hex16(h, raw[i]);
          bad = memcmp(h, hex[i], 16) != 0 || hex[i][16] != '\0';
        }
        int e = 0, step = 0;
        if (bad) {
          static const char mismatch[] = "\0data did not match the sender digest";
          out[o++] = DONE_MISMATCH;
          put_text(&t, mismatch, sizeof mismatch - 1);
        } else if (!(flags & ITEM_CREATE)) {
          e = write_piece(path, bytes, length, offset, &step);
          if (e == 0) out[o++] = DONE_OK;
        } else {
          struct stat st;
          bool placed = false;
          e = create_one(path, bytes, length, meta, place_at, &st, &placed, &step);
          if (e == 0) {
            out[o++] = DONE_OK | DONE_STAGED | DONE_DIGEST | (placed ? DONE_PLACED : 0);
            stat_out(out + o, &st);
            o += 6;
            put_digest(&t, combine(raw, pieces, scratch));
          }
        }
        if (e != 0) failed(cur, e, step);
      }
    }
    if (big) {
      free(hex);
      free(raw);
      free(scratch);
    }
    if (cur[CUR_FAILED] == 1 || t.oom) break;
  }
  return batch_close(env, &b, &t, o);
}

static napi_value set_times(napi_env env, napi_callback_info info) {
  static const char usage[] = "setTimes(path, atimeMs, mtimeMs, nofollow)";
  napi_value argv[4];
  double atime, mtime;
  bool nofollow;
  if (!args(env, info, 4, argv, usage)) return NULL;
  if (napi_get_value_double(env, argv[1], &atime) != napi_ok ||
      napi_get_value_double(env, argv[2], &mtime) != napi_ok ||
      napi_get_value_bool(env, argv[3], &nofollow) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  char *path = string_arg(env, argv[0], "setTimes: the path must be a string");
  if (!path) return NULL;
  struct timespec ts[2] = {ms_timespec(atime), ms_timespec(mtime)};
  int r = utimensat(AT_FDCWD, path, ts, nofollow ? AT_SYMLINK_NOFOLLOW : 0);
  int e = errno;
  free(path);
  return number(env, r == 0 ? 0 : -e);
}

static napi_value xxh64(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, 3, argv, "xxh64(data, at, length)")) return NULL;
  int64_t at, length;
  unsigned char *data = span_args(env, argv, &at, &length);
  if (!data) return NULL;
  napi_value out;
  napi_create_bigint_uint64(env, (uint64_t)XXH64(data + at, (size_t)length, 0), &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "readFile", NAPI_AUTO_LENGTH, read_file, NULL, &fn) == napi_ok)
    napi_set_named_property(env, exports, "readFile", fn);
  if (napi_create_function(env, "createFile", NAPI_AUTO_LENGTH, create_file, NULL, &fn) ==
      napi_ok)
    napi_set_named_property(env, exports, "createFile", fn);
  if (napi_create_function(env, "readBatch", NAPI_AUTO_LENGTH, read_batch, NULL, &fn) ==
      napi_ok)
    napi_set_named_property(env, exports, "readBatch", fn);
  if (napi_create_function(env, "writeBatch", NAPI_AUTO_LENGTH, write_batch, NULL, &fn) ==
      napi_ok)
    napi_set_named_property(env, exports, "writeBatch", fn);
  if (napi_create_function(env, "setTimes", NAPI_AUTO_LENGTH, set_times, NULL, &fn) == napi_ok)
    napi_set_named_property(env, exports, "setTimes", fn);
  if (napi_create_function(env, "xxh64", NAPI_AUTO_LENGTH, xxh64, NULL, &fn) == napi_ok)
    napi_set_named_property(env, exports, "xxh64", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
