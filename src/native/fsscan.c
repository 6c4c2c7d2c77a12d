/*
 * One directory's listing and the lstat of every name in it, in one call (Perf: a walk of
 * 1M files in 20k directories on one thread takes 3.0-3.2 s with Node's readdirSync and
 * lstatSync, 2.0-2.1 s through this; see bench/RESULTS.md).
 *
 * list(dir, buffer) returns
 *   - [names, nums]: the names joined by '/' (a character no name holds), sorted in
 *     JavaScript's default sort order (UTF-16 code units), and per name, in that order, 7
 *     numbers in nums, which is `buffer` (a Float64Array) when they fit in it, else a new
 *     Float64Array big enough (the caller keeps it for the next call: no allocation per
 *     directory once the buffer has grown to the biggest one). The numbers are: st_mode,
 *     st_size, mtimeMs (computed as Node computes Stats.mtimeMs), st_ino, st_uid, st_gid,
 *     and the errno of its lstat: 0 when it worked; else only st_mode is set, to the
 *     type the listing gave (or 0), and the caller asks Node, which reports the error;
 *   - a negative errno when the directory cannot be opened or read (the caller asks Node,
 *     which reports the error in its own words);
 *   - null when a name is not valid UTF-8 (the caller lists that directory with Node, which
 *     replaces such bytes as it always has).
 * "." and ".." are left out. Nothing here keeps state between calls: scan threads call it
 * at the same time.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIELDS 7

typedef struct {
  size_t off; /* of the name in the arena, which moves while it grows */
  const char *name; /* set once the arena is complete, for the sort */
  size_t len;
  double nums[FIELDS];
} item_t;

/* 1 when s[0..len) is well-formed UTF-8 (no overlong forms, surrogates or values past
 * U+10FFFF), the bytes V8 decodes without replacing anything. */
static int valid_utf8(const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return 0;
    }
    for (size_t k = 1; k <= n; k++) {
      if (i + k >= len || (s[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += n + 1;
  }
  return 1;
}

/* The code point starting at s (well-formed UTF-8; NUL is 0). */
static unsigned decode(const unsigned char *s) {
  unsigned char c = s[0];
  if (c < 0x80) return c;
  if (c < 0xE0) return ((c & 0x1F) << 6) | (s[1] & 0x3F);
  if (c < 0xF0) return ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
  return ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

/* JavaScript's default sort order of the names: UTF-16 code units. UTF-8 bytes compare in
 * code point order, which is the same but for a code point past U+FFFF (a surrogate pair,
 * 0xD800.. in UTF-16) against one in U+E000..U+FFFF. */
static int by_utf16(const void *x, const void *y) {
  const unsigned char *a = (const unsigned char *)((const item_t *)x)->name;
  const unsigned char *b = (const unsigned char *)((const item_t *)y)->name;
  size_t i = 0;
  while (a[i] != 0 && a[i] == b[i]) i++;
  if (a[i] == b[i]) return 0;
  if (a[i] < 0x80 && b[i] < 0x80) return a[i] < b[i] ? -1 : 1;
  while (i > 0 && (a[i] & 0xC0) == 0x80) i--; /* back to the start of the character */
  unsigned ca = decode(a + i), cb = decode(b + i);
  int astral_a = ca > 0xFFFF, astral_b = cb > 0xFFFF;
  if (astral_a != astral_b && (astral_a ? cb : ca) >= 0xE000) return astral_a ? -1 : 1;
  return ca < cb ? -1 : 1;
}

static napi_value number(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

static napi_value list(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_typedarray_type buf_type;
  size_t buf_len = 0;
  void *buf_data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_typedarray_info(env, argv[1], &buf_type, &buf_len, &buf_data, NULL, NULL) !=
          napi_ok ||
      buf_type != napi_float64_array) {
    napi_throw_type_error(env, NULL, "list(dir, buffer) needs a path and a Float64Array");
    return NULL;
  }
  size_t plen;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &plen) != napi_ok) {
    napi_throw_type_error(env, NULL, "list(dir): the path must be a string");
    return NULL;
  }
  char *path = malloc(plen + 1);
  if (!path) return number(env, -ENOMEM);
  napi_get_value_string_utf8(env, argv[0], path, plen + 1, &plen);
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(path);
  if (fd < 0) return number(env, -errno);
  DIR *d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    return number(env, -e);
  }
  size_t cap = 64, count = 0, acap = 4096, alen = 0;
  item_t *items = malloc(cap * sizeof *items);
  char *arena = malloc(acap);
  int failed = 0, ascii = 1, bad_name = 0;
  if (!items || !arena) failed = ENOMEM;
  for (;;) {
    if (failed) break;
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      failed = errno;
      break;
    }
    const char *n = e->d_name;
    if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
    size_t len = strlen(n);
    for (size_t k = 0; k < len; k++)
      if ((unsigned char)n[k] >= 0x80) {
        ascii = 0;
        if (!valid_utf8((const unsigned char *)n, len)) bad_name = 1;
        break;
      }
    if (bad_name) break;
    if (count == cap) {
      item_t *grown = realloc(items, (cap *= 2) * sizeof *items);
      if (!grown) {
        failed = ENOMEM;
        break;
      }
      items = grown;
    }
    if (alen + len + 1 > acap) {
      while (alen + len + 1 > acap) acap *= 2;
      char *grown = realloc(arena, acap);
      if (!grown) {
        failed = ENOMEM;
        break;
      }
      arena = grown;
    }
    memcpy(arena + alen, n, len + 1);
    item_t *it = &items[count++];
    it->off = alen;
    it->len = len;
    alen += len + 1;
    struct stat st;
    double *v = it->nums;
    if (fstatat(fd, n, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      v[0] = (double)st.st_mode;
      v[1] = (double)st.st_size;
      /* As Node's msFromTimeSpec: sec * 1e3 + nsec / 1e6 in doubles (no FMA: binding.gyp). */
      v[2] = (double)st.st_mtim.tv_sec * 1e3 + (double)st.st_mtim.tv_nsec / 1e6;
      v[3] = (double)st.st_ino;
      v[4] = (double)st.st_uid;
      v[5] = (double)st.st_gid;
      v[6] = 0;
    } else {
      v[0] = e->d_type == DT_UNKNOWN ? 0 : (double)DTTOIF(e->d_type);
      v[1] = v[2] = v[3] = v[4] = v[5] = 0;
      v[6] = errno;
    }
  }
  closedir(d);
  if (failed || bad_name) {
    free(items);
    free(arena);
    if (bad_name) {
      napi_value nul;
      napi_get_null(env, &nul);
      return nul;
    }
    return number(env, -failed);
  }
  for (size_t i = 0; i < count; i++) items[i].name = arena + items[i].off;
  qsort(items, count, sizeof *items, by_utf16);
  /* The names joined by '/', in sorted order, and the numbers beside them. */
  char *joined = malloc(alen + 1);
  napi_value ab, nums = argv[1], names, out;
  void *data = buf_data;
  napi_status s = joined ? napi_ok : napi_generic_failure;
  if (s == napi_ok && count * FIELDS > buf_len) {
    size_t n = count * FIELDS > 2 * buf_len ? count * FIELDS : 2 * buf_len;
    s = napi_create_arraybuffer(env, n * sizeof(double), &data, &ab);
    if (s == napi_ok) s = napi_create_typedarray(env, napi_float64_array, n, ab, 0, &nums);
  }
  if (s == napi_ok) {
    size_t at = 0;
    double *dst = data;
    for (size_t i = 0; i < count; i++) {
      if (i > 0) joined[at++] = '/';
      memcpy(joined + at, items[i].name, items[i].len);
      at += items[i].len;
      memcpy(dst + i * FIELDS, items[i].nums, sizeof items[i].nums);
    }
    s = ascii ? napi_create_string_latin1(env, joined, at, &names)
              : napi_create_string_utf8(env, joined, at, &names);
  }
  if (s == napi_ok) s = napi_create_array_with_length(env, 2, &out);
  if (s == napi_ok) s = napi_set_element(env, out, 0, names);
  if (s == napi_ok) s = napi_set_element(env, out, 1, nums);
  free(joined);
  free(items);
  free(arena);
  if (s != napi_ok) return number(env, -ENOMEM);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "list", NAPI_AUTO_LENGTH, list, NULL, &fn) == napi_ok)
    napi_set_named_property(env, exports, "list", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
