#pragma once
// Matrix aliases and the train/eval mode shared by every dropnet header.
//
// A batch is a column-major Eigen matrix of shape features x batch: one sample per column,
// so a sample is contiguous and a dense layer is a single GEMM `Z = W * X`.

#include <Eigen/Core>
#include <cstdint>

namespace dropnet {

/// Eigen's signed index type: sizes, rows, columns.
using Index = Eigen::Index;

/// features x batch, column-major, one sample per column.
template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

/// A column vector (a bias, a per-feature statistic).
template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// A read-only view of a features x samples batch as fit, evaluate, predict and
/// Sequential::infer take it: a Matrix<T>, an Eigen::Map over your own buffer (e.g. a
/// std::vector) or a block of columns binds without a copy; a row-major or strided expression is
/// copied once into the view.
template <class T>
using MatrixView = Eigen::Ref<const Matrix<T>>;

/// Integer class labels, one per sample (per column of the batch).
using Labels = Eigen::Matrix<std::int32_t, Eigen::Dynamic, 1>;

/// What a forward pass is for.
/// - train: stochastic layers sample, BatchNorm uses and updates batch statistics.
/// - eval: deterministic inference; dropout is the identity, BatchNorm uses running statistics.
/// - mc_sample: Monte-Carlo dropout; stochastic layers sample as in training, everything else
///   (BatchNorm) behaves as in eval, and nothing is updated.
enum class Mode { train, eval, mc_sample };

/// True when stochastic layers (dropout and friends) draw masks in this mode.
constexpr bool is_stochastic(Mode mode) { return mode != Mode::eval; }

/// "train", "eval" or "mc_sample".
inline const char* to_string(Mode mode) {
  switch (mode) {
    case Mode::train: return "train";
    case Mode::eval: return "eval";
    case Mode::mc_sample: return "mc_sample";
  }
  return "?";
}

}  // namespace dropnet
