// The two allocation witnesses of the no-allocation tests (test_allocation, test_gemm, test_idx;
// test_allocation holds every layer's check, so that the layers' own tests can link
// dropnet::compiled):
//   - Eigen's malloc guard (EIGEN_RUNTIME_NO_MALLOC), its assertion made to throw so that it also
//     fires in NDEBUG builds: Eigen allocates with malloc, not new;
//   - a counting global operator new (std containers, strings): g_allocations, and the largest
//     size asked for, g_largest_allocation (test_idx: how much a file header made it allocate).
// Include it first, before any Eigen or dropnet header, and from one translation unit of a test
// executable only: it replaces the program's operator new.
#pragma once

#define EIGEN_RUNTIME_NO_MALLOC
#include <stdexcept>
#define eigen_assert(x)                                                \
  do {                                                                 \
    if (!(x)) throw std::runtime_error("Eigen assertion failed: " #x); \
  } while (false)

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> g_allocations{0};
std::atomic<std::size_t> g_largest_allocation{0};
}  // namespace

// GCC sees free() of memory that came from operator new; here that is the point.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  ++g_allocations;
  for (std::size_t seen = g_largest_allocation; size > seen;)
    if (g_largest_allocation.compare_exchange_weak(seen, size)) break;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <Eigen/Core>

namespace {

/// While alive, any Eigen heap allocation throws and new_calls() counts operator new calls.
/// Put no doctest macro inside its scope: they may allocate.
class NoAllocationScope {
 public:
  NoAllocationScope() : start_(g_allocations.load()) { Eigen::internal::set_is_malloc_allowed(false); }
  ~NoAllocationScope() { Eigen::internal::set_is_malloc_allowed(true); }
  NoAllocationScope(const NoAllocationScope&) = delete;
  NoAllocationScope& operator=(const NoAllocationScope&) = delete;

  long new_calls() const { return g_allocations.load() - start_; }

 private:
  long start_;
};

}  // namespace
