// PyTorch parity for LogSoftmax, NLLLoss, BCELoss (probabilities, logs clamped at -100) and
// max-norm as torch.renorm: values and gradients against numbers printed by PyTorch 1.13.1
// (Debian python3-torch) itself, and gradients against finite differences in double.
//
// The reference numbers were printed by this script (run with /usr/bin/python3); tensors are
// samples x classes there, so their row-major order is dropnet's column-major order:
//   z = torch.tensor([[1.0, 0.5, -1.5, 2.0], [-2.0, 0.0, 3.0, 1.0], [30.0, -40.0, 10.0, 0.0]],
//                    dtype=torch.float64, requires_grad=True)
//   ls = torch.nn.LogSoftmax(dim=1)(z); (ls * w).sum().backward()     # w below
//   lp = ls.detach().requires_grad_(); torch.nn.NLLLoss()(lp, torch.tensor([3, 0, 1])).backward()
//   p = torch.tensor([[0.0, 1.0, 0.3], [1e-50, 0.999, 0.5]], requires_grad=True)  # and float32
//   t = torch.tensor([[1.0, 0.0, 0.2], [1.0, 1.0, 0.0]]); torch.nn.BCELoss()(p, t).backward()
//   torch.renorm(W, 2, 0, 4.0)   # W below, float64 and float32

#include <doctest/doctest.h>

#include <dropnet/activations/sigmoid.hpp>
#include <dropnet/activations/softmax.hpp>
#include <dropnet/layers/dense.hpp>
#include <dropnet/losses/binary_cross_entropy.hpp>
#include <dropnet/losses/nll.hpp>
#include <dropnet/losses/softmax_cross_entropy.hpp>
#include <dropnet/model/sequential.hpp>
#include <dropnet/regularizers/max_norm.hpp>
#include <dropnet/training/gradient_check.hpp>
#include <vector>

#include "test_data.hpp"

using namespace dropnet;

namespace {

template <class T>
Matrix<T> columns(Index rows, Index cols, const std::vector<double>& torch_row_major) {
  return Eigen::Map<const Matrix<double>>(torch_row_major.data(), rows, cols).cast<T>();
}

const std::vector<double> z_values = {1.0, 0.5, -1.5, 2.0, -2.0, 0.0, 3.0, 1.0, 30.0, -40.0, 10.0, 0.0};
const std::vector<double> w_values = {0.3, -1.0, 2.0, 0.5, 1.0, 1.0, 1.0, 1.0, -0.2, 0.7, 0.1, -3.0};

}  // namespace

TEST_CASE("LogSoftmax: values and gradient as torch.nn.LogSoftmax(dim=1)") {
  const Matrix<double> z = columns<double>(4, 3, z_values);
  ActivationLayer<double, LogSoftmax> layer;
  const Matrix<double> y = layer.forward(z, Mode::eval, nullptr);
  const std::vector<double> torch_y = {
      -1.483170924140598, -1.983170924140598,  -3.9831709241405977, -0.48317092414059787,
      -5.175515362616714, -3.1755153626167143, -0.1755153626167145, -2.1755153626167143,
      -2.0612471708220534e-09, -70.00000000206124, -20.000000002061245, -30.000000002061245};
  const std::vector<double> torch_dz = {
      -0.10845061755880514, -1.2477378225279747, 1.9664723316197548, -0.6102838915329751,
      0.9773867893511347,   0.8329097179385981,  -2.356098029850128, 0.5458015225603949,
      2.1999999950530067,   0.7,                 0.1000000049467687, -2.9999999999997753};
  const Matrix<double> dz = layer.backward(columns<double>(4, 3, w_values), true);
  for (Index i = 0; i < 12; ++i) {
    CHECK(y.data()[i] == doctest::Approx(torch_y[static_cast<std::size_t>(i)]).epsilon(1e-14));
    CHECK(dz.data()[i] == doctest::Approx(torch_dz[static_cast<std::size_t>(i)]).epsilon(1e-12));
  }
  // A class whose probability underflows (exp(-70) relative) keeps a finite log, as in torch.
  ActivationLayer<float, LogSoftmax> single;
  const Matrix<float> yf = single.forward(columns<float>(4, 3, z_values), Mode::eval, nullptr);
  CHECK(yf(1, 2) == doctest::Approx(-70.0f));
}

TEST_CASE("NLLLoss: value and gradient as torch.nn.NLLLoss; LogSoftmax + NLL = cross-entropy") {
  const Matrix<double> z = columns<double>(4, 3, z_values);
  ActivationLayer<double, LogSoftmax> layer;
  const Matrix<double> log_p = layer.forward(z, Mode::eval, nullptr);
  Labels labels(3);
  labels << 3, 0, 1;
  Matrix<double> grad;
  CHECK(NLLLoss<double>().compute(log_p, labels, &grad) ==
        doctest::Approx(25.21956209627285).epsilon(1e-14));
  Matrix<double> expected = Matrix<double>::Zero(4, 3);
  expected(3, 0) = expected(0, 1) = expected(1, 2) = -1.0 / 3.0;
  CHECK(grad == expected);
  // Dense one-hot targets give the same.
  Matrix<double> one_hot = -3.0 * expected;
  Matrix<double> dense_grad;
  CHECK(NLLLoss<double>().compute(log_p, one_hot, &dense_grad) ==
        doctest::Approx(25.21956209627285).epsilon(1e-14));
  CHECK(dense_grad.isApprox(expected, 1e-15));
  CHECK(SoftmaxCrossEntropy<double>().compute(z, labels, nullptr) ==
        doctest::Approx(25.21956209627285).epsilon(1e-13));
  const Labels out_of_range = Labels::Constant(3, 4);
  CHECK_THROWS_AS(NLLLoss<double>().compute(log_p, out_of_range, nullptr), InvalidArgument);
}

TEST_CASE_TEMPLATE("BCELoss on probabilities: logs clamped at -100, gradient as torch", T, float,
                   double) {
  const bool is_float = sizeof(T) == 4;
  const Matrix<T> p = columns<T>(3, 2, {0.0, 1.0, 0.3, is_float ? 1e-20 : 1e-50, 0.999, 0.5});
  const Matrix<T> t = columns<T>(3, 2, {1.0, 0.0, 0.2, 1.0, 1.0, 0.0});
  Matrix<T> grad;
  const T loss = BinaryCrossEntropy<T>().compute(p, t, &grad);
  const std::vector<double> torch_grad =
      is_float ? std::vector<double>{-166666665984.0, 166666665984.0, 0.0793650820851326,
                                     -166666665984.0, -0.16683350503444672, 0.3333333432674408}
               : std::vector<double>{-166666667332.63382, 166666667332.63382, 0.07936507936507935,
                                     -166666667332.63382, -0.1668335001668335, 0.3333333333333333};
  CHECK(double(loss) == doctest::Approx(is_float ? 41.211997985839844 : 50.20338036615161)
                            .epsilon(is_float ? 1e-6 : 1e-14));
  for (Index i = 0; i < 6; ++i)
    CHECK(double(grad.data()[i]) ==
          doctest::Approx(torch_grad[static_cast<std::size_t>(i)]).epsilon(is_float ? 1e-6 : 1e-14));
  const Matrix<T> above_one = Matrix<T>::Constant(1, 2, T(1.5)), zeros = Matrix<T>::Zero(1, 2);
  CHECK_THROWS_AS(BinaryCrossEntropy<T>().compute(above_one, zeros, nullptr), InvalidArgument);
}

TEST_CASE_TEMPLATE("max-norm is torch.renorm(w, 2, 0, c): rows above c scaled by c / (norm + 1e-7)",
                   T, float, double) {
  Matrix<T> w(5, 2);
  w << T(3), T(4), T(1), T(1), T(0), T(4), T(-30), T(40), T(4), T(1e-3);
  apply_max_norm(w, T(4));
  const std::vector<double> torch =
      sizeof(T) == 4
          ? std::vector<double>{2.4000000953674316, 3.200000047683716, 1.0, 1.0, 0.0, 4.0,
                                -2.3999998569488525, 3.1999998092651367, 4.0, 0.0010000000474974513}
          : std::vector<double>{2.399999952000001, 3.199999936000001, 1.0, 1.0, 0.0, 4.0,
                                -2.3999999952, 3.1999999936, 3.9999997750000142,
                                0.0009999999437500036};
  for (Index i = 0; i < 5; ++i)
    for (Index j = 0; j < 2; ++j)
      CHECK(double(w(i, j)) ==
            doctest::Approx(torch[static_cast<std::size_t>(2 * i + j)]).epsilon(sizeof(T) == 4 ? 2e-7 : 1e-15));
}

TEST_CASE("gradient checks in double: LogSoftmax with NLLLoss, Sigmoid with BCELoss") {
  Generator gen(31);
  const Matrix<double> x = test::normal_matrix<double>(5, 6, gen);
  Labels labels(6);
  labels << 0, 1, 2, 3, 1, 2;
  Sequential<double> classifier(5);
  classifier.add(Dense<double>(5, 4, gen));
  classifier.add(ActivationLayer<double, LogSoftmax>());
  GradientCheckOptions options;
  options.check_input = true;
  const auto nll = gradient_check(classifier, NLLLoss<double>(), x, labels, gen, options);
  CHECK_MESSAGE(nll.max_relative_error < 1e-7, nll.worst);

  Sequential<double> binary(5);
  binary.add(Dense<double, Sigmoid>(5, 3, gen));
  Matrix<double> targets = test::normal_matrix<double>(3, 6, gen).array().abs().min(1.0);
  const auto bce = gradient_check(binary, BinaryCrossEntropy<double>(), x, targets, gen, options);
  CHECK_MESSAGE(bce.max_relative_error < 1e-7, bce.worst);
}
