/*
 * The pool's per-file system calls in one call each (src/hash/native-io.ts loads it;
 * src/hash/worker.ts uses it where it loads). Perf: a small file sent by a local peer took
 * thirteen calls from JavaScript into Node's fs, each with its own exception path and a
 * Stats object per stat; here it is one per side (see bench/RESULTS.md). And the placement
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

static double *doubles_arg(napi_env env, napi_value v, size_t need, const char *what) {
  napi_typedarray_type t;
  size_t len;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, &len, &data, NULL, NULL) != napi_ok ||
      t != napi_float64_array || len < need) {
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
  /* O_NONBLOCK: see SOURCE_OPEN in src/hash/worker.ts (a FIFO does not hold the thread). */
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  free(path);
  if (fd < 0) {
    out[0] = STEP_OPEN;
    return number(env, -errno);
  }
  int64_t got = 0;
  while (got < length) {
    ssize_t n = pread(fd, data + at + got, (size_t)(length - got), (off_t)(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      out[0] = STEP_READ;
      return number(env, -e);
    }
    if (n == 0) break;
    got += n;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    out[0] = STEP_FSTAT;
    return number(env, -e);
  }
  close(fd);
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
    step = (s);                                                                               \
    if ((call) != 0) {                                                                        \
      e = errno;                                                                              \
      goto done;                                                                              \
    }                                                                                         \
  } while (0)

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
  int step = STEP_OPEN, e = 0;
  /* Created with its mode, so most files need no fchmod (the umask may take bits away: the
   * mode is checked below). Perf: an fchmod per file cost ~1.7 s of CPU in a 1M-file push.
   * The file is not visible with that mode to anyone else: the transfer cache is private. */
  mode_t mode = (mode_t)meta[0] & 07777;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  struct stat st;
  if (fd < 0) {
    e = errno;
    goto done;
  }
  step = STEP_WRITE;
  for (int64_t put = 0; put < length;) {
    int64_t want = length - put < WRITE_SLICE ? length - put : WRITE_SLICE;
    ssize_t n = write(fd, data + at + put, (size_t)want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      e = errno;
      goto done;
    }
    put += n;
  }
  step = STEP_FCHOWN;
  if ((meta[1] != -1 || meta[2] != -1) &&
      fchown(fd, (uid_t)(int64_t)meta[1], (gid_t)(int64_t)meta[2]) != 0 && errno != EPERM) {
    e = errno;
    goto done;
  }
  if (!isnan(meta[3]) || !isnan(meta[4])) {
    struct timespec ts[2] = {ms_timespec(meta[3]), ms_timespec(meta[4])};
    STEP(STEP_FUTIMES, futimens(fd, ts));
  }
  STEP(STEP_FSTAT, fstat(fd, &st));
  /* The umask took bits away, or fchown cleared set-user/group-ID: set the mode now (after
   * fchown, so those bits stay), and answer the stat as it then is. */
  if ((st.st_mode & 07777) != mode) {
    STEP(STEP_FCHMOD, fchmod(fd, mode));
    STEP(STEP_FSTAT, fstat(fd, &st));
  }
done:
  if (fd >= 0) close(fd);
  if (e != 0) {
    free(path);
    free(target);
    out[0] = step;
    return number(env, -e);
  }
  out[0] = (double)st.st_size;
  out[1] = mtime_ms(&st);
  out[2] = (double)(st.st_mode & 07777);
  out[3] = (double)st.st_ino;
  out[4] = (double)st.st_uid;
  out[5] = (double)st.st_gid;
  out[6] = target != NULL && place(path, target);
  free(path);
  free(target);
  return number(env, 0);
}

#undef STEP

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
  if (napi_create_function(env, "setTimes", NAPI_AUTO_LENGTH, set_times, NULL, &fn) == napi_ok)
    napi_set_named_property(env, exports, "setTimes", fn);
  if (napi_create_function(env, "xxh64", NAPI_AUTO_LENGTH, xxh64, NULL, &fn) == napi_ok)
    napi_set_named_property(env, exports, "xxh64", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
