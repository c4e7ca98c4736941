#include "model.hpp"

#include <dropnet/activations/elu.hpp>
#include <dropnet/activations/relu.hpp>
#include <dropnet/activations/sigmoid.hpp>
#include <dropnet/activations/swish.hpp>
#include <dropnet/io/fashion_mnist.hpp>
#include <dropnet/layers/batch_norm.hpp>
#include <dropnet/layers/dense.hpp>
#include <dropnet/layers/dropout.hpp>
#include <sstream>
#include <stdexcept>

namespace fmnist {

using dropnet::Index;
using Model = dropnet::Sequential<float>;

namespace {

template <class Layer>
void regularize(Layer& dense, const ModelSpec& spec) {
  if (spec.l2 > 0) dense.with_l2(static_cast<float>(spec.l2));
  if (spec.max_norm > 0) dense.with_max_norm(static_cast<float>(spec.max_norm));
}

/// One hidden block; Activation is a compile-time functor, so it is chosen by a switch below.
template <class Activation>
void add_hidden(Model& model, Index in, Index out, const ModelSpec& spec, dropnet::Generator& gen) {
  using namespace dropnet;
  if (spec.batchnorm) {
    // A linear Dense: the activation comes after the normalization.
    auto& dense = model.add(Dense<float>(in, out, gen, default_init<Activation>()));
    regularize(dense, spec);
    model.add(BatchNorm<float>(out));
    model.add(ActivationLayer<float, Activation>());
  } else {
    regularize(model.add(Dense<float, Activation>(in, out, gen)), spec);
  }
}

void add_hidden(Model& model, Index in, Index out, const ModelSpec& spec, dropnet::Generator& gen) {
  const std::string& a = spec.activation;
  using namespace dropnet;
  if (a == "relu") return add_hidden<ReLU>(model, in, out, spec, gen);
  if (a == "leaky_relu") return add_hidden<LeakyReLU>(model, in, out, spec, gen);
  if (a == "elu") return add_hidden<ELU>(model, in, out, spec, gen);
  if (a == "selu") return add_hidden<SELU>(model, in, out, spec, gen);
  if (a == "gelu") return add_hidden<GELU>(model, in, out, spec, gen);
  if (a == "swish") return add_hidden<Swish>(model, in, out, spec, gen);
  if (a == "tanh") return add_hidden<Tanh>(model, in, out, spec, gen);
  if (a == "sigmoid") return add_hidden<Sigmoid>(model, in, out, spec, gen);
  throw std::invalid_argument("unknown activation '" + a + "'");
}

void add_dropout(Model& model, const ModelSpec& spec, std::size_t position) {
  if (position < spec.dropout.size() && spec.dropout[position] > 0)
    model.add(dropnet::Dropout<float>(spec.dropout[position]));
}

}  // namespace

Model build_model(const ModelSpec& spec, dropnet::Generator& gen) {
  namespace fm = dropnet::fashion_mnist;
  Model model(fm::features);
  Index width = fm::features;
  add_dropout(model, spec, 0);
  for (std::size_t i = 0; i < spec.hidden.size(); ++i) {
    add_hidden(model, width, spec.hidden[i], spec, gen);
    add_dropout(model, spec, i + 1);
    width = spec.hidden[i];
  }
  regularize(model.add(dropnet::Dense<float>(width, fm::classes, gen)), spec);
  return model;
}

std::string dropout_text(const std::vector<double>& rates) {
  bool any = false;
  for (double r : rates) any = any || r > 0;
  if (!any) return "none";
  std::ostringstream out;
  for (std::size_t i = 0; i < rates.size(); ++i) out << (i ? "/" : "") << rates[i];
  return out.str();
}

std::string architecture(const ModelSpec& spec) {
  std::ostringstream out;
  out << "784";
  for (auto h : spec.hidden) out << "-" << h;
  out << "-10 " << spec.activation;
  return out.str();
}

std::string describe(const ModelSpec& spec) {
  std::ostringstream out;
  out << architecture(spec);
  out << ", dropout " << dropout_text(spec.dropout);
  if (spec.batchnorm) out << ", BatchNorm";
  if (spec.l2 > 0) out << ", L2 " << spec.l2;
  if (spec.max_norm > 0) out << ", max-norm " << spec.max_norm;
  return out.str();
}

}  // namespace fmnist
