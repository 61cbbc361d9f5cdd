/* sites.c — prints test_symbols_resolve.py's truth: its load addresses, return addresses of calls on known lines. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Built again with a different SITES_VARIANT, the program gets another build id: "rebuilt after recording". */
#ifndef SITES_VARIANT
#define SITES_VARIANT 0
#endif

/* Noinline, so that the address it returns lies in its caller, just after the call. */
__attribute__((noinline)) static void *return_address(void) { return __builtin_return_address(0); }

static void site(const char *function, int line, void *addr) {
  printf("site %s %s %d %p\n", function, __FILE__, line, addr);
}

/* Inlined even at -O0: the address is in its caller's code, and the DWARF says both functions and lines. */
static inline __attribute__((always_inline)) void inlined_site(int caller_line) {
  printf("inline inlined_site %d alpha %d %p\n", __LINE__, caller_line, return_address());
}

__attribute__((noinline)) void alpha(void) {
  site("alpha", __LINE__, return_address());
  inlined_site(__LINE__);
}

/* Its own return address lies in main, on the line main passes. */
__attribute__((noinline)) void beta(int caller_line) {
  site("beta", __LINE__, return_address());
  site("main", caller_line, __builtin_return_address(0));
}

__attribute__((noinline)) void gamma_in_child(void) { site("gamma_in_child", __LINE__, return_address()); }

static int print_object(struct dl_phdr_info *info, size_t size, void *unused) {
  (void)size, (void)unused;
  /* As lttng-ust's state dump gives it: baddr is the first PT_LOAD in memory, memsz the loads' extent. */
  ElfW(Addr) first = 0, end = 0;
  int seen = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    if (!seen) first = ph->p_vaddr, seen = 1;
    if (ph->p_vaddr + ph->p_memsz > end) end = ph->p_vaddr + ph->p_memsz;
  }
  char self[PATH_MAX];
  const char *name = info->dlpi_name;
  if (!name[0]) {
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    name = self;
  }
  if (seen && name[0]) printf("object %s 0x%lx %lu\n", name, (unsigned long)(info->dlpi_addr + first),
                              (unsigned long)(end - first));
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s LIBRARY [fork]\n", argv[0]);
    return 2;
  }
  printf("pid %d\n", (int)getpid());
  alpha();
  beta(__LINE__);
  int local = 0;
  printf("stack %p\n", (void *)&local);

  /* Loaded after start: the state dump has not seen it, the dl events have. */
  void *lib = dlopen(argv[1], RTLD_NOW);
  void (*lib_site)(void) = lib ? (void (*)(void))dlsym(lib, "lib_site") : NULL;
  if (!lib_site) {
    fprintf(stderr, "%s: %s\n", argv[1], dlerror());
    return 1;
  }
  lib_site();
  dl_iterate_phdr(print_object, NULL);
  fflush(stdout);

  if (argc > 2 && strcmp(argv[2], "fork") == 0) {
    pid_t child = fork();
    if (child == 0) {
      printf("child %d\n", (int)getpid());
      gamma_in_child();
      fflush(stdout);
      _exit(0);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || status != 0) return 1;
  }
#if SITES_VARIANT
  puts("variant");
#endif
  return 0;
}
