#pragma once
// Sequential<T>: a stack of layers trained end to end.
//
//   Sequential<float> model(784);
//   model.add(Dense<float, ReLU>(784, 120, gen));
//   model.add(Dropout<float>(0.4));
//   model.add(Dense<float>(120, 10, gen));             // logits
//   const Matrix<float>& logits = model.forward(X, Mode::train, gen);
//   model.backward(dlogits);                          // parameter gradients, ready for a step
//
// Shapes are checked when a layer is added (its input must match the previous output) and when
// a batch comes in; a failed add leaves the model unchanged. forward copies the batch into a
// buffer the model owns, so layers can cache pointers to their inputs until backward;
// forward_borrowed skips that copy for callers that keep the batch alive (train_step); infer
// (eval mode, what predict runs) reads the batch in place, a Map or a block of columns included,
// where the first layer can (Dense), and copies it otherwise.

#include <algorithm>
#include <iomanip>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/format.hpp"
#include "../layers/layer.hpp"

namespace dropnet {

/// A stack of layers run in order, with forward/backward caching; see the file comment.
template <class T>
class Sequential {
 public:
  /// `input_features` = rows of an input batch; 0 lets the first layer that knows decide.
  explicit Sequential(Index input_features = 0) : input_features_(input_features) {
    detail::require(input_features >= 0, "Sequential", "input_features must be >= 0, got ",
                    input_features);
  }

  /// Moves the layers; the moved-from model is empty.
  Sequential(Sequential&&) noexcept = default;
  /// Moves the layers; the moved-from model is empty.
  Sequential& operator=(Sequential&&) noexcept = default;

  /// Appends a layer (moved in) and returns a reference to it. Throws InvalidArgument, naming
  /// the layer and its position, if its input does not match the previous layer's output.
  template <class L, class = std::enable_if_t<std::is_base_of_v<Layer<T>, std::decay_t<L>>>>
  std::decay_t<L>& add(L&& layer) {
    auto owned = std::make_unique<std::decay_t<L>>(std::forward<L>(layer));
    auto& ref = *owned;
    add(LayerPtr<T>(std::move(owned)));
    return ref;
  }

  /// Appends an owned layer; throws as the templated add does, and for a null pointer.
  void add(LayerPtr<T> layer) {
    detail::require(layer != nullptr, "Sequential::add", "null layer");
    Index rows = output_features();
    if (rows == 0 && layers_.empty()) rows = layer->expected_input_rows();
    Index out = 0;
    if (rows > 0) {
      try {
        out = layer->output_rows(rows);
      } catch (const InvalidArgument& e) {
        throw InvalidArgument(detail::concat("Sequential::add (layer ", layers_.size(), "): ",
                                             e.what()));
      }
    }
    if (layers_.empty() && input_features_ == 0) input_features_ = rows;
    if (first_trainable_ == npos && !layer->parameters().empty()) first_trainable_ = layers_.size();
    layers_.push_back(std::move(layer));
    rows_after_.push_back(out);
  }

  /// Number of layers.
  Index size() const { return static_cast<Index>(layers_.size()); }
  /// True for a model without layers.
  bool empty() const { return layers_.empty(); }
  /// Layer i, 0-based; throws std::out_of_range outside [0, size()).
  Layer<T>& layer(Index i) { return *layers_.at(static_cast<std::size_t>(i)); }
  /// Layer i, 0-based; throws std::out_of_range outside [0, size()).
  const Layer<T>& layer(Index i) const { return *layers_.at(static_cast<std::size_t>(i)); }

  /// Rows of an input batch (0 while unknown).
  Index input_features() const { return input_features_; }
  /// Rows of the model's output (0 while unknown).
  Index output_features() const {
    return rows_after_.empty() ? input_features_ : rows_after_.back();
  }
  /// Rows of layer i's output (0 while unknown), as summary() prints them. Throws
  /// std::out_of_range for an i outside [0, size()).
  Index layer_output_rows(Index i) const { return rows_after_.at(static_cast<std::size_t>(i)); }

  /// Runs the batch through every layer. `gen` is required in train and mc_sample modes when
  /// the model holds stochastic layers. Returns the last layer's output, valid until the next
  /// forward. The batch is copied into a buffer the model owns, so `x` may be a temporary.
  const Matrix<T>& forward(const Matrix<T>& x, Mode mode, Generator& gen) {
    input_ = x;
    return forward_borrowed(input_, mode, &gen);
  }
  /// As above, without a Generator: for eval mode or a model without stochastic layers.
  const Matrix<T>& forward(const Matrix<T>& x, Mode mode) {
    input_ = x;
    return forward_borrowed(input_, mode, nullptr);
  }

  /// As forward, without the copy: the layers read `x` in place until backward, so it must stay
  /// alive and unchanged until then (train_step and the batched evaluation pass buffers they
  /// own; a temporary does not compile). `gen` may be null in eval mode.
  const Matrix<T>& forward_borrowed(const Matrix<T>& x, Mode mode, Generator* gen) {
    require_batch(x);
    const Matrix<T>* activations = &x;
    for (auto& layer : layers_) activations = &layer->forward(*activations, mode, gen);
    has_forward_ = true;
    return *activations;
  }
  const Matrix<T>& forward_borrowed(Matrix<T>&&, Mode, Generator*) = delete;

  /// The eval-mode outputs for x (features x batch), read in place: no copy when the first
  /// layer reads views (Layer::forward_view: Dense does), else one copy into a buffer the model
  /// owns. Returns the last layer's output, valid until the next forward or infer; allocates
  /// nothing once the layers have seen the batch size. backward() after infer throws (nothing
  /// is cached for it). Throws InvalidArgument as forward does.
  const Matrix<T>& infer(const MatrixView<T>& x) {
    require_batch(x);
    has_forward_ = false;
    // Leading layers that pass their input through in eval mode (an input Dropout) would only
    // make the next one read a copy (W2's validation copied 31 MB an epoch).
    std::size_t first = 0;
    while (first + 1 < layers_.size() && layers_[first]->passes_input_in_eval()) ++first;
    const Matrix<T>* activations = layers_[first]->forward_view(x);
    if (activations == nullptr) {
      input_ = x;
      activations = &layers_[first]->forward(input_, Mode::eval, nullptr);
    }
    for (std::size_t i = first + 1; i < layers_.size(); ++i)
      activations = &layers_[i]->forward(*activations, Mode::eval, nullptr);
    return *activations;
  }

  /// Back-propagates d loss / d output through the cached activations, writing every parameter
  /// gradient. Returns d loss / d input when `need_input_grad`, else an empty matrix (the first
  /// layer then skips computing it).
  const Matrix<T>& backward(const Matrix<T>& output_grad, bool need_input_grad = false) {
    detail::require(has_forward_, "Sequential::backward", "called before forward");
    // Below the first layer with parameters nothing reads the input gradient: skip computing
    // it (the first Dense after an input Dropout would otherwise pay a full GEMM for nothing).
    const Matrix<T>* grad = &output_grad;
    for (std::size_t i = layers_.size(); i-- > 0;) {
      if (!need_input_grad && (first_trainable_ == npos || i < first_trainable_)) break;
      grad = &layers_[i]->backward(*grad, need_input_grad || i > first_trainable_);
    }
    return need_input_grad ? *grad : empty_;
  }

  /// Trainable parameters of every layer, named "<index>.<kind>.<name>", e.g. "0.Dense.weight",
  /// each carrying its layer's index. model/model_state.hpp gathers them with the buffers.
  ParameterList<T> parameters() { return collect([](Layer<T>& l) { return l.parameters(); }); }
  /// Non-trainable state (BatchNorm running statistics), named like parameters().
  ParameterList<T> buffers() { return collect([](Layer<T>& l) { return l.buffers(); }); }

  /// Scalars over every trainable parameter.
  Index parameter_count() const {
    Index count = 0;
    for (auto& layer : layers_) count += layer->parameter_count();
    return count;
  }

  /// Sum of the layers' regularization penalties (added to the reported loss).
  T penalty() const {
    T total = T(0);
    for (const auto& layer : layers_) total += layer->penalty();
    return total;
  }

  /// Applies every layer's constraint (max-norm); fit calls it after each optimizer step.
  void apply_constraints() {
    for (auto& layer : layers_) layer->apply_constraints();
  }

  /// The largest of the layers' min_train_batch(): train-mode batches must be at least this.
  Index min_train_batch() const {
    Index least = 1;
    for (const auto& layer : layers_) least = std::max(least, layer->min_train_batch());
    return least;
  }

  /// True when a layer draws random numbers in train and mc_sample modes (dropout).
  bool is_stochastic() const {
    for (const auto& layer : layers_)
      if (layer->is_stochastic()) return true;
    return false;
  }

  /// A table of layers, output shapes and parameter counts, like Keras' model.summary().
  std::string summary() const {
    std::ostringstream out;
    out << std::left << std::setw(40) << "Layer" << std::setw(16) << "Output" << "Params\n";
    out << std::string(64, '-') << '\n';
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      std::string shape =
          rows_after_[i] > 0 ? "(" + std::to_string(rows_after_[i]) + ", batch)" : "?";
      out << std::setw(40) << (std::to_string(i) + " " + layers_[i]->name()) << std::setw(16)
          << shape << thousands(layers_[i]->parameter_count()) << '\n';
    }
    out << std::string(64, '-') << '\n'
        << "Total parameters: " << thousands(parameter_count()) << '\n';
    return out.str();
  }

 private:
  /// Throws InvalidArgument unless the model has layers and x is a nonempty batch of its width.
  void require_batch(const MatrixView<T>& x) const {
    detail::require(!layers_.empty(), "Sequential::forward", "the model has no layers");
    if (input_features_ > 0 && x.rows() != input_features_)
      throw InvalidArgument(detail::concat("Sequential::forward: input has ", x.rows(),
                                           " features (rows), expected ", input_features_));
    detail::require(x.cols() > 0, "Sequential::forward", "empty batch (0 columns)");
  }

  template <class Getter>
  ParameterList<T> collect(Getter get) {
    ParameterList<T> all;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const std::string prefix = std::to_string(i) + "." + layers_[i]->kind() + ".";
      for (auto view : get(*layers_[i])) {
        view.name = prefix + view.name;
        view.layer = static_cast<Index>(i);
        all.push_back(std::move(view));
      }
    }
    return all;
  }

  Index input_features_ = 0;
  std::vector<LayerPtr<T>> layers_;
  std::vector<Index> rows_after_;  // output rows after each layer (0 = unknown)
  Matrix<T> input_;
  Matrix<T> empty_;  // returned by backward when the input gradient is not wanted
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::size_t first_trainable_ = npos;  // index of the first layer with parameters
  bool has_forward_ = false;
};

}  // namespace dropnet
