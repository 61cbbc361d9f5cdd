/* sites_lib.c — the shared library sites.c dlopens after start: one exported and one static call site. */
#include <stdio.h>

__attribute__((noinline)) static void *return_address(void) { return __builtin_return_address(0); }

__attribute__((noinline)) static void lib_inner(void) {
  printf("site lib_inner %s %d %p\n", __FILE__, __LINE__, return_address());
}

void lib_site(void) {
  printf("site lib_site %s %d %p\n", __FILE__, __LINE__, return_address());
  lib_inner();
}
