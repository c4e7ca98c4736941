#pragma once
// WeightsSnapshot<T>: a copy of a model's state, parameters() followed by buffers().
//
// capture(model) copies every tensor (name, shape, values); restore(model) writes them back.
// Buffers are part of the state because a BatchNorm model restored without its running
// statistics would predict differently from the epoch it was saved at. EarlyStopping,
// ModelCheckpoint and the weights file (io/weights_file.hpp) share it.
//
// restore throws InvalidArgument when the snapshot is empty or its tensors differ from the
// model's in count, name or shape; it checks everything before writing, so on a throw the model
// is unchanged. capture reuses its storage when the shapes repeat.

#include <string>
#include <utility>
#include <vector>

#include "sequential.hpp"

namespace dropnet {

template <class T>
class WeightsSnapshot {
 public:
  struct Tensor {
    std::string name;  ///< as Sequential names it, e.g. "0.Dense.weight"
    Index rows = 0;
    Index cols = 0;
    Vector<T> values;  ///< rows*cols, column-major
  };

  WeightsSnapshot() = default;
  explicit WeightsSnapshot(std::vector<Tensor> tensors)
      : tensors_(std::move(tensors)), captured_(true) {}

  void capture(Sequential<T>& model) {
    const ParameterList<T> views = state_of(model);
    tensors_.resize(views.size());
    for (std::size_t i = 0; i < views.size(); ++i) {
      tensors_[i].name = views[i].name;
      tensors_[i].rows = views[i].rows;
      tensors_[i].cols = views[i].cols;
      tensors_[i].values = views[i].flat_value();
    }
    captured_ = true;
  }

  void restore(Sequential<T>& model) const {
    detail::require(captured_, "WeightsSnapshot::restore", "nothing captured");
    const ParameterList<T> views = state_of(model);
    const std::string problem = mismatch(views);
    if (!problem.empty()) throw InvalidArgument("WeightsSnapshot::restore: " + problem);
    for (std::size_t i = 0; i < views.size(); ++i) views[i].flat_value() = tensors_[i].values;
  }

  /// "" when the snapshot fits the model's tensors, else what differs first.
  std::string mismatch(Sequential<T>& model) const { return mismatch(state_of(model)); }

  /// Forgets the capture (keeps the storage for the next one).
  void clear() { captured_ = false; }
  bool empty() const { return !captured_; }
  const std::vector<Tensor>& tensors() const { return tensors_; }

  /// The tensors a snapshot covers, in order: parameters() then buffers().
  static ParameterList<T> state_of(Sequential<T>& model) {
    ParameterList<T> views = model.parameters();
    for (auto& buffer : model.buffers()) views.push_back(std::move(buffer));
    return views;
  }

 private:
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

  std::vector<Tensor> tensors_;
  bool captured_ = false;
};

}  // namespace dropnet
