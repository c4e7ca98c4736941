#pragma once
// The single place dropnet's version is written; CMake reads it from here.

#define DROPNET_VERSION_MAJOR 0
#define DROPNET_VERSION_MINOR 1
#define DROPNET_VERSION_PATCH 0

/// dropnet: header-only neural networks on Eigen, every form of dropout built in.
///
/// Everything public is in this namespace or a documented sub-namespace; `<dropnet/dropnet.hpp>`
/// includes all of it that needs only Eigen (io/idx.hpp and io/fashion_mnist.hpp need zlib).
/// A batch is a `Matrix<T>` of shape features x batch (one sample per column); class labels are
/// `Labels`; the `Generator` passed in is the only source of randomness. Names in
/// `dropnet::detail` are implementation and may change without notice.
namespace dropnet {
/// The library's version, "MAJOR.MINOR.PATCH" (also DROPNET_VERSION_MAJOR/_MINOR/_PATCH).
inline constexpr const char* version = "0.1.0";
}  // namespace dropnet

/// \namespace dropnet::simd
/// The vectorized kernels (Philox, packed GEMM, branch-free selects) behind the layers: each has
/// a baseline form and AVX2 / AVX-512 forms chosen at run time by simd_level(). Every level gives
/// the same random bits; floating-point results differ only in rounding.

/// \namespace dropnet::fashion_mnist
/// The Fashion-MNIST dataset (Xiao, Rasul & Vollgraf 2017) from its IDX files: 60,000 training
/// and 10,000 test images of 28 x 28 pixels in 10 classes. Needs zlib (io/idx.hpp).
