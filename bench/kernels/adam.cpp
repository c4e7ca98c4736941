// Adam step over W1's parameters (784-120-60-10: 101,770 values) against the same update written
// over plain vectors, as torch.optim.Adam defines it.

#include <cmath>
#include <vector>

#include "kernels.hpp"

namespace bench::kernels {
namespace {

void adam_step(benchmark::State& state) {
  dropnet::Generator gen(1);
  dropnet::Sequential<float> model(784);
  model.add(dropnet::Dense<float, dropnet::ReLU>(784, 120, gen));
  model.add(dropnet::Dense<float, dropnet::ReLU>(120, 60, gen));
  model.add(dropnet::Dense<float>(60, 10, gen));
  auto params = model.parameters();
  Index total = 0;
  for (auto& p : params) {
    p.flat_grad() = random_matrix(p.size(), 1, unsigned(total + 1), 0.01f);
    total += p.size();
  }
  dropnet::Adam<float> adam(params, dropnet::AdamOptions(1e-3));
  // plain copy of the same parameters, with its own moments
  std::vector<Vec> value, grad, m, v;
  for (auto& p : params) {
    value.push_back(p.flat_value());
    grad.push_back(p.flat_grad());
    m.push_back(Vec::Zero(p.size()));
    v.push_back(Vec::Zero(p.size()));
  }
  long t = 0;
  auto plain_step = [&] {
    ++t;
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, lr = 1e-3f;
    const float step = lr / (1.f - std::pow(b1, float(t)));
    const float bc2 = std::sqrt(1.f - std::pow(b2, float(t)));
    for (std::size_t i = 0; i < value.size(); ++i) {
      m[i] = b1 * m[i] + (1.f - b1) * grad[i];
      v[i] = b2 * v[i] + (1.f - b2) * grad[i].cwiseProduct(grad[i]);
      value[i].array() -= step * m[i].array() / (v[i].array().sqrt() / bc2 + eps);
    }
  };
  adam.step();
  plain_step();
  for (std::size_t i = 0; i < value.size(); ++i)
    if (!same(state, params[i].flat_value(), value[i], "parameter values", 1e-5)) return;
  paired(
      state, "eigen", [&] { adam.step(); }, [&] { plain_step(); }, Work::items(double(total)));
}

}  // namespace

void register_adam() { benchmark::RegisterBenchmark("adam/step_W1", adam_step)->UseManualTime(); }

}  // namespace bench::kernels
