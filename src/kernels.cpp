// dropnet::compiled, the dispatched kernels: every entry point of simd/elementwise.hpp,
// gemm_packed.hpp, gemv.hpp and philox.hpp for float and double, with the kernels of every
// SIMD level behind them. The library's other files and the files that link the library see
// these entry points declared only (DROPNET_KERNELS_DECLARED, simd/dispatch.hpp), so this is the
// one file that compiles the kernels and includes <immintrin.h>.

#define DROPNET_KERNELS_SOURCE
#include <cstdint>

#include <dropnet/simd/elementwise.hpp>
#include <dropnet/simd/gemm_packed.hpp>
#include <dropnet/simd/gemv.hpp>
#include <dropnet/simd/philox.hpp>

namespace dropnet::simd {

using Eigen::Index;

// T is a type, which cannot be parenthesized:
// NOLINTBEGIN(bugprone-macro-parentheses)
#define DROPNET_INSTANTIATE_GEMM(T, TransA, TransB)                                            \
  template bool gemm_packed<T, TransA, TransB>(SimdLevel, Index, Index, Index, const T*, Index, \
                                               const T*, Index, T, T*, Index, GemmWorkspace<T>&, \
                                               const GemmScale<T>&);

#define DROPNET_INSTANTIATE_KERNELS(T)                                                        \
  template void max_scaled<T>(const T*, T*, Index, T);                                        \
  template void scale_non_positive<T>(const T*, const T*, T*, Index, T);                      \
  template void multiply<T>(const T*, const T*, T*, Index);                                   \
  template void adam_update<T>(T*, const T*, T*, T*, T*, Index, const AdamConstants<T>&);     \
  template void sgd_update<T>(T*, const T*, T*, Index, const SgdConstants<T>&);               \
  template void rmsprop_update<T>(T*, const T*, T*, T*, T*, Index, const RmspropConstants<T>&); \
  template void adagrad_update<T>(T*, const T*, T*, Index, const AdagradConstants<T>&);       \
  template void add_to_columns<T>(T*, Index, Index, const T*);                                \
  template void sum_columns<T>(const T*, const T*, Index, Index, T*, T*);                     \
  template void centered_square_sums<T>(const T*, const T*, Index, Index, T*);                \
  template void normalize_columns<T>(const T*, const T*, const T*, const T*, const T*, Index,  \
                                     Index, T*, T*);                                          \
  template void batch_norm_input_gradient<T>(const T*, const T*, const T*, const T*, const T*, \
                                             Index, Index, T*);                               \
  template void exponential<T>(const T*, T*, Index);                                          \
  template void logistic<T>(const T*, const T*, T*, Index);                                   \
  template void gated_linear<T>(const T*, T*, Index, T, T);                                   \
  template void gated_linear_gradient<T>(const T*, const T*, T*, Index, T, T);                \
  template void hyperbolic_tangent<T>(const T*, T*, Index);                                   \
  template void softplus<T>(const T*, T*, Index);                                             \
  template void output_gradient<T>(const T*, const T*, T*, Index, bool);                      \
  template void exponential_branch<T>(const T*, const T*, T*, Index, T, T, bool);             \
  DROPNET_INSTANTIATE_GEMM(T, false, false)                                                   \
  DROPNET_INSTANTIATE_GEMM(T, false, true)                                                    \
  DROPNET_INSTANTIATE_GEMM(T, true, false)                                                    \
  DROPNET_INSTANTIATE_GEMM(T, true, true)                                                     \
  template void small_batch_affine<T>(SimdLevel, const SmallBatchAffine<T>&);                 \
  template void philox_thresholded<T>(PhiloxKey, std::uint64_t, std::ptrdiff_t, std::uint32_t, \
                                      T, T, T*, const T*);
// NOLINTEND(bugprone-macro-parentheses)

DROPNET_INSTANTIATE_KERNELS(float)
DROPNET_INSTANTIATE_KERNELS(double)
template void gaussian_error_linear<float>(const float*, const float*, float*, Index);
template void philox_blocks<std::uint32_t>(PhiloxKey, std::uint64_t, std::size_t,
                                           std::uint32_t*);

#undef DROPNET_INSTANTIATE_KERNELS
#undef DROPNET_INSTANTIATE_GEMM

}  // namespace dropnet::simd
