/* libc_malloc.c — glibc's malloc under the standard names, preloaded as the "glibc" allocator into a program that links another one.
 *
 * Debian's redis-server links libjemalloc.so.2, whose malloc comes before libc's in the symbol search, so
 * running it with no preload measures jemalloc. Preloading this library puts glibc's own allocator
 * (its exported __libc_* entry points) first instead. Built as a module by bench/CMakeLists.txt. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

void *malloc(size_t n) { return __libc_malloc(n); }
void free(void *p) { __libc_free(p); }
void *calloc(size_t n, size_t size) { return __libc_calloc(n, size); }
void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
void *memalign(size_t align, size_t n) { return __libc_memalign(align, n); }
void *valloc(size_t n) { return __libc_valloc(n); }
void *pvalloc(size_t n) { return __libc_pvalloc(n); }

void *aligned_alloc(size_t align, size_t n) {
  if (align == 0 || (align & (align - 1)) != 0) {
    errno = EINVAL;
    return NULL;
  }
  return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
  if (align < sizeof(void *) || (align & (align - 1)) != 0)
    return EINVAL;
  int saved = errno;
  void *p = __libc_memalign(align, n);
  if (p == NULL)
    return ENOMEM;
  errno = saved;
  *out = p;
  return 0;
}

/* glibc exports no __libc_ name for it: take libc's own definition (the other allocator's would be found
 * first by a plain lookup). The first call resolves it; by then malloc has run, so libc is initialised. */
size_t malloc_usable_size(void *p) {
  static size_t (*libc_usable)(void *);
  if (libc_usable == NULL) {
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (libc != NULL)
      libc_usable = (size_t (*)(void *))dlsym(libc, "malloc_usable_size");
    if (libc_usable == NULL)
      return 0;
  }
  return p ? libc_usable(p) : 0;
}
