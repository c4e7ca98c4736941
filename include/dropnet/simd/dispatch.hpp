#pragma once
// Runtime choice of the SIMD kernels: which instruction set the hot kernels (the packed GEMM,
// Philox) use, decided once per process from what the CPU reports, so that a binary built with
// the compiler's default flags (x86-64 baseline, SSE2) still runs the AVX-512 or AVX2 kernels.
//
// Contract:
//   cpu_simd_level()   the best level this CPU and OS support (cpuid through GCC/Clang's
//                      __builtin_cpu_supports, which also checks that the OS saves the wide
//                      registers); detected once. Always baseline where the kernels cannot be
//                      compiled: non-x86, or a compiler other than GCC and Clang (MSVC).
//   simd_level()       the level the kernels use: DROPNET_SIMD from the environment
//                      (avx512 | avx2 | baseline, read once, at the first call), clamped to
//                      cpu_simd_level(); an empty or unknown value is ignored (the CPU's level).
//   set_simd_level(l)  forces a level for the whole process, from any thread, until the next
//                      call; throws InvalidArgument if the CPU does not support l (running it
//                      would crash with an illegal instruction).
// The kernels read simd_level() once at their entry (one relaxed atomic load per call) and run
// one implementation for the whole call: the choice never reaches an inner loop.
//
// Levels: avx512 = AVX-512F; avx2 = AVX2 + FMA; baseline = what the translation unit's own flags
// give (Eigen's kernel and the scalar Philox; with -march=native Eigen's packets are still wide).
// The kernels of each level are compiled with GCC/Clang function target attributes
// (DROPNET_TARGET_AVX512 / _AVX2 below), never with -m flags, so only the functions that run
// after the check use the wider instructions; in every translation unit that uses them, or once
// in dropnet::compiled (DROPNET_KERNELS_DECLARED below).

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "../core/error.hpp"

// DROPNET_NO_RUNTIME_DISPATCH (define it before any dropnet header) compiles the baseline only,
// as on MSVC and non-x86 targets: a way out should a compiler mishandle the target attributes,
// and how the fallback build is checked on x86.
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__)) && \
    !defined(DROPNET_NO_RUNTIME_DISPATCH)
/// Defined (to 1) where the x86 kernels are compiled and chosen at run time: GCC or Clang on x86.
#define DROPNET_SIMD_X86 1
/// Compiles the function it precedes for AVX-512F (called only when simd_level() says so).
#define DROPNET_TARGET_AVX512 __attribute__((target("avx512f")))
/// Compiles the function it precedes for AVX2 + FMA (called only when simd_level() says so).
#define DROPNET_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

// DROPNET_KERNELS_DECLARED: in a translation unit built with DROPNET_COMPILED_LIB (one that links
// dropnet::compiled), the entry points of the dispatched kernels (simd/elementwise.hpp,
// gemm_packed.hpp, gemv.hpp, philox.hpp) are declared, not defined, and the kernels themselves
// are not compiled: dropnet::compiled defines them for float and double once (src/kernels.cpp,
// which defines DROPNET_KERNELS_SOURCE). Such a file then never parses the kernels, nor
// <immintrin.h>: about 0.7 s of g++'s CPU per file (README "Compile time"). The entry points are
// all templates, so a file that defines them too (header-only code in the same program) and the
// library hold the same definition.
#if defined(DROPNET_COMPILED_LIB) && !defined(DROPNET_KERNELS_SOURCE)
/// Defined (to 1) where the kernels are declared only (see above).
#define DROPNET_KERNELS_DECLARED 1
/// The body of a kernel entry point where it is defined; a bare declaration elsewhere.
#define DROPNET_KERNEL_BODY(...) ;
#else
#define DROPNET_KERNEL_BODY(...) __VA_ARGS__
#endif

namespace dropnet {

/// An instruction-set level of the dispatched kernels, in increasing order.
enum class SimdLevel : int {
  baseline = 0,  ///< the translation unit's own flags: Eigen's kernels, scalar Philox
  avx2 = 1,      ///< AVX2 + FMA, 256-bit registers
  avx512 = 2     ///< AVX-512F, 512-bit registers
};

/// The level's name as DROPNET_SIMD spells it: "baseline", "avx2" or "avx512".
inline const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512:
      return "avx512";
    case SimdLevel::avx2:
      return "avx2";
    default:
      return "baseline";
  }
}

namespace detail {
inline SimdLevel detect_simd_level();
}  // namespace detail

/// The best level this CPU supports (see the file comment); detected once per process.
inline SimdLevel cpu_simd_level() {
  static const SimdLevel level = detail::detect_simd_level();
  return level;
}

namespace detail {

/// cpuid, asked once; the result cannot change while the process runs.
inline SimdLevel detect_simd_level() {
#if defined(DROPNET_SIMD_X86)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return SimdLevel::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::avx2;
#endif
  return SimdLevel::baseline;
}

/// DROPNET_SIMD's level, or `fallback` when the variable is unset, empty or unknown.
inline SimdLevel environment_simd_level(SimdLevel fallback) {
  const char* value = std::getenv("DROPNET_SIMD");
  if (value == nullptr) return fallback;
  for (SimdLevel level : {SimdLevel::baseline, SimdLevel::avx2, SimdLevel::avx512})
    if (std::strcmp(value, simd_level_name(level)) == 0) return level;
  return fallback;
}

/// The process-wide choice, initialized on first use from the CPU and the environment.
inline std::atomic<SimdLevel>& active_simd_level() {
  static std::atomic<SimdLevel> level{[] {
    const SimdLevel wanted = environment_simd_level(cpu_simd_level());
    return wanted < cpu_simd_level() ? wanted : cpu_simd_level();
  }()};
  return level;
}

}  // namespace detail

/// The level the dispatched kernels use now: DROPNET_SIMD clamped to cpu_simd_level(), or the
/// last set_simd_level().
inline SimdLevel simd_level() {
  return detail::active_simd_level().load(std::memory_order_relaxed);
}

/// Makes the dispatched kernels use `level` from now on, in every thread (for comparisons and
/// to work around a problem). Call it between computations, not during one on another thread.
/// Throws InvalidArgument if level is above cpu_simd_level().
inline void set_simd_level(SimdLevel level) {
  detail::require(level <= cpu_simd_level(), "set_simd_level", "this CPU supports up to ",
                  simd_level_name(cpu_simd_level()), ", not ", simd_level_name(level));
  detail::active_simd_level().store(level, std::memory_order_relaxed);
}

}  // namespace dropnet
