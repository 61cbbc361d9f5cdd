// sites_cxx.cc — a C++ library for sites.c to dlopen: a call site in a namespaced function, named demangled.
#include <cstdio>

namespace sites {

__attribute__((noinline)) static void *return_address() { return __builtin_return_address(0); }

__attribute__((noinline)) void inner(int unused) {
  std::printf("site sites::inner(int) %s %d %p\n", __FILE__, __LINE__, return_address());
  (void)unused;
}

}  // namespace sites

extern "C" void lib_site(void) {
  std::printf("site lib_site %s %d %p\n", __FILE__, __LINE__, sites::return_address());
  sites::inner(1);
}
