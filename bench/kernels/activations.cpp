// Activations: dropnet's functor (Activation::forward/backward) against what a user would write,
// on 120x64 (W1's first hidden layer, batch 64) and 512x128 (W3's, batch 128).

#include <string>
#include <unsupported/Eigen/SpecialFunctions>  // erf, for the plain GELU

#include "kernels.hpp"

namespace bench::kernels {
namespace {

template <class Activation, class Forward, class Backward>
void activation_pair(benchmark::State& state, Activation act, Forward eigen_forward,
                     Backward eigen_backward, bool backward) {
  const Index rows = state.range(0), cols = state.range(1);
  const Mat z = random_matrix(rows, cols, 1, 2.f);
  const Mat da = random_matrix(rows, cols, 2);
  Mat a, a_ref, dz, dz_ref;
  act.forward(z, a);
  eigen_forward(z, a_ref);
  if (!same(state, a, a_ref, "forward", 1e-5)) return;
  if (!backward) {
    paired(
        state, "eigen",
        [&] {
          act.forward(z, a);
          benchmark::DoNotOptimize(a.data());
        },
        [&] {
          eigen_forward(z, a_ref);
          benchmark::DoNotOptimize(a_ref.data());
        },
        Work::items(double(z.size())));
    return;
  }
  act.backward(z, a, da, dz);
  eigen_backward(z, a_ref, da, dz_ref);
  if (!same(state, dz, dz_ref, "backward", 1e-5)) return;
  paired(
      state, "eigen",
      [&] {
        act.backward(z, a, da, dz);
        benchmark::DoNotOptimize(dz.data());
      },
      [&] {
        eigen_backward(z, a_ref, da, dz_ref);
        benchmark::DoNotOptimize(dz_ref.data());
      },
      Work::items(double(z.size())));
}

template <class Activation, class Forward, class Backward>
void register_activation(const std::string& name, Activation act, Forward f, Backward b) {
  for (const bool backward : {false, true}) {
    benchmark::RegisterBenchmark(
        ("activation/" + name + (backward ? "/backward" : "/forward")).c_str(),
        [=](benchmark::State& state) { activation_pair(state, act, f, b, backward); })
        ->ArgNames({"rows", "batch"})
        ->Args({120, 64})
        ->Args({512, 128})
        ->UseManualTime();
  }
}

// The plain Eigen expressions: one line each, as written without a library.
using A = Eigen::ArrayXXf;

}  // namespace

void register_activations() {
  register_activation(
      "ReLU", dropnet::ReLU{}, [](const Mat& z, Mat& a) { a = z.cwiseMax(0.f); },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        dz = da.cwiseProduct((z.array() > 0.f).cast<float>().matrix());
      });
  register_activation(
      "LeakyReLU", dropnet::LeakyReLU{0.01},
      [](const Mat& z, Mat& a) { a = z.array().max(0.01f * z.array()).matrix(); },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        dz = (z.array() > 0.f).select(da.array(), 0.01f * da.array()).matrix();
      });
  register_activation(
      "ELU", dropnet::ELU{1.0},
      [](const Mat& z, Mat& a) {
        a = (z.array() > 0.f).select(z.array(), z.array().exp() - 1.f).matrix();
      },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        dz = (z.array() > 0.f).select(da.array(), da.array() * z.array().exp()).matrix();
      });
  register_activation(
      "SELU", dropnet::SELU{},
      [](const Mat& z, Mat& a) {
        const float l = 1.0507009873554805f, al = 1.6732632423543772f * l;
        a = (z.array() > 0.f).select(l * z.array(), al * (z.array().exp() - 1.f)).matrix();
      },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        const float l = 1.0507009873554805f, al = 1.6732632423543772f * l;
        dz = (da.array() *
              (z.array() > 0.f).select(A::Constant(z.rows(), z.cols(), l), al * z.array().exp()))
                 .matrix();
      });
  register_activation(
      "Sigmoid", dropnet::Sigmoid{},
      [](const Mat& z, Mat& a) { a = (1.f + (-z.array()).exp()).inverse().matrix(); },
      [](const Mat&, const Mat& a, const Mat& da, Mat& dz) {
        dz = (da.array() * a.array() * (1.f - a.array())).matrix();
      });
  register_activation(
      "Tanh", dropnet::Tanh{}, [](const Mat& z, Mat& a) { a = z.array().tanh().matrix(); },
      [](const Mat&, const Mat& a, const Mat& da, Mat& dz) {
        dz = (da.array() * (1.f - a.array().square())).matrix();
      });
  register_activation(
      "Softplus", dropnet::Softplus{},
      [](const Mat& z, Mat& a) {
        a = (z.array().max(0.f) + (-z.array().abs()).exp().log1p()).matrix();
      },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        dz = (da.array() / (1.f + (-z.array()).exp())).matrix();
      });
  register_activation(
      "Swish", dropnet::Swish{},
      [](const Mat& z, Mat& a) { a = (z.array() / (1.f + (-z.array()).exp())).matrix(); },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        const A s = (1.f + (-z.array()).exp()).inverse();
        dz = (da.array() * (s + z.array() * s * (1.f - s))).matrix();
      });
  register_activation(
      "GELU", dropnet::GELU{},
      [](const Mat& z, Mat& a) {
        a = (0.5f * z.array() * (1.f + (z.array() * 0.70710678f).erf())).matrix();
      },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        dz = (da.array() * (0.5f * (1.f + (z.array() * 0.70710678f).erf()) +
                            z.array() * 0.39894228f * (-0.5f * z.array().square()).exp()))
                 .matrix();
      });
  register_activation(
      "GELUTanh", dropnet::GELUTanh{},
      [](const Mat& z, Mat& a) {
        const A x = z.array();
        a = (0.5f * x * (1.f + (0.7978845608f * (x + 0.044715f * x.cube())).tanh())).matrix();
      },
      [](const Mat& z, const Mat&, const Mat& da, Mat& dz) {
        const A x = z.array();
        const A t = (0.7978845608f * (x + 0.044715f * x.cube())).tanh();
        dz = (da.array() * (0.5f * (1.f + t) + 0.5f * x * (1.f - t.square()) * 0.7978845608f *
                                                   (1.f + 3.f * 0.044715f * x.square())))
                 .matrix();
      });
}

}  // namespace bench::kernels
