#pragma once
// with_activation(config, f): calls f with the activation functor a layer config names, so a
// layer templated on its activation (Dense<T, A>, DropConnectDense, Conv2D, ActivationLayer) can
// rebuild the right instantiation in its from_config.
//
// Reads the config's string "activation" (one of DROPNET_FOR_EACH_ACTIVATION's names) and number
// "activation_parameter": a parameterized activation (LeakyReLU, ELU) is built as A(parameter);
// the others require the parameter to be 0.
// Throws FormatError("layer config <kind>: ...") for an unknown name or a stray parameter.

#include <string>
#include <utility>

#include "../activations/activation.hpp"
#include "../activations/elu.hpp"
#include "../activations/relu.hpp"
#include "../activations/sigmoid.hpp"
#include "../activations/softmax.hpp"
#include "../activations/swish.hpp"
#include "../core/error.hpp"
#include "layer_config.hpp"

/// X-macro over every activation a layer config can name, in dispatch order: the one list that
/// with_activation and the compiled library's instantiations (dropnet/instantiations.hpp) share.
#define DROPNET_FOR_EACH_ACTIVATION(X) \
  X(Identity) X(ReLU) X(LeakyReLU) X(ELU) X(SELU) X(Sigmoid) X(Tanh) X(Softplus) X(Swish) X(GELU) \
  X(GELUTanh) X(Softmax) X(LogSoftmax)

namespace dropnet {

namespace detail {

/// The activation A(parameter), or A{} for an activation without one (then parameter must be 0).
template <class A>
A activation_from(const LayerConfig& c, double parameter) {
  if constexpr (A::has_parameter) {
    return A(parameter);
  } else {
    if (parameter != 0.0)
      throw FormatError(concat(config_where(c), ": activation ", A::kind,
                               " takes no parameter, got activation_parameter=", parameter));
    return A{};
  }
}

}  // namespace detail

/// Calls f(activation) with the activation `c` names (see the file comment) and returns its
/// result; every branch must return the same type (e.g. LayerPtr<T>). Throws FormatError.
template <class F>
decltype(auto) with_activation(const LayerConfig& c, F&& f) {
  const std::string name = c.string("activation");
  const double parameter = c.finite("activation_parameter");
#define DROPNET_TRY_ACTIVATION(A) \
  if (name == A::kind) return f(detail::activation_from<A>(c, parameter));
  DROPNET_FOR_EACH_ACTIVATION(DROPNET_TRY_ACTIVATION)
#undef DROPNET_TRY_ACTIVATION
  throw FormatError(detail::concat(detail::config_where(c), ": unknown activation '", name, "'"));
}

}  // namespace dropnet
