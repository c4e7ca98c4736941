#pragma once
// The blocking of the packed GEMM kernels (simd/gemm_avx512.hpp, simd/gemm_avx2.hpp), their
// packing buffers and the elementwise scale of B they apply while packing, shared by every
// instruction-set level.

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>

namespace dropnet::simd {

/// Rows of op(B) (and columns of op(A)) per packed block: a 12 x 256 panel of B (12 KB in float)
/// stays in L1 while the kernel walks down A; measured best among 128..full K on these shapes.
inline constexpr Eigen::Index gemm_kc = 256;
/// Rows of op(A) per packed block: 256 x 256 floats (256 KB) stay in the 1 MB L2.
inline constexpr Eigen::Index gemm_mc = 256;
/// Columns of op(B) per packed block: bounds the packed B buffer (4 MB in float at kc = 256).
inline constexpr Eigen::Index gemm_nc = 4092;
/// Columns of the widest micro-kernel tile (AVX-512's; AVX2's is 6).
inline constexpr int gemm_nr = 12;

/// Values of room the packed buffers keep past their panels: packing stores whole registers
/// (up to 16 floats), which may run past the last panel's last row.
inline constexpr Eigen::Index gemm_pack_slack = 16;

/// An elementwise scale of the stored B (k x n, or n x k when transposed) that the packed GEMM
/// multiplies in while packing B, so B's scaled copy never exists in memory: B(r, c) is read as
/// B(r, c) * s[(row0 + r) + ((col0 + c) % period) * ld] (one rounding, as a materialized
/// product). The columns of s repeat with `period`: a recurrent layer's dropout mask (one column
/// per sample) scales every step of a time-major sequence. s == nullptr: no scale. row0 and
/// col0 place the origin of the B pointer handed to the kernel (a column share of C, a block).
template <class T>
struct GemmScale {
  const T* s = nullptr;     ///< the scale's first element, column-major; nullptr: none
  Eigen::Index ld = 0;      ///< its leading dimension
  Eigen::Index period = 1;  ///< its columns: B's column c takes column c % period
  Eigen::Index row0 = 0;    ///< B's row 0 is the scale's row row0
  Eigen::Index col0 = 0;    ///< B's column 0 is the scale's column col0 (modulo period)

  /// Whether there is a scale.
  explicit operator bool() const { return s != nullptr; }
  /// The scale of B(r, c), and of the elements below it in that column.
  const T* at(Eigen::Index r, Eigen::Index c) const {
    return s + (row0 + r) + ((col0 + c) % period) * ld;
  }
  /// The same scale for B's block starting at (r, c).
  GemmScale shifted(Eigen::Index r, Eigen::Index c) const {
    return {s, ld, period, row0 + r, col0 + c};
  }
};

/// A grow-only array of T aligned to 64 bytes, whatever the translation unit's flags (Eigen's
/// allocator aligns to 16 bytes only in a default x86-64 build, and the kernels load whole
/// aligned registers of up to 64 bytes from the packed panels).
template <class T>
class AlignedBuffer {
 public:
  /// The first element; 64-byte aligned, nullptr before the first grow().
  T* data() { return data_.get(); }
  /// How many elements the buffer holds.
  std::size_t size() const { return size_; }
  /// Makes room for at least n elements (the old values are not kept); allocates only to grow.
  void grow(std::size_t n) {
    if (n <= size_) return;
    data_.reset(static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{alignment})));
    size_ = n;
  }

 private:
  static constexpr std::size_t alignment = 64;
  struct Free {
    void operator()(T* p) const { ::operator delete (p, std::align_val_t{alignment}); }
  };
  std::unique_ptr<T, Free> data_;
  std::size_t size_ = 0;
};

/// Packing buffers of the packed GEMM kernels, 64-byte aligned. They only grow, so after the
/// first call at the largest shape a GemmWorkspace allocates nothing, whichever level runs.
template <class T>
struct GemmWorkspace {
  AlignedBuffer<T> a;  ///< a packed block of op(A)
  AlignedBuffer<T> b;  ///< a packed block of op(B)

  /// Grows the buffers to what an m x n x k product needs at any level: sized for the widest
  /// tile (2 registers of 64 bytes by gemm_nr columns), which covers the narrower ones.
  void reserve(Eigen::Index m, Eigen::Index n, Eigen::Index k) {
    constexpr Eigen::Index register_bytes = 64;
    constexpr Eigen::Index mr = 2 * register_bytes / Eigen::Index(sizeof(T));
    const Eigen::Index kc = std::min(k, gemm_kc);
    const Eigen::Index a_size = (std::min(m, gemm_mc) + mr - 1) / mr * mr * kc;
    const Eigen::Index b_size = (std::min(n, gemm_nc) + gemm_nr - 1) / gemm_nr * gemm_nr * kc;
    a.grow(static_cast<std::size_t>(a_size + gemm_pack_slack));
    b.grow(static_cast<std::size_t>(b_size + gemm_pack_slack));
  }
};

}  // namespace dropnet::simd
