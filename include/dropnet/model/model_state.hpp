#pragma once
// ModelState<T>: the one named, ordered view of a model's state, and WeightsSnapshot<T>, a copy
// of it.
//
//   ModelState<float> state(model);   state.tensors(): parameters() then buffers(), e.g.
//                                     "0.Dense.weight", "0.Dense.bias", "1.BatchNorm.scale", ...,
//                                     "1.BatchNorm.running_mean", ...
//   state.pack_values(v);  state.unpack_values(v);        every tensor, as one vector
//   state.pack_gradients(g);  state.unpack_gradients(g);  every parameter's gradient
//   state.require_optimizer(adam, "fit");                 adam updates exactly these parameters
//
// Every path that walks a model's state goes through this order: the model file, the
// non-finite policy, early stopping and checkpoints (through WeightsSnapshot), and whatever
// moves the state between processes. Buffers (BatchNorm's running statistics) are part of it
// because a model restored without them would predict differently.
//
// A ModelState holds views (pointers into the layers), so it describes the model as it was
// built: adding a layer afterwards needs a new ModelState. Packing and unpacking allocate
// nothing once the vector has the right size; unpack throws InvalidArgument on a wrong size
// before writing anything.

#include <string>
#include <utility>
#include <vector>

#include "../optimizers/optimizer.hpp"
#include "sequential.hpp"

namespace dropnet {

namespace detail {

/// out[...] = scale x the `field` (value or grad) of every view, laid end to end in order.
template <class T>
void pack_views(const ParameterList<T>& views, T* ParameterView<T>::*field, T* out, T scale) {
  for (const auto& v : views) {
    Eigen::Map<Vector<T>>(out, v.size()) = scale * Eigen::Map<const Vector<T>>(v.*field, v.size());
    out += v.size();
  }
}

/// The `field` of every view = scale x in[...], read end to end in pack_views' order.
template <class T>
void unpack_views(const ParameterList<T>& views, T* ParameterView<T>::*field, const T* in, T scale) {
  for (const auto& v : views) {
    Eigen::Map<Vector<T>>(v.*field, v.size()) = scale * Eigen::Map<const Vector<T>>(in, v.size());
    in += v.size();
  }
}

}  // namespace detail

/// Views of a model's parameters then buffers, in layer order; see the file comment.
template <class T>
class ModelState {
 public:
  /// The views of the model's tensors as it is now (adding a layer needs a new state).
  explicit ModelState(Sequential<T>& model)
      : parameters_(model.parameters()), buffers_(model.buffers()), tensors_(parameters_) {
    tensors_.insert(tensors_.end(), buffers_.begin(), buffers_.end());
    for (const auto& p : parameters_) gradient_count_ += p.size();
    value_count_ = gradient_count_;
    for (const auto& b : buffers_) value_count_ += b.size();
  }

  /// Parameters then buffers, in layer order.
  const ParameterList<T>& tensors() const { return tensors_; }
  /// The trainable tensors (each with a gradient).
  const ParameterList<T>& parameters() const { return parameters_; }
  /// The non-trainable tensors (no gradient).
  const ParameterList<T>& buffers() const { return buffers_; }

  /// Scalars over every tensor, the length of pack_values' vector.
  Index value_count() const { return value_count_; }
  /// Scalars over every parameter, the length of pack_gradients' vector.
  Index gradient_count() const { return gradient_count_; }

  /// Copies every tensor's values, in order, into `out` (resized to value_count()).
  void pack_values(Vector<T>& out) const {
    out.resize(value_count_);
    detail::pack_views(tensors_, &ParameterView<T>::value, out.data(), T(1));
  }
  /// Writes `in` (value_count() scalars, as pack_values lays them out) into the tensors.
  void unpack_values(const Vector<T>& in) const {
    require_size(in, value_count_, "unpack_values");
    detail::unpack_views(tensors_, &ParameterView<T>::value, in.data(), T(1));
  }
  /// Copies every parameter's gradient, in order, into `out` (resized to gradient_count()).
  void pack_gradients(Vector<T>& out) const {
    out.resize(gradient_count_);
    pack_gradients(out.data(), T(1));
  }
  /// Writes `in` (gradient_count() scalars) into the parameters' gradients.
  void unpack_gradients(const Vector<T>& in) const {
    require_size(in, gradient_count_, "unpack_gradients");
    unpack_gradients(in.data(), T(1));
  }
  /// out[0 .. gradient_count()) = scale x every parameter's gradient, in order: one pass, for a
  /// caller that packs into part of a larger buffer (data-parallel fit's allreduce buffer).
  void pack_gradients(T* out, T scale) const {
    detail::pack_views(parameters_, &ParameterView<T>::grad, out, scale);
  }
  /// Every parameter's gradient = scale x in[...] (gradient_count() scalars, in pack order).
  void unpack_gradients(const T* in, T scale) const {
    detail::unpack_views(parameters_, &ParameterView<T>::grad, in, scale);
  }

  /// True when `optimizer` updates exactly these parameters, in this order.
  bool is_optimized_by(const Optimizer<T>& optimizer) const {
    const ParameterList<T>& theirs = optimizer.parameters();
    if (theirs.size() != parameters_.size()) return false;
    for (std::size_t i = 0; i < theirs.size(); ++i)
      if (theirs[i].value != parameters_[i].value || theirs[i].size() != parameters_[i].size())
        return false;
    return true;
  }

  /// Throws InvalidArgument, prefixed by `where`, unless is_optimized_by(optimizer): an
  /// optimizer built from another model, or before a layer was added, would update nothing.
  void require_optimizer(const Optimizer<T>& optimizer, const std::string& where) const {
    if (is_optimized_by(optimizer)) return;
    const std::size_t theirs = optimizer.parameters().size();
    throw InvalidArgument(detail::concat(
        where, ": the optimizer ", optimizer.name(), " was not built from this model's parameters",
        theirs == parameters_.size()
            ? std::string(" (model.parameters() of another model?)")
            : detail::concat(" (it updates ", theirs, " tensors, the model has ", parameters_.size(),
                             ": was a layer added after the optimizer was built?)")));
  }

 private:
  static void require_size(const Vector<T>& in, Index count, const char* what) {
    detail::require(in.size() == count, std::string("ModelState::") + what, "expected ", count,
                    " values, got ", in.size());
  }

  ParameterList<T> parameters_, buffers_, tensors_;
  Index value_count_ = 0, gradient_count_ = 0;
};

/// A copy of a model's state (ModelState::tensors(): names, shapes, values), to put back later.
///
/// capture copies every tensor and reuses its storage when the shapes repeat (nothing is
/// allocated after the first capture of a model). restore throws InvalidArgument when nothing
/// was captured or the tensors differ from the model's in count, name or shape; it checks
/// everything before writing, so on a throw the model is unchanged.
template <class T>
class WeightsSnapshot {
 public:
  /// One tensor of the snapshot.
  struct Tensor {
    std::string name;  ///< as Sequential names it, e.g. "0.Dense.weight"
    Index rows = 0;    ///< rows of the tensor
    Index cols = 0;    ///< columns of the tensor
    Vector<T> values;  ///< rows*cols, column-major
  };

  WeightsSnapshot() = default;
  /// A snapshot of the given tensors (e.g. read from a file).
  explicit WeightsSnapshot(std::vector<Tensor> tensors)
      : tensors_(std::move(tensors)), captured_(true) {}

  /// Copies `views` (e.g. a ModelState's tensors() or buffers()).
  void capture(const ParameterList<T>& views) {
    tensors_.resize(views.size());
    for (std::size_t i = 0; i < views.size(); ++i) {
      tensors_[i].name = views[i].name;
      tensors_[i].rows = views[i].rows;
      tensors_[i].cols = views[i].cols;
      tensors_[i].values = views[i].flat_value();
    }
    captured_ = true;
  }
  /// Copies the model's whole state.
  void capture(Sequential<T>& model) { capture(ModelState<T>(model).tensors()); }

  /// Writes the copies back into `views`, which must match them (see mismatch).
  void restore(const ParameterList<T>& views) const {
    detail::require(captured_, "WeightsSnapshot::restore", "nothing captured");
    const std::string problem = mismatch(views);
    if (!problem.empty()) throw InvalidArgument("WeightsSnapshot::restore: " + problem);
    for (std::size_t i = 0; i < views.size(); ++i) views[i].flat_value() = tensors_[i].values;
  }
  /// Writes the copies back into the model's whole state.
  void restore(Sequential<T>& model) const { restore(ModelState<T>(model).tensors()); }

  /// "" when the snapshot fits `views`, else what differs first.
  std::string mismatch(const ParameterList<T>& views) const {
    if (views.size() != tensors_.size())
      return detail::concat("the model has ", views.size(), " tensors, the snapshot ",
                            tensors_.size());
    for (std::size_t i = 0; i < views.size(); ++i) {
      const Tensor& t = tensors_[i];
      if (views[i].name != t.name || views[i].rows != t.rows || views[i].cols != t.cols ||
          t.values.size() != t.rows * t.cols)
        return detail::concat("tensor ", i, " is '", t.name, "' ", t.rows, "x", t.cols,
                              " in the snapshot but '", views[i].name, "' ", views[i].rows, "x",
                              views[i].cols, " in the model");
    }
    return {};
  }
  /// "" when the snapshot fits the model's whole state, else what differs first.
  std::string mismatch(Sequential<T>& model) const { return mismatch(ModelState<T>(model).tensors()); }

  /// Forgets the capture (keeps the storage for the next one).
  void clear() { captured_ = false; }
  /// True until something is captured (and again after clear()).
  bool empty() const { return !captured_; }
  /// The copied tensors, in the order they were captured.
  const std::vector<Tensor>& tensors() const { return tensors_; }

 private:
  std::vector<Tensor> tensors_;
  bool captured_ = false;
};

}  // namespace dropnet
