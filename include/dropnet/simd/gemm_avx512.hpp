#pragma once
// Packed GEMM with an AVX-512 FMA micro-kernel: C = beta C + op(A) op(B), column-major, for
// float and double. Only compiled with AVX-512 (has_gemm_avx512 says whether it is there);
// Gemm<T> (core/gemm.hpp) falls back to Eigen's kernel everywhere else.
//
// Structure (BLIS, Van Zee and van de Geijn 2015): op(B) is cut into K blocks of gemm_kc rows,
// each packed into panels nr = 12 columns wide (k-major, 12 values per k); op(A) into blocks of
// gemm_mc rows x gemm_kc, packed into panels of mr = 2 registers of rows (32 floats, 16 doubles).
// The micro-kernel keeps an mr x 12 tile of C in 24 zmm accumulators, and per k loads two
// registers of A and broadcasts 12 values of B (folded into the FMA as a memory operand):
// 24 independent FMAs per step cover the FMA latency on both pipes. Packing is where the four
// op combinations and the edges are handled: panels are zero-padded to a whole register of rows
// and a multiple of 4 columns, so the kernel never branches on an edge inside its k loop; only
// the stores are masked (rows) and skipped (columns).
//
// Every element of C is one FMA chain over k in increasing order, restarted at each K block and
// added to C: the same whatever the column range a call covers, so splitting C's columns across
// threads gives bit-identical results.

#if defined(__AVX512F__)

#include <immintrin.h>

#include <Eigen/Core>
#include <algorithm>
#include <type_traits>

namespace dropnet::simd {

/// Whether gemm_avx512 is compiled in (the translation unit targets AVX-512F).
inline constexpr bool has_gemm_avx512 = true;

/// Rows of op(B) (and columns of op(A)) per packed block: a 12 x 256 panel of B (12 KB in float)
/// stays in L1 while the kernel walks down A; measured best among 128..full K on these shapes.
inline constexpr Eigen::Index gemm_kc = 256;
/// Rows of op(A) per packed block: 256 x 256 floats (256 KB) stay in the 1 MB L2.
inline constexpr Eigen::Index gemm_mc = 256;
/// Columns of op(B) per packed block: bounds the packed B buffer (4 MB in float at kc = 256).
inline constexpr Eigen::Index gemm_nc = 4092;
/// Columns of the micro-kernel's tile.
inline constexpr int gemm_nr = 12;

namespace gemm_detail {

using Eigen::Index;

/// One zmm register of T, and the handful of operations the kernel and packing need. Masked
/// and setzero forms only: the plain ones pass _mm512_undefined_*(), which GCC 12 reports as
/// maybe-uninitialized (GCC bug 105593).
template <class T>
struct Zmm;

template <>
struct Zmm<float> {
  using Reg = __m512;
  using Mask = __mmask16;
  static constexpr int lanes = 16;
  static Mask mask(Index rows) {
    if (rows <= 0) return Mask(0);
    return rows >= lanes ? Mask(0xFFFF) : Mask((1u << static_cast<unsigned>(rows)) - 1u);
  }
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg load(const float* p) { return _mm512_load_ps(p); }
  static Reg load(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, Mask m, Reg v) { _mm512_mask_storeu_ps(p, m, v); }
  static void store(float* p, Reg v) { _mm512_store_ps(p, v); }
  static Reg broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
};

template <>
struct Zmm<double> {
  using Reg = __m512d;
  using Mask = __mmask8;
  static constexpr int lanes = 8;
  static Mask mask(Index rows) {
    if (rows <= 0) return Mask(0);
    return rows >= lanes ? Mask(0xFF) : Mask((1u << static_cast<unsigned>(rows)) - 1u);
  }
  static Reg zero() { return _mm512_setzero_pd(); }
  static Reg load(const double* p) { return _mm512_load_pd(p); }
  static Reg load(Mask m, const double* p) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(double* p, Mask m, Reg v) { _mm512_mask_storeu_pd(p, m, v); }
  static void store(double* p, Reg v) { _mm512_store_pd(p, v); }
  static Reg broadcast(const double* p) { return _mm512_set1_pd(*p); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_pd(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm512_add_pd(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_pd(a, b); }
};

/// Height of the packed A panel holding `rows` (<= 2 registers) rows: 1 or 2 registers.
template <class T>
constexpr Index panel_height(Index rows) {
  return rows > Zmm<T>::lanes ? 2 * Zmm<T>::lanes : Zmm<T>::lanes;
}

/// Width of the packed B panel holding `cols` (<= 12) columns: a multiple of 4.
constexpr Index panel_width(Index cols) { return (cols + 3) / 4 * 4; }

/// C tile (rows x cols at c) = beta C + the accumulators; beta == 0 never reads C (NaN-safe).
template <class T, int MV, int NR>
inline void store_tile(typename Zmm<T>::Reg (&acc)[MV][NR], T* c, Index ldc, Index rows,
                       Index cols, T beta) {
  using Z = Zmm<T>;
  typename Z::Mask mask[MV];
  for (int v = 0; v < MV; ++v) mask[v] = Z::mask(rows - v * Z::lanes);
  const typename Z::Reg vbeta = Z::broadcast(&beta);
#pragma GCC unroll 12
  for (int j = 0; j < NR; ++j) {
    if (j >= cols) break;
#pragma GCC unroll 2
    for (int v = 0; v < MV; ++v) {
      T* p = c + j * ldc + v * Z::lanes;
      typename Z::Reg r = acc[v][j];
      if (beta == T(1)) r = Z::add(r, Z::load(mask[v], p));
      else if (beta != T(0)) r = Z::fma(vbeta, Z::load(mask[v], p), r);
      Z::store(p, mask[v], r);
    }
  }
}

/// The micro-kernel: an (MV registers) x NR tile of C from a packed A panel (MV * lanes values
/// per k) and a packed B panel (NR values per k), over kc >= 1 steps. The first step multiplies
/// rather than adds to zeros (the same bits: a b + 0 rounds as a b), which spares GCC an
/// array of zeros on the stack.
template <class T, int MV, int NR>
inline void micro_kernel(Index kc, const T* a, const T* b, T* c, Index ldc, Index rows,
                         Index cols, T beta) {
  using Z = Zmm<T>;
  typename Z::Reg acc[MV][NR];
  {
    typename Z::Reg av[MV];
#pragma GCC unroll 2
    for (int v = 0; v < MV; ++v) av[v] = Z::load(a + v * Z::lanes);
#pragma GCC unroll 12
    for (int j = 0; j < NR; ++j) {
      const typename Z::Reg bj = Z::broadcast(b + j);
#pragma GCC unroll 2
      for (int v = 0; v < MV; ++v) acc[v][j] = Z::mul(av[v], bj);
    }
  }
  for (Index p = 1; p < kc; ++p) {
    a += MV * Z::lanes;
    b += NR;
    typename Z::Reg av[MV];
#pragma GCC unroll 2
    for (int v = 0; v < MV; ++v) av[v] = Z::load(a + v * Z::lanes);
#pragma GCC unroll 12
    for (int j = 0; j < NR; ++j) {
      const typename Z::Reg bj = Z::broadcast(b + j);
#pragma GCC unroll 2
      for (int v = 0; v < MV; ++v) acc[v][j] = Z::fma(av[v], bj, acc[v][j]);
    }
  }
  store_tile<T, MV, NR>(acc, c, ldc, rows, cols, beta);
}

/// Picks the kernel instance for a panel pair: the panel shapes decide it, not the data.
template <class T>
inline void tile(Index kc, const T* a, const T* b, T* c, Index ldc, Index rows, Index cols,
                 T beta) {
  const bool two = panel_height<T>(rows) > Zmm<T>::lanes;
  switch (panel_width(cols)) {
    case 12:
      return two ? micro_kernel<T, 2, 12>(kc, a, b, c, ldc, rows, cols, beta)
                 : micro_kernel<T, 1, 12>(kc, a, b, c, ldc, rows, cols, beta);
    case 8:
      return two ? micro_kernel<T, 2, 8>(kc, a, b, c, ldc, rows, cols, beta)
                 : micro_kernel<T, 1, 8>(kc, a, b, c, ldc, rows, cols, beta);
    default:
      return two ? micro_kernel<T, 2, 4>(kc, a, b, c, ldc, rows, cols, beta)
                 : micro_kernel<T, 1, 4>(kc, a, b, c, ldc, rows, cols, beta);
  }
}

/// Transposes a 16 x 16 block of floats in registers: r[c] becomes column c (lane i = row i).
/// Four stages of 16 shuffles: pairs of rows, then quads within 128-bit lanes, then lanes.
/// (maskz_ forms with a full mask: the plain ones trip GCC bug 105593, see Zmm.)
inline void transpose16(__m512 (&r)[16]) {
  constexpr __mmask16 all = 0xFFFF;
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_maskz_unpacklo_ps(all, r[i], r[i + 1]);
    t[i + 1] = _mm512_maskz_unpackhi_ps(all, r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // r[i + q], 128-bit lane l: column 4 l + q, rows i..i+3
    r[i] = _mm512_maskz_shuffle_ps(all, t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_maskz_shuffle_ps(all, t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_maskz_shuffle_ps(all, t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_maskz_shuffle_ps(all, t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_maskz_shuffle_f32x4(all, r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_maskz_shuffle_f32x4(all, r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_maskz_shuffle_f32x4(all, r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_maskz_shuffle_f32x4(all, r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_maskz_shuffle_f32x4(all, t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_maskz_shuffle_f32x4(all, t[i], t[i + 8], 0xDD);
  }
}

/// Transposing copy, the packing of the operand stored the other way round: for q < kc,
/// dst[q * stride + r] = src[q + r * ld] for r < lines, and 0 for lines <= r < width (<= 16).
/// Floats go through 16 x 16 register transposes (a scalar copy costs more than the kernel's
/// work per element when A or B is small); doubles through the scalar loop.
template <class T>
inline void pack_transposed(const T* src, Index ld, Index lines, Index kc, Index width, T* dst,
                            Index stride) {
  if constexpr (std::is_same_v<T, float>) {
    const __mmask16 store_mask = Zmm<float>::mask(width);
    for (Index p = 0; p < kc; p += 16) {
      const Index pk = std::min<Index>(16, kc - p);
      __m512 r[16];
      for (Index l = 0; l < 16; ++l)
        r[l] = l < lines ? _mm512_maskz_loadu_ps(Zmm<float>::mask(pk), src + p + l * ld)
                         : _mm512_setzero_ps();
      transpose16(r);
      for (Index q = 0; q < pk; ++q) _mm512_mask_storeu_ps(dst + (p + q) * stride, store_mask, r[q]);
    }
  } else {
    for (Index l = 0; l < lines; ++l)
      for (Index q = 0; q < kc; ++q) dst[q * stride + l] = src[q + l * ld];
    for (Index l = lines; l < width; ++l)
      for (Index q = 0; q < kc; ++q) dst[q * stride + l] = T(0);
  }
}

/// Straight copy, the packing of the operand stored the right way round: for q < kc,
/// dst[q * stride + r] = src[r + q * ld] for r < lines, and 0 for lines <= r < width, width a
/// multiple of the register (A panels) or at most one register (B panels).
template <class T>
inline void pack_straight(const T* src, Index ld, Index lines, Index kc, Index width, T* dst,
                          Index stride) {
  using Z = Zmm<T>;
  for (Index q = 0; q < kc; ++q)
    for (Index v = 0; v * Z::lanes < width; ++v) {
      const Index r = v * Z::lanes;
      const typename Z::Reg x = Z::load(Z::mask(lines - r), src + q * ld + r);
      Z::store(dst + q * stride + r, Z::mask(width - r), x);
    }
}

/// Packs rows [0, rows) x k [0, kc) of op(A) (a points at op(A)(0, 0)) into one panel of height h:
/// for each k, h values, the rows beyond `rows` zero.
template <class T, bool Trans>
inline void pack_a_panel(const T* a, Index lda, Index rows, Index kc, Index h, T* dst) {
  if constexpr (!Trans) {
    pack_straight(a, lda, rows, kc, h, dst, h);  // op(A)(i, p) = a[i + p lda]
  } else {
    // op(A)(i, p) = a[p + i lda]: one register of rows at a time.
    for (Index r = 0; r < h; r += Zmm<T>::lanes) {
      const Index lines = std::clamp<Index>(rows - r, 0, Zmm<T>::lanes);
      pack_transposed(a + r * lda, lda, lines, kc, Zmm<T>::lanes, dst + r, h);
    }
  }
}

/// Packs columns [0, cols) x k [0, kc) of op(B) (b points at op(B)(0, 0)) into one panel of
/// width w: for each k, w values, the columns beyond `cols` zero.
template <class T, bool Trans>
inline void pack_b_panel(const T* b, Index ldb, Index cols, Index kc, Index w, T* dst) {
  if constexpr (Trans) {
    pack_straight(b, ldb, cols, kc, w, dst, w);  // op(B)(p, j) = b[j + p ldb]
  } else {
    pack_transposed(b, ldb, cols, kc, w, dst, w);  // op(B)(p, j) = b[p + j ldb]
  }
}

/// op(A)(i, p) address: A stored m x k (none) or k x m (transposed).
template <bool Trans, class T>
inline const T* at(const T* a, Index lda, Index i, Index p) {
  return Trans ? a + p + i * lda : a + i + p * lda;
}

/// Packs an mb x kc block of op(A) starting at op(A)(0, 0) = a into consecutive panels.
template <class T, bool Trans>
inline void pack_a(const T* a, Index lda, Index mb, Index kc, T* dst) {
  constexpr Index mr = 2 * Zmm<T>::lanes;
  for (Index i = 0; i < mb; i += mr) {
    const Index rows = std::min(mr, mb - i), h = panel_height<T>(rows);
    pack_a_panel<T, Trans>(at<Trans>(a, lda, i, Index(0)), lda, rows, kc, h, dst);
    dst += h * kc;
  }
}

/// Packs a kc x nb block of op(B) starting at op(B)(0, 0) = b into consecutive panels.
template <class T, bool Trans>
inline void pack_b(const T* b, Index ldb, Index kc, Index nb, T* dst) {
  for (Index j = 0; j < nb; j += gemm_nr) {
    const Index cols = std::min<Index>(gemm_nr, nb - j), w = panel_width(cols);
    // op(B)(p, j) sits where op(A)(j, p) would for the opposite transposition.
    pack_b_panel<T, Trans>(at<!Trans>(b, ldb, j, Index(0)), ldb, cols, kc, w, dst);
    dst += w * kc;
  }
}

/// Every tile of an mb x nb block of C from packed blocks of A (mb x kc) and B (kc x nb).
template <class T>
inline void macro_kernel(Index mb, Index nb, Index kc, const T* pa, const T* pb, T* c, Index ldc,
                         T beta) {
  constexpr Index mr = 2 * Zmm<T>::lanes;
  for (Index j = 0; j < nb; j += gemm_nr) {
    const Index cols = std::min<Index>(gemm_nr, nb - j);
    const T* a = pa;
    for (Index i = 0; i < mb; i += mr) {
      const Index rows = std::min(mr, mb - i);
      tile<T>(kc, a, pb, c + i + j * ldc, ldc, rows, cols, beta);
      a += panel_height<T>(rows) * kc;
    }
    pb += panel_width(cols) * kc;
  }
}

}  // namespace gemm_detail

/// Packing buffers for gemm_avx512, 64-byte aligned (Eigen's allocator). They only grow, so
/// after the first call at the largest shape a GemmWorkspace allocates nothing.
template <class T>
struct GemmWorkspace {
  Eigen::Matrix<T, Eigen::Dynamic, 1> a;  ///< a packed block of op(A)
  Eigen::Matrix<T, Eigen::Dynamic, 1> b;  ///< a packed block of op(B)

  /// Grows the buffers to what an m x n x k product needs.
  void reserve(Eigen::Index m, Eigen::Index n, Eigen::Index k) {
    constexpr Eigen::Index mr = 2 * gemm_detail::Zmm<T>::lanes;
    const Eigen::Index kc = std::min(k, gemm_kc);
    const Eigen::Index a_size = (std::min(m, gemm_mc) + mr - 1) / mr * mr * kc;
    const Eigen::Index b_size = (std::min(n, gemm_nc) + gemm_nr - 1) / gemm_nr * gemm_nr * kc;
    if (a.size() < a_size) a.resize(a_size);
    if (b.size() < b_size) b.resize(b_size);
  }
};

/// C = beta C + op(A) op(B) with C m x n (leading dimension ldc), op(A) m x k, op(B) k x n.
/// A is stored m x k (TransA false) or k x m, leading dimension lda; B k x n or n x k, ldb.
/// beta == 0 overwrites C without reading it. Allocates only to grow `ws`.
template <class T, bool TransA, bool TransB>
void gemm_avx512(Eigen::Index m, Eigen::Index n, Eigen::Index k, const T* a, Eigen::Index lda,
                 const T* b, Eigen::Index ldb, T beta, T* c, Eigen::Index ldc,
                 GemmWorkspace<T>& ws) {
  using gemm_detail::at;
  using Eigen::Index;
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (Index j = 0; j < n; ++j)
      for (Index i = 0; i < m; ++i) c[i + j * ldc] = beta == T(0) ? T(0) : beta * c[i + j * ldc];
    return;
  }
  ws.reserve(m, n, k);
  // Equal K blocks (784 = 4 x 196, not 3 x 256 + 16): a short last block would pay the tile's
  // loads and stores of C for little work. They depend on k only, as the bits must.
  const Index k_blocks = (k + gemm_kc - 1) / gemm_kc, kc_max = (k + k_blocks - 1) / k_blocks;
  for (Index jc = 0; jc < n; jc += gemm_nc) {
    const Index nb = std::min(gemm_nc, n - jc);
    for (Index pc = 0; pc < k; pc += kc_max) {
      const Index kc = std::min(kc_max, k - pc);
      const T block_beta = pc == 0 ? beta : T(1);  // later K blocks add to the first's sums
      gemm_detail::pack_b<T, TransB>(at<!TransB>(b, ldb, jc, pc), ldb, kc, nb, ws.b.data());
      for (Index ic = 0; ic < m; ic += gemm_mc) {
        const Index mb = std::min(gemm_mc, m - ic);
        gemm_detail::pack_a<T, TransA>(at<TransA>(a, lda, ic, pc), lda, mb, kc, ws.a.data());
        gemm_detail::macro_kernel<T>(mb, nb, kc, ws.a.data(), ws.b.data(), c + ic + jc * ldc, ldc,
                                     block_beta);
      }
    }
  }
}

}  // namespace dropnet::simd

#else

namespace dropnet::simd {
/// Whether gemm_avx512 is compiled in (the translation unit targets AVX-512F).
inline constexpr bool has_gemm_avx512 = false;
}  // namespace dropnet::simd

#endif
