// The two allocation witnesses of the no-allocation tests (test_allocation, test_gemm):
//   - Eigen's malloc guard (EIGEN_RUNTIME_NO_MALLOC), its assertion made to throw so that it also
//     fires in NDEBUG builds: Eigen allocates with malloc, not new;
//   - a counting global operator new (std containers, strings): g_allocations.
// Include it first, before any Eigen or dropnet header, and from one translation unit of a test
// executable only: it replaces the program's operator new.
#pragma once

#define EIGEN_RUNTIME_NO_MALLOC
#include <stdexcept>
#define eigen_assert(x) \
  if (!(x)) throw std::runtime_error("Eigen assertion failed: " #x)

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

// GCC sees free() of memory that came from operator new; here that is the point.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
