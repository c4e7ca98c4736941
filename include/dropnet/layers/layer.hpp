#pragma once
// Layer<T>: the contract between Sequential and every layer.
//
// forward(x, mode, gen) -> y        x: in_features x batch; returns a reference to the layer's
//                                   own cached output, valid until the next forward.
// backward(dy, need_dx) -> dx       uses what forward cached; writes the parameter gradients
//                                   (overwriting, not accumulating) and returns dx, or an empty
//                                   matrix when need_dx is false (the first layer skips that GEMM).
// parameters()                      trainable tensors, as views for the optimizer.
// buffers()                         non-trainable state saved with the model (BatchNorm statistics).
// penalty()                         the layer's regularization loss (L1/L2); its gradient is
//                                   already in the parameter gradients after backward.
// apply_constraints()               called after each optimizer step (max-norm).
// config()                          type and hyperparameters, enough to rebuild the layer.
//
// A layer's caches are sized on the first forward at a batch size and reused afterwards, so a
// training step allocates nothing once the batch size is stable.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/generator.hpp"
#include "../core/parameter.hpp"
#include "../core/types.hpp"
#include "layer_config.hpp"

namespace dropnet {

/// Base class of every layer: forward/backward on features x batch matrices, the parameters an
/// optimizer updates and the config that rebuilds the layer (contract in the file comment above).
template <class T>
class Layer {
 public:
  virtual ~Layer() = default;

  /// Human-readable description, e.g. "Dense(784->120, ReLU)"; used in every error message.
  virtual std::string name() const = 0;

  /// Rows of the output for an input with `input_rows` rows; throws InvalidArgument naming the
  /// layer if this layer cannot take such an input.
  virtual Index output_rows(Index input_rows) const = 0;

  /// Rows this layer requires of its input, or 0 if it takes any (shape-preserving layers).
  virtual Index expected_input_rows() const { return 0; }

  /// Computes the output for x (input_features x batch) and caches what backward needs. Returns a
  /// reference to the layer's own output (output_rows x batch), valid until the next forward. `gen`
  /// may be null in eval mode; train and mc_sample forwards of stochastic layers need it. Throws
  /// InvalidArgument naming the layer on a wrong row count, an empty batch or a missing generator.
  virtual const Matrix<T>& forward(const Matrix<T>& x, Mode mode, Generator* gen) = 0;
  /// The eval-mode forward of x read in place, for layers that can read a view without copying
  /// it (Dense): returns the output as forward(x, Mode::eval, nullptr) would, or nullptr when
  /// the layer cannot (the default), and Sequential::infer then copies x into a Matrix and
  /// calls forward. Caches nothing for backward: a backward after it throws until the next
  /// forward. Throws as forward does.
  virtual const Matrix<T>* forward_view(const MatrixView<T>& x) {
    (void)x;
    return nullptr;
  }
  /// True when the eval-mode forward returns its input itself (dropout): Sequential::infer
  /// then hands a batch it reads in place straight to the next layer. False by default.
  virtual bool passes_input_in_eval() const { return false; }
  /// Backpropagates dy (the gradient of the loss wrt the last forward's output, same shape):
  /// overwrites the parameter gradients and returns dx (shape of the last input), or an empty
  /// matrix when need_dx is false. Throws InvalidArgument if dy's shape differs or no forward
  /// came first.
  virtual const Matrix<T>& backward(const Matrix<T>& dy, bool need_dx) = 0;

  /// Views of the trainable tensors and their gradients; empty for layers without parameters.
  virtual ParameterList<T> parameters() { return {}; }
  /// Views of non-trainable state saved with the model (BatchNorm's running statistics); no grad.
  virtual ParameterList<T> buffers() { return {}; }
  /// The layer's regularization loss (L1/L2 on its weights), added to the data loss; 0 by default.
  virtual T penalty() const { return T(0); }
  /// Projects the parameters back onto their constraint set (max-norm); called after each step.
  virtual void apply_constraints() {}
  /// Type and hyperparameters, enough for the layer registry to rebuild the layer.
  virtual LayerConfig config() const = 0;

  /// The registry's name for this layer's type ("Dense", "Dropout"), the prefix of its
  /// parameters' names in a model. Defaults to config().kind; override it to skip building a
  /// config where the kind is needed often.
  virtual std::string kind() const { return config().kind; }

  /// The smallest batch a train-mode forward accepts (BatchNorm needs two values per channel);
  /// fit checks every batch it will form against it before the first update.
  virtual Index min_train_batch() const { return 1; }

  /// True for layers that draw random numbers in train and mc_sample modes (the dropout family).
  virtual bool is_stochastic() const { return false; }

  /// Number of trainable scalars: the sum of parameters()' sizes.
  Index parameter_count() {
    Index count = 0;
    for (const auto& p : parameters()) count += p.size();
    return count;
  }

 protected:
  // The checks below build name() (a string) only when they fail: the hot path allocates nothing.

  /// Checks that backward follows a forward with a gradient of the output's shape.
  void require_backward_shape(const Matrix<T>& dy, const Matrix<T>& output) const {
    if (output.size() == 0 && dy.size() != 0)
      throw InvalidArgument(name() + ": backward called before forward");
    if (dy.rows() != output.rows() || dy.cols() != output.cols())
      detail::require_shape(name(), "output gradient", dy.rows(), dy.cols(), output.rows(),
                            output.cols());
  }
  /// Throws InvalidArgument naming the layer unless x has `expected` rows and at least one column.
  void require_input_rows(const MatrixView<T>& x, Index expected) const {
    if (x.rows() != expected)
      throw InvalidArgument(detail::concat(name(), ": input has ", x.rows(),
                                           " rows (features), expected ", expected));
    if (x.cols() == 0) throw InvalidArgument(name() + ": empty batch (0 columns)");
  }
  /// Throws InvalidArgument naming the layer if a stochastic mode (train, mc_sample) has no
  /// Generator.
  void require_generator(Mode mode, const Generator* gen) const {
    if (dropnet::is_stochastic(mode) && gen == nullptr)
      throw InvalidArgument(name() + ": a " + to_string(mode) +
                            "-mode forward needs a Generator (pass one to forward or fit)");
  }
  /// Throws InvalidArgument naming the layer if x has no rows or no columns.
  void require_nonempty(const Matrix<T>& x) const {
    if (x.cols() == 0 || x.rows() == 0)
      throw InvalidArgument(detail::concat(name(), ": empty input (", x.rows(), "x", x.cols(), ")"));
  }
};

/// Owning pointer to a layer, as Sequential stores them.
template <class T>
using LayerPtr = std::unique_ptr<Layer<T>>;

}  // namespace dropnet
