#pragma once
// The explicit instantiations of the compiled library (CMake target dropnet::compiled), listed
// once: src/ defines them for float and double (one TU each), and a translation unit
// built with DROPNET_COMPILED_LIB (which dropnet::compiled sets PUBLIC, as spdlog's
// SPDLOG_COMPILED_LIB) declares them `extern template`, so it does not instantiate and
// optimize them again: see README "Compile time". Without DROPNET_COMPILED_LIB this header
// declares nothing and dropnet stays header-only.
//
// The list is an X-macro over DROPNET_INSTANTIATE(declaration) with the scalar type
// DROPNET_SCALAR; the user of the list defines both, expands DROPNET_FOR_EACH_INSTANTIATION in
// namespace dropnet, and undefines them. Inline member functions of the listed classes may
// still be instantiated by an including TU (the language allows the compiler to, to inline
// them); the function templates (fit, evaluate, predict, save, load...) and the vtables are not.

#include "dropnet.hpp"

// A is a template argument, which cannot be parenthesized:
// NOLINTBEGIN(bugprone-macro-parentheses)
/// The layers templated on an activation, for one activation A, and their AffineLayer bases
/// (whose vtables and virtual functions an including TU would otherwise emit, since the inline
/// constructors of Dense and the others refer to them).
#define DROPNET_ACTIVATED_LAYERS(A)                                                         \
  DROPNET_INSTANTIATE(class AffineLayer<DROPNET_SCALAR, A, Dense<DROPNET_SCALAR, A>>)       \
  DROPNET_INSTANTIATE(class Dense<DROPNET_SCALAR, A>)                                       \
  DROPNET_INSTANTIATE(                                                                      \
      class AffineLayer<DROPNET_SCALAR, A, DropConnectDense<DROPNET_SCALAR, A>>)            \
  DROPNET_INSTANTIATE(class DropConnectDense<DROPNET_SCALAR, A>)                            \
  DROPNET_INSTANTIATE(class AffineLayer<DROPNET_SCALAR, A, Conv2D<DROPNET_SCALAR, A>, false>) \
  DROPNET_INSTANTIATE(class Conv2D<DROPNET_SCALAR, A>)                                      \
  DROPNET_INSTANTIATE(class ActivationLayer<DROPNET_SCALAR, A>)                             \
  DROPNET_INSTANTIATE(class ConcreteDropoutDense<DROPNET_SCALAR, A>)
// NOLINTEND(bugprone-macro-parentheses)

/// Every instantiation of the compiled library, for the scalar type DROPNET_SCALAR.
#define DROPNET_FOR_EACH_INSTANTIATION                                                              \
  DROPNET_INSTANTIATE(class Layer<DROPNET_SCALAR>)                                                  \
  DROPNET_INSTANTIATE(class DropoutBase<DROPNET_SCALAR>)                                            \
  DROPNET_INSTANTIATE(class Pool2D<DROPNET_SCALAR>)                                                 \
  DROPNET_INSTANTIATE(class Loss<DROPNET_SCALAR>)                                                   \
  DROPNET_INSTANTIATE(class BinaryLoss<DROPNET_SCALAR>)                                             \
  DROPNET_INSTANTIATE(class Optimizer<DROPNET_SCALAR>)                                              \
  DROPNET_INSTANTIATE(struct WeightPenalty<DROPNET_SCALAR>)                                         \
  DROPNET_INSTANTIATE(void initialize(Matrix<DROPNET_SCALAR>&, Init, Generator&))                   \
  DROPNET_INSTANTIATE(void apply_max_norm(Matrix<DROPNET_SCALAR>&, DROPNET_SCALAR))                 \
  DROPNET_INSTANTIATE(DROPNET_SCALAR Generator::normal(DROPNET_SCALAR, DROPNET_SCALAR))             \
  DROPNET_INSTANTIATE(class Sequential<DROPNET_SCALAR>)                                             \
  DROPNET_INSTANTIATE(class ModelState<DROPNET_SCALAR>)                                             \
  DROPNET_INSTANTIATE(class LayerRegistry<DROPNET_SCALAR>)                                          \
  DROPNET_FOR_EACH_ACTIVATION(DROPNET_ACTIVATED_LAYERS)                                             \
  DROPNET_INSTANTIATE(class Dropout<DROPNET_SCALAR>)                                                \
  DROPNET_INSTANTIATE(class AlphaDropout<DROPNET_SCALAR>)                                           \
  DROPNET_INSTANTIATE(class GaussianDropout<DROPNET_SCALAR>)                                        \
  DROPNET_INSTANTIATE(class SpatialDropout<DROPNET_SCALAR>)                                         \
  DROPNET_INSTANTIATE(class BatchNorm<DROPNET_SCALAR>)                                              \
  DROPNET_INSTANTIATE(class MaxPool2D<DROPNET_SCALAR>)                                              \
  DROPNET_INSTANTIATE(class AvgPool2D<DROPNET_SCALAR>)                                              \
  DROPNET_INSTANTIATE(class GlobalAvgPool<DROPNET_SCALAR>)                                          \
  DROPNET_INSTANTIATE(class TemperatureScaling<DROPNET_SCALAR>)                                     \
  DROPNET_INSTANTIATE(class Flatten<DROPNET_SCALAR>)                                                \
  DROPNET_INSTANTIATE(class RecurrentLayer<DROPNET_SCALAR, CellKind::lstm>)                         \
  DROPNET_INSTANTIATE(class RecurrentLayer<DROPNET_SCALAR, CellKind::gru>)                          \
  DROPNET_INSTANTIATE(class SoftmaxCrossEntropy<DROPNET_SCALAR>)                                    \
  DROPNET_INSTANTIATE(class MeanSquaredError<DROPNET_SCALAR>)                                       \
  DROPNET_INSTANTIATE(class BinaryCrossEntropyWithLogits<DROPNET_SCALAR>)                           \
  DROPNET_INSTANTIATE(class SGD<DROPNET_SCALAR>)                                                    \
  DROPNET_INSTANTIATE(class BasicAdam<DROPNET_SCALAR, false>)                                       \
  DROPNET_INSTANTIATE(class BasicAdam<DROPNET_SCALAR, true>)                                        \
  DROPNET_INSTANTIATE(class RMSprop<DROPNET_SCALAR>)                                                \
  DROPNET_INSTANTIATE(class Adagrad<DROPNET_SCALAR>)                                                \
  DROPNET_INSTANTIATE(History fit(Sequential<DROPNET_SCALAR>&, const Loss<DROPNET_SCALAR>&,         \
                                  Optimizer<DROPNET_SCALAR>&, const MatrixView<DROPNET_SCALAR>&,        \
                                  const Labels&, Generator&, const FitOptions<DROPNET_SCALAR>&))    \
  DROPNET_INSTANTIATE(History fit(Sequential<DROPNET_SCALAR>&, const Loss<DROPNET_SCALAR>&,         \
                                  Optimizer<DROPNET_SCALAR>&, const MatrixView<DROPNET_SCALAR>&,        \
                                  const Labels&, Generator&, const FitOptions<DROPNET_SCALAR>&,     \
                                  const ValidationData<DROPNET_SCALAR, Labels>&))                   \
  DROPNET_INSTANTIATE(History fit(Sequential<DROPNET_SCALAR>&, const Loss<DROPNET_SCALAR>&,         \
                                  Optimizer<DROPNET_SCALAR>&, const MatrixView<DROPNET_SCALAR>&,        \
                                  const Matrix<DROPNET_SCALAR>&, Generator&,                        \
                                  const FitOptions<DROPNET_SCALAR>&))                               \
  DROPNET_INSTANTIATE(History fit(Sequential<DROPNET_SCALAR>&, const Loss<DROPNET_SCALAR>&,         \
                                  Optimizer<DROPNET_SCALAR>&, const MatrixView<DROPNET_SCALAR>&,        \
                                  const Matrix<DROPNET_SCALAR>&, Generator&,                        \
                                  const FitOptions<DROPNET_SCALAR>&,                                \
                                  const ValidationData<DROPNET_SCALAR, Matrix<DROPNET_SCALAR>>&))   \
  DROPNET_INSTANTIATE(Evaluation evaluate(Sequential<DROPNET_SCALAR>&, const Loss<DROPNET_SCALAR>&, \
                                          const MatrixView<DROPNET_SCALAR>&, const Labels&, Index))     \
  DROPNET_INSTANTIATE(Evaluation evaluate(Sequential<DROPNET_SCALAR>&, const Loss<DROPNET_SCALAR>&, \
                                          const MatrixView<DROPNET_SCALAR>&,                        \
                                          const Matrix<DROPNET_SCALAR>&, Index))                    \
  DROPNET_INSTANTIATE(Matrix<DROPNET_SCALAR> predict(Sequential<DROPNET_SCALAR>&,                   \
                                                     const MatrixView<DROPNET_SCALAR>&, Index))         \
  DROPNET_INSTANTIATE(void predict_into(Sequential<DROPNET_SCALAR>&,                              \
                                        const MatrixView<DROPNET_SCALAR>&, Matrix<DROPNET_SCALAR>&, \
                                        Index))                                                     \
  DROPNET_INSTANTIATE(void save(Sequential<DROPNET_SCALAR>&, std::ostream&,                         \
                                Optimizer<DROPNET_SCALAR>*))                                        \
  DROPNET_INSTANTIATE(void save(Sequential<DROPNET_SCALAR>&, const std::string&,                    \
                                Optimizer<DROPNET_SCALAR>*))                                        \
  DROPNET_INSTANTIATE(void load_into(Sequential<DROPNET_SCALAR>&, std::istream&,                    \
                                     Optimizer<DROPNET_SCALAR>*))                                   \
  DROPNET_INSTANTIATE(void load_into(Sequential<DROPNET_SCALAR>&, const std::string&,               \
                                     Optimizer<DROPNET_SCALAR>*))                                   \
  DROPNET_INSTANTIATE(Sequential<DROPNET_SCALAR> load<DROPNET_SCALAR>(std::istream&))               \
  DROPNET_INSTANTIATE(Sequential<DROPNET_SCALAR> load<DROPNET_SCALAR>(const std::string&))          \
  DROPNET_INSTANTIATE(Sequential<DROPNET_SCALAR> load<DROPNET_SCALAR>(                              \
      std::istream&, const LayerRegistry<DROPNET_SCALAR>&))                                         \
  DROPNET_INSTANTIATE(Sequential<DROPNET_SCALAR> load<DROPNET_SCALAR>(                              \
      const std::string&, const LayerRegistry<DROPNET_SCALAR>&))                                    \
  DROPNET_INSTANTIATE(void save_weights(Sequential<DROPNET_SCALAR>&, const std::string&))           \
  DROPNET_INSTANTIATE(void load_weights(Sequential<DROPNET_SCALAR>&, const std::string&))

#if defined(DROPNET_COMPILED_LIB) && !defined(DROPNET_COMPILED_LIB_SOURCE)
namespace dropnet {
#define DROPNET_INSTANTIATE(...) extern template __VA_ARGS__;
#define DROPNET_SCALAR float
DROPNET_FOR_EACH_INSTANTIATION
#undef DROPNET_SCALAR
#define DROPNET_SCALAR double
DROPNET_FOR_EACH_INSTANTIATION
#undef DROPNET_SCALAR
#undef DROPNET_INSTANTIATE
}  // namespace dropnet
#endif
