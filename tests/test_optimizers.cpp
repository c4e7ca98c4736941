// Optimizers and learning-rate schedules against torch.optim's definitions.
//
// Each optimizer is checked two ways: against a scalar double loop written straight from the
// torch.optim pseudo-code (independent of the Eigen implementation), and against a few values
// worked out by hand. Schedules are checked against sequences derived by hand from torch's rules.

// Lets the no-allocation test forbid Eigen heap allocations inside step(); must precede Eigen.
#define EIGEN_RUNTIME_NO_MALLOC

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <limits>
#include <vector>

#include "dropnet/optimizers/adagrad.hpp"
#include "dropnet/optimizers/adam.hpp"
#include "dropnet/optimizers/adamw.hpp"
#include "dropnet/optimizers/rmsprop.hpp"
#include "dropnet/optimizers/schedules.hpp"
#include "dropnet/optimizers/sgd.hpp"

using namespace dropnet;

namespace {

constexpr double nan_value = std::numeric_limits<double>::quiet_NaN();

template <class T>
double tolerance() {
  return sizeof(T) == sizeof(float) ? 2e-5 : 1e-12;
}

// ---------------------------------------------------------------------------------------------
// A two-tensor model (a 2x2 weight and a 3-vector bias, 7 values) with the gradient of a
// quadratic whose linear term changes sign and size between steps, so moments both grow and
// shrink (AMSGrad's maximum matters) and every state path is exercised.

constexpr int n_values = 7;

double gradient_at(double p, int k, int step) {
  const double curvature = 0.5 + 0.25 * k;
  const double offset = 0.3 * (k - 3) + 0.05;
  const double phase = step % 2 == 0 ? 1.0 : -0.25;
  return curvature * p + offset * phase;
}

std::vector<double> initial_values() { return {0.5, 1.5, -1.0, 2.0, -0.3, 0.8, 0.1}; }

template <class T>
struct TwoTensors {
  Matrix<T> w = Matrix<T>::Zero(2, 2);
  Matrix<T> dw = Matrix<T>::Zero(2, 2);
  Vector<T> b = Vector<T>::Zero(3);
  Vector<T> db = Vector<T>::Zero(3);

  TwoTensors() {
    const auto init = initial_values();
    for (int k = 0; k < n_values; ++k) value(k) = static_cast<T>(init[static_cast<size_t>(k)]);
  }

  ParameterList<T> parameters() {
    return {view_of<T>("w", w, &dw, ParameterRole::weight),
            view_of<T>("b", b, &db, ParameterRole::bias)};
  }

  T& value(int k) { return k < 4 ? w.data()[k] : b.data()[k - 4]; }
  T& grad(int k) { return k < 4 ? dw.data()[k] : db.data()[k - 4]; }

  void set_gradients(int step) {
    for (int k = 0; k < n_values; ++k)
      grad(k) = static_cast<T>(gradient_at(static_cast<double>(value(k)), k, step));
  }
};

/// Reference implementations: one scalar loop per optimizer, in double, from the pseudo-code.
struct ReferenceSGD {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
  std::vector<double> buf = std::vector<double>(n_values, 0.0);
  int t = 0;

  void step(std::vector<double>& p, const std::vector<double>& grad) {
    ++t;
    for (size_t k = 0; k < p.size(); ++k) {
      double g = grad[k];
      if (weight_decay != 0) g += weight_decay * p[k];
      if (momentum != 0) {
        buf[k] = t > 1 ? momentum * buf[k] + (1 - dampening) * g : g;
        g = nesterov ? g + momentum * buf[k] : buf[k];
      }
      p[k] -= lr * g;
    }
  }
};

struct ReferenceAdam {
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad, decoupled;
  std::vector<double> m = std::vector<double>(n_values, 0.0);
  std::vector<double> v = std::vector<double>(n_values, 0.0);
  std::vector<double> v_max = std::vector<double>(n_values, 0.0);
  int t = 0;

  // The textbook form with bias-corrected m_hat and v_hat; torch's code folds the corrections
  // into the step size, which is the same number up to rounding.
  void step(std::vector<double>& p, const std::vector<double>& grad) {
    ++t;
    for (size_t k = 0; k < p.size(); ++k) {
      double g = grad[k];
      if (decoupled)
        p[k] *= 1 - lr * weight_decay;
      else if (weight_decay != 0)
        g += weight_decay * p[k];
      m[k] = beta1 * m[k] + (1 - beta1) * g;
      v[k] = beta2 * v[k] + (1 - beta2) * g * g;
      v_max[k] = std::max(v_max[k], v[k]);
      const double m_hat = m[k] / (1 - std::pow(beta1, t));
      const double v_hat = (amsgrad ? v_max[k] : v[k]) / (1 - std::pow(beta2, t));
      p[k] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
};

struct ReferenceRMSprop {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered;
  std::vector<double> v = std::vector<double>(n_values, 0.0);
  std::vector<double> buf = std::vector<double>(n_values, 0.0);
  std::vector<double> g_avg = std::vector<double>(n_values, 0.0);

  void step(std::vector<double>& p, const std::vector<double>& grad) {
    for (size_t k = 0; k < p.size(); ++k) {
      double g = grad[k];
      if (weight_decay != 0) g += weight_decay * p[k];
      v[k] = alpha * v[k] + (1 - alpha) * g * g;
      double v_tilde = v[k];
      if (centered) {
        g_avg[k] = g_avg[k] * alpha + (1 - alpha) * g;
        v_tilde -= g_avg[k] * g_avg[k];
      }
      if (momentum > 0) {
        buf[k] = momentum * buf[k] + g / (std::sqrt(v_tilde) + eps);
        p[k] -= lr * buf[k];
      } else {
        p[k] -= lr * g / (std::sqrt(v_tilde) + eps);
      }
    }
  }
};

struct ReferenceAdagrad {
  double lr, lr_decay, weight_decay, initial_accumulator_value, eps;
  std::vector<double> sum{};
  int t = 0;

  void step(std::vector<double>& p, const std::vector<double>& grad) {
    if (sum.empty()) sum.assign(p.size(), initial_accumulator_value);
    ++t;
    const double lr_t = lr / (1 + (t - 1) * lr_decay);
    for (size_t k = 0; k < p.size(); ++k) {
      double g = grad[k];
      if (weight_decay != 0) g += weight_decay * p[k];
      sum[k] += g * g;
      p[k] -= lr_t * g / (std::sqrt(sum[k]) + eps);
    }
  }
};

/// Runs `steps` steps of `optimizer` on a TwoTensors model and of `reference` on a double copy,
/// checking every value after every step.
template <class T, class Reference>
void check_against_reference(Optimizer<T>& optimizer, TwoTensors<T>& model, Reference reference,
                             int steps = 6) {
  std::vector<double> p = initial_values();
  std::vector<double> grad(p.size());
  for (int s = 0; s < steps; ++s) {
    model.set_gradients(s);
    for (int k = 0; k < n_values; ++k)
      grad[static_cast<size_t>(k)] = gradient_at(p[static_cast<size_t>(k)], k, s);
    optimizer.step();
    reference.step(p, grad);
    for (int k = 0; k < n_values; ++k) {
      CAPTURE(s);
      CAPTURE(k);
      CHECK(static_cast<double>(model.value(k)) ==
            doctest::Approx(p[static_cast<size_t>(k)]).epsilon(tolerance<T>()));
    }
  }
  CHECK(optimizer.step_count() == steps);
}

/// One scalar parameter, for the hand-computed cases.
template <class T>
struct Scalar {
  Matrix<T> value = Matrix<T>::Constant(1, 1, T(1));
  Matrix<T> grad = Matrix<T>::Zero(1, 1);

  ParameterList<T> parameters() { return {view_of<T>("x", value, &grad, ParameterRole::weight)}; }
  double step(Optimizer<T>& optimizer, double g) {
    grad(0, 0) = static_cast<T>(g);
    optimizer.step();
    return static_cast<double>(value(0, 0));
  }
};

template <class T>
doctest::Approx near(double expected) {
  return doctest::Approx(expected).epsilon(tolerance<T>());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SGD

TEST_CASE_TEMPLATE("SGD matches the torch.optim.SGD reference loop", T, float, double) {
  TwoTensors<T> model;
  SUBCASE("plain") {
    SGD<T> opt(model.parameters(), SGDOptions(0.1));
    check_against_reference(opt, model, ReferenceSGD{0.1, 0, 0, 0, false});
  }
  SUBCASE("momentum") {
    SGD<T> opt(model.parameters(), SGDOptions(0.1).momentum(0.9));
    check_against_reference(opt, model, ReferenceSGD{0.1, 0.9, 0, 0, false});
  }
  SUBCASE("momentum with dampening and weight decay") {
    SGD<T> opt(model.parameters(), SGDOptions(0.05).momentum(0.8).dampening(0.3).weight_decay(0.1));
    check_against_reference(opt, model, ReferenceSGD{0.05, 0.8, 0.3, 0.1, false});
  }
  SUBCASE("nesterov with weight decay") {
    SGD<T> opt(model.parameters(), SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.01));
    check_against_reference(opt, model, ReferenceSGD{0.1, 0.9, 0, 0.01, true});
  }
}

TEST_CASE_TEMPLATE("SGD by hand", T, float, double) {
  Scalar<T> x;  // x = 1, constant gradient 1 unless stated
  SUBCASE("momentum: buffer starts as the gradient") {
    SGD<T> opt(x.parameters(), SGDOptions(0.1).momentum(0.9));
    CHECK(x.step(opt, 1) == near<T>(0.9));    // b = 1
    CHECK(x.step(opt, 1) == near<T>(0.71));   // b = 0.9 + 1 = 1.9
    CHECK(x.step(opt, 1) == near<T>(0.439));  // b = 1.71 + 1 = 2.71
  }
  SUBCASE("dampening applies from the second step on") {
    SGD<T> opt(x.parameters(), SGDOptions(0.1).momentum(0.9).dampening(0.5));
    CHECK(x.step(opt, 1) == near<T>(0.9));    // b = 1, not 0.5
    CHECK(x.step(opt, 1) == near<T>(0.76));   // b = 0.9 + 0.5 = 1.4
    CHECK(x.step(opt, 1) == near<T>(0.584));  // b = 1.26 + 0.5 = 1.76
  }
  SUBCASE("nesterov") {
    SGD<T> opt(x.parameters(), SGDOptions(0.1).momentum(0.9).nesterov(true));
    CHECK(x.step(opt, 1) == near<T>(0.81));   // b = 1, g = 1 + 0.9 * 1
    CHECK(x.step(opt, 1) == near<T>(0.539));  // b = 1.9, g = 1 + 0.9 * 1.9 = 2.71
  }
  SUBCASE("coupled weight decay with a zero gradient") {
    SGD<T> opt(x.parameters(), SGDOptions(0.1).weight_decay(0.1));
    CHECK(x.step(opt, 0) == near<T>(0.99));    // g = 0.1 * 1
    CHECK(x.step(opt, 0) == near<T>(0.9801));  // g = 0.1 * 0.99
  }
}

// ---------------------------------------------------------------------------------------------
// Adam and AdamW

TEST_CASE_TEMPLATE("Adam and AdamW match the torch.optim reference loop", T, float, double) {
  TwoTensors<T> model;
  SUBCASE("Adam, defaults but lr") {
    Adam<T> opt(model.parameters(), AdamOptions(0.01));
    check_against_reference(opt, model, ReferenceAdam{0.01, 0.9, 0.999, 1e-8, 0, false, false});
  }
  SUBCASE("Adam with coupled weight decay and other betas") {
    Adam<T> opt(model.parameters(), AdamOptions(0.02).betas(0.8, 0.95).eps(1e-6).weight_decay(0.1));
    check_against_reference(opt, model, ReferenceAdam{0.02, 0.8, 0.95, 1e-6, 0.1, false, false});
  }
  SUBCASE("Adam amsgrad") {
    Adam<T> opt(model.parameters(), AdamOptions(0.05).betas(0.8, 0.6).amsgrad(true));
    check_against_reference(opt, model, ReferenceAdam{0.05, 0.8, 0.6, 1e-8, 0, true, false});
  }
  SUBCASE("AdamW, default weight decay") {
    AdamW<T> opt(model.parameters(), AdamWOptions(0.01));
    check_against_reference(opt, model, ReferenceAdam{0.01, 0.9, 0.999, 1e-8, 1e-2, false, true});
  }
  SUBCASE("AdamW amsgrad, strong decay") {
    AdamW<T> opt(model.parameters(),
                 AdamWOptions(0.05).betas(0.8, 0.6).weight_decay(0.5).amsgrad(true));
    check_against_reference(opt, model, ReferenceAdam{0.05, 0.8, 0.6, 1e-8, 0.5, true, true});
  }
}

TEST_CASE_TEMPLATE("Adam and AdamW by hand", T, float, double) {
  Scalar<T> x;  // x = 1
  SUBCASE("a constant gradient moves Adam by lr per step: m_hat = g, v_hat = g^2") {
    Adam<T> opt(x.parameters());                       // lr 1e-3
    CHECK(x.step(opt, 2) == near<T>(0.999000000005));  // 1 - 1e-3 * 2 / (2 + 1e-8)
    CHECK(x.step(opt, 2) == near<T>(0.99800000001));
    CHECK(opt.step_count() == 2);
  }
  SUBCASE("amsgrad keeps the larger raw second moment") {
    Adam<T> opt(x.parameters(), AdamOptions(0.1).betas(0.5, 0.5).amsgrad(true));
    // t=1, g=2: m = 1, v = 2, corrections 0.5 and 0.5: x = 1 - 0.1 * 2 / (2 + 1e-8)
    CHECK(x.step(opt, 2) == near<T>(0.9000000005));
    // t=2, g=1: m = 1, v = 1.5 but v_max = 2; corrections 0.75: x -= 0.1 * (4/3) / sqrt(8/3)
    CHECK(x.step(opt, 1) == near<T>(0.8183503429072273));
    CHECK((*opt.state()[2])(0) == near<T>(2.0));
    CHECK((*opt.state()[1])(0) == near<T>(1.5));
  }
  SUBCASE("without amsgrad the same gradients use v = 1.5") {
    Adam<T> opt(x.parameters(), AdamOptions(0.1).betas(0.5, 0.5));
    x.step(opt, 2);
    CHECK(x.step(opt, 1) == near<T>(0.8057190970084602));  // x -= 0.1 * (4/3) / sqrt(2)
  }
  SUBCASE("AdamW decays the weight outside the moments") {
    AdamW<T> opt(x.parameters(), AdamWOptions(1e-3));  // weight_decay 1e-2
    CHECK(x.step(opt, 0) == near<T>(0.99999));  // 1 * (1 - 1e-3 * 1e-2); m = 0 so no Adam step
    CHECK(x.step(opt, 0) == near<T>(0.99999 * 0.99999));
  }
  SUBCASE("AdamW with a gradient") {
    AdamW<T> opt(x.parameters(), AdamWOptions(1e-3));
    CHECK(x.step(opt, 2) == near<T>(0.998990000005));  // 0.99999 - 1e-3 * 2 / (2 + 1e-8)
  }
}

// ---------------------------------------------------------------------------------------------
// RMSprop

TEST_CASE_TEMPLATE("RMSprop matches the torch.optim.RMSprop reference loop", T, float, double) {
  TwoTensors<T> model;
  SUBCASE("plain") {
    RMSprop<T> opt(model.parameters());
    check_against_reference(opt, model, ReferenceRMSprop{0.01, 0.99, 1e-8, 0, 0, false});
  }
  SUBCASE("centered") {
    RMSprop<T> opt(model.parameters(), RMSpropOptions(0.01).alpha(0.9).centered(true));
    check_against_reference(opt, model, ReferenceRMSprop{0.01, 0.9, 1e-8, 0, 0, true});
  }
  SUBCASE("momentum and weight decay") {
    RMSprop<T> opt(model.parameters(), RMSpropOptions(0.005).momentum(0.9).weight_decay(0.1));
    check_against_reference(opt, model, ReferenceRMSprop{0.005, 0.99, 1e-8, 0.1, 0.9, false});
  }
  SUBCASE("centered with momentum") {
    RMSprop<T> opt(model.parameters(),
                   RMSpropOptions(0.005).alpha(0.8).eps(1e-6).momentum(0.5).centered(true));
    check_against_reference(opt, model, ReferenceRMSprop{0.005, 0.8, 1e-6, 0, 0.5, true});
  }
}

TEST_CASE_TEMPLATE("RMSprop by hand", T, float, double) {
  Scalar<T> x;  // x = 1, g = 1, lr 1e-2, alpha 0.99
  SUBCASE("plain: v = 0.01") {
    RMSprop<T> opt(x.parameters());
    CHECK(x.step(opt, 1) == near<T>(0.900000009999999));  // 1 - 0.01 / (0.1 + 1e-8)
  }
  SUBCASE("centered: v - g_avg^2 = 0.01 - 0.0001") {
    RMSprop<T> opt(x.parameters(), RMSpropOptions().centered(true));
    CHECK(x.step(opt, 1) == near<T>(0.8994962285750878));  // 1 - 0.01 / (sqrt(0.0099) + 1e-8)
  }
}

// ---------------------------------------------------------------------------------------------
// Adagrad

TEST_CASE_TEMPLATE("Adagrad matches the torch.optim.Adagrad reference loop", T, float, double) {
  TwoTensors<T> model;
  SUBCASE("plain") {
    Adagrad<T> opt(model.parameters());
    check_against_reference(opt, model, ReferenceAdagrad{0.01, 0, 0, 0, 1e-10});
  }
  SUBCASE("lr_decay, weight decay, initial accumulator") {
    Adagrad<T> opt(
        model.parameters(),
        AdagradOptions(0.1).lr_decay(0.2).weight_decay(0.05).initial_accumulator_value(0.5).eps(
            1e-8));
    check_against_reference(opt, model, ReferenceAdagrad{0.1, 0.2, 0.05, 0.5, 1e-8});
  }
}

TEST_CASE_TEMPLATE("Adagrad by hand", T, float, double) {
  Scalar<T> x;
  Adagrad<T> opt(x.parameters(), AdagradOptions(0.01).lr_decay(0.1));
  CHECK(x.step(opt, 1) == near<T>(0.990000000001));      // s = 1: 1 - 0.01 / (1 + 1e-10)
  CHECK(x.step(opt, 1) == near<T>(0.9835717565361223));  // s = 2, lr_t = 0.01 / 1.1
}

// ---------------------------------------------------------------------------------------------
// State, learning rate, allocation

TEST_CASE_TEMPLATE("state() lists the per-parameter buffers in the documented order", T, float,
                   double) {
  TwoTensors<T> model;
  CHECK(SGD<T>(model.parameters(), SGDOptions(0.1)).state().empty());
  CHECK(SGD<T>(model.parameters(), SGDOptions(0.1).momentum(0.5)).state().size() == 2);
  CHECK(Adam<T>(model.parameters()).state().size() == 4);
  CHECK(RMSprop<T>(model.parameters(), RMSpropOptions().momentum(0.5).centered(true))
            .state()
            .size() == 6);
  CHECK(Adagrad<T>(model.parameters(), AdagradOptions().initial_accumulator_value(0.25))
            .state()[1]
            ->isConstant(T(0.25)));

  Adam<T> adam(model.parameters(), AdamOptions().amsgrad(true));
  const auto state = adam.state();
  REQUIRE(state.size() == 6);  // w: m, v, v_max; b: m, v, v_max
  CHECK(state[0]->size() == 4);
  CHECK(state[3]->size() == 3);
  model.set_gradients(0);
  adam.step();
  // m after one step is (1 - beta1) * g
  CHECK(static_cast<double>((*state[3])(0)) == near<T>(0.1 * static_cast<double>(model.db(0))));
}

TEST_CASE_TEMPLATE("set_learning_rate changes the next step", T, float, double) {
  Scalar<T> x;
  SGD<T> opt(x.parameters(), SGDOptions(0.1));
  opt.set_learning_rate(T(0.5));
  CHECK(opt.learning_rate() == T(0.5));
  CHECK(x.step(opt, 1) == near<T>(0.5));
  CHECK_THROWS_AS(opt.set_learning_rate(T(-1)), InvalidArgument);
  CHECK(opt.learning_rate() == T(0.5));
}

TEST_CASE_TEMPLATE("step() allocates nothing", T, float, double) {
  TwoTensors<T> model;
  SGD<T> sgd(model.parameters(), SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.1));
  Adam<T> adam(model.parameters(), AdamOptions().weight_decay(0.1).amsgrad(true));
  AdamW<T> adamw(model.parameters());
  RMSprop<T> rmsprop(model.parameters(),
                     RMSpropOptions().momentum(0.9).centered(true).weight_decay(1));
  Adagrad<T> adagrad(model.parameters(), AdagradOptions().weight_decay(0.1));
  model.set_gradients(0);
  Eigen::internal::set_is_malloc_allowed(false);
  for (Optimizer<T>* opt : std::vector<Optimizer<T>*>{&sgd, &adam, &adamw, &rmsprop, &adagrad})
    for (int s = 0; s < 2; ++s) opt->step();
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK(adagrad.step_count() == 2);
}

TEST_CASE_TEMPLATE("restrict_step: two optimizers on complementary ranges make the full step",
                   T, float, double) {
  // What a sharded data-parallel step relies on: [0, 3) and [3, 7) cut the 2x2 weight's last
  // element from the bias, and each half's optimizer touches its own elements and state only.
  using Make = std::function<std::unique_ptr<Optimizer<T>>(const ParameterList<T>&)>;
  const std::vector<Make> makers = {
      [](const ParameterList<T>& p) {
        return std::make_unique<SGD<T>>(p, SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.1));
      },
      [](const ParameterList<T>& p) {
        return std::make_unique<Adam<T>>(p, AdamOptions(0.1).weight_decay(0.1).amsgrad(true));
      },
      [](const ParameterList<T>& p) { return std::make_unique<AdamW<T>>(p, AdamWOptions(0.1)); },
      [](const ParameterList<T>& p) {
        return std::make_unique<RMSprop<T>>(
            p, RMSpropOptions(0.01).momentum(0.9).centered(true).weight_decay(0.1));
      },
      [](const ParameterList<T>& p) {
        return std::make_unique<Adagrad<T>>(p, AdagradOptions(0.1).weight_decay(0.1));
      }};
  for (const Make& make : makers) {
    TwoTensors<T> whole, halves;
    const auto full = make(whole.parameters());
    const auto low = make(halves.parameters()), high = make(halves.parameters());
    INFO(full->name());
    CHECK(full->is_elementwise());
    CHECK(full->element_count() == n_values);
    low->restrict_step(0, 3);
    high->restrict_step(3, n_values);
    for (int step = 0; step < 3; ++step) {
      whole.set_gradients(step);
      halves.set_gradients(step);
      full->step();
      low->step();
      high->step();
      for (int k = 0; k < n_values; ++k)
        CHECK(static_cast<double>(halves.value(k)) == near<T>(static_cast<double>(whole.value(k))));
    }
    // Each half's state: the full optimizer's inside its range, untouched (initial) outside.
    const auto full_state = full->state(), low_state = low->state(), high_state = high->state();
    const std::size_t slots = full_state.size() / 2;
    for (std::size_t q = 0; q < full_state.size(); ++q) {
      const bool weight = q < slots;  // state() lists w's vectors, then b's
      for (Index e = 0; e < full_state[q]->size(); ++e) {
        const bool in_low = weight && e < 3;
        const Vector<T>& owner = in_low ? *low_state[q] : *high_state[q];
        const Vector<T>& other = in_low ? *high_state[q] : *low_state[q];
        CHECK(static_cast<double>(owner(e)) == near<T>(static_cast<double>((*full_state[q])(e))));
        CHECK(other(e) == T(0));
      }
    }
    low->restrict_step(0, n_values);  // back to the whole range: every element moves
    halves.set_gradients(3);
    std::vector<T> before(n_values);
    for (int k = 0; k < n_values; ++k) before[static_cast<std::size_t>(k)] = halves.value(k);
    low->step();
    for (int k = 0; k < n_values; ++k) CHECK(halves.value(k) != before[static_cast<std::size_t>(k)]);
  }
}

TEST_CASE_TEMPLATE("restrict_step rejects a range outside the parameters and a non-elementwise "
                   "optimizer", T, float, double) {
  struct Whole : SGD<T> {  // e.g. a layer-wise optimizer: each update reads a whole tensor
    using SGD<T>::SGD;
    bool is_elementwise() const override { return false; }
  };
  TwoTensors<T> model;
  SGD<T> sgd(model.parameters(), SGDOptions(0.1));
  CHECK_THROWS_WITH_AS(sgd.restrict_step(2, 8), doctest::Contains("SGD: restrict_step: range [2, 8) "
                                                                  "is not within the 7 parameter elements"),
                       InvalidArgument);
  CHECK_THROWS_AS(sgd.restrict_step(4, 3), InvalidArgument);
  Whole whole(model.parameters(), SGDOptions(0.1));
  CHECK_THROWS_WITH_AS(whole.restrict_step(0, 3), doctest::Contains("not elementwise"), InvalidArgument);
  whole.restrict_step(0, n_values);  // the whole range is always allowed
}

// ---------------------------------------------------------------------------------------------
// Bad input

TEST_CASE_TEMPLATE("optimizers reject bad hyperparameters, naming themselves", T, float, double) {
  TwoTensors<T> model;
  const auto params = model.parameters();
  const ParameterList<T> none;
  using doctest::Contains;

  // Empty parameter lists and tensors without gradients.
  CHECK_THROWS_WITH_AS(SGD<T>(none, SGDOptions(0.1)), Contains("SGD"), InvalidArgument);
  CHECK_THROWS_WITH_AS(Adam<T>(none, AdamOptions()), Contains("Adam"), InvalidArgument);
  CHECK_THROWS_WITH_AS(AdamW<T>(none, AdamWOptions()), Contains("AdamW"), InvalidArgument);
  CHECK_THROWS_WITH_AS(RMSprop<T>(none, RMSpropOptions()), Contains("RMSprop"), InvalidArgument);
  CHECK_THROWS_WITH_AS(Adagrad<T>(none, AdagradOptions()), Contains("Adagrad"), InvalidArgument);
  auto no_grad = params;
  no_grad[1].grad = nullptr;
  CHECK_THROWS_WITH_AS(SGD<T>(no_grad, SGDOptions(0.1)), Contains("'b'"), InvalidArgument);

  // Learning rates.
  CHECK_THROWS_WITH_AS(SGD<T>(params, SGDOptions(-0.1)),
                       "SGD: lr must be finite and >= 0, got -0.1", InvalidArgument);
  CHECK_THROWS_WITH_AS(Adam<T>(params, AdamOptions(nan_value)), Contains("Adam: lr"),
                       InvalidArgument);
  CHECK_THROWS_WITH_AS(RMSprop<T>(params, RMSpropOptions(std::numeric_limits<double>::infinity())),
                       Contains("RMSprop: lr"), InvalidArgument);
  CHECK_THROWS_WITH_AS(Adagrad<T>(params, AdagradOptions(-1)), Contains("Adagrad: lr"),
                       InvalidArgument);

  // SGD.
  CHECK_THROWS_WITH_AS(SGD<T>(params, SGDOptions(0.1).momentum(-0.5)),
                       "SGD: momentum must be finite and >= 0, got -0.5", InvalidArgument);
  CHECK_THROWS_WITH_AS(SGD<T>(params, SGDOptions(0.1).dampening(1.5)),
                       "SGD: dampening must be in [0, 1], got 1.5", InvalidArgument);
  CHECK_THROWS_WITH_AS(SGD<T>(params, SGDOptions(0.1).weight_decay(nan_value)),
                       Contains("SGD: weight_decay"), InvalidArgument);
  CHECK_THROWS_WITH_AS(SGD<T>(params, SGDOptions(0.1).momentum(0.9).dampening(0.1).nesterov(true)),
                       "SGD: nesterov requires momentum > 0 and dampening == 0, got momentum=0.9, "
                       "dampening=0.1",
                       InvalidArgument);
  CHECK_THROWS_WITH_AS(SGD<T>(params, SGDOptions(0.1).nesterov(true)), Contains("SGD: nesterov"),
                       InvalidArgument);

  // Adam / AdamW.
  CHECK_THROWS_WITH_AS(Adam<T>(params, AdamOptions().betas(1.0, 0.999)),
                       "Adam: beta1 must be in [0, 1), got 1", InvalidArgument);
  CHECK_THROWS_WITH_AS(Adam<T>(params, AdamOptions().betas(0.9, -0.1)),
                       "Adam: beta2 must be in [0, 1), got -0.1", InvalidArgument);
  CHECK_THROWS_WITH_AS(AdamW<T>(params, AdamWOptions().betas(0.9, nan_value)),
                       Contains("AdamW: beta2"), InvalidArgument);
  CHECK_THROWS_WITH_AS(Adam<T>(params, AdamOptions().eps(0)),
                       "Adam: eps must be finite and > 0, got 0", InvalidArgument);
  CHECK_THROWS_WITH_AS(AdamW<T>(params, AdamWOptions().weight_decay(-1e-2)),
                       Contains("AdamW: weight_decay"), InvalidArgument);

  // RMSprop.
  CHECK_THROWS_WITH_AS(RMSprop<T>(params, RMSpropOptions().alpha(1.0)),
                       "RMSprop: alpha must be in [0, 1), got 1", InvalidArgument);
  CHECK_THROWS_WITH_AS(RMSprop<T>(params, RMSpropOptions().eps(-1e-8)), Contains("RMSprop: eps"),
                       InvalidArgument);
  CHECK_THROWS_WITH_AS(RMSprop<T>(params, RMSpropOptions().momentum(-0.9)),
                       Contains("RMSprop: momentum"), InvalidArgument);

  // Adagrad.
  CHECK_THROWS_WITH_AS(Adagrad<T>(params, AdagradOptions().lr_decay(-0.1)),
                       Contains("Adagrad: lr_decay"), InvalidArgument);
  CHECK_THROWS_WITH_AS(Adagrad<T>(params, AdagradOptions().initial_accumulator_value(-1)),
                       Contains("Adagrad: initial_accumulator_value"), InvalidArgument);
  CHECK_THROWS_WITH_AS(Adagrad<T>(params, AdagradOptions().eps(0)), Contains("Adagrad: eps"),
                       InvalidArgument);

  // A constructor that throws leaves the parameters alone.
  CHECK(model.w(0, 0) == T(0.5));
  CHECK(model.b(2) == T(0.1));
}

// ---------------------------------------------------------------------------------------------
// Learning-rate schedules

namespace {

template <class T>
std::vector<double> run_schedule(LRScheduler<T>& schedule, const std::vector<double>& metrics) {
  std::vector<double> rates;
  for (double metric : metrics) {
    schedule.step(metric);
    rates.push_back(static_cast<double>(schedule.learning_rate()));
  }
  return rates;
}

template <class T>
void check_rates(const std::vector<double>& actual, const std::vector<double>& expected) {
  REQUIRE(actual.size() == expected.size());
  for (size_t e = 0; e < actual.size(); ++e) {
    CAPTURE(e);
    CHECK(actual[e] == near<T>(expected[e]));
  }
}

}  // namespace

TEST_CASE_TEMPLATE("StepLR and ExponentialLR follow torch's sequences", T, float, double) {
  Scalar<T> x;
  SGD<T> opt(x.parameters(), SGDOptions(1.0));
  SUBCASE("StepLR(2, 0.1): epochs 0..4 use 1, 1, 0.1, 0.1, 0.01") {
    StepLR<T> schedule(opt, 2, 0.1);
    CHECK(schedule.learning_rate() == T(1));
    check_rates<T>(run_schedule(schedule, {0, 0, 0, 0}), {1, 0.1, 0.1, 0.01});
    CHECK(opt.learning_rate() == schedule.learning_rate());
    CHECK(schedule.epoch() == 4);
  }
  SUBCASE("ExponentialLR(0.5)") {
    ExponentialLR<T> schedule(opt, 0.5);
    check_rates<T>(run_schedule(schedule, {0, 0, 0}), {0.5, 0.25, 0.125});
  }
  SUBCASE("the base rate is the optimizer's rate at construction") {
    opt.set_learning_rate(T(0.2));
    StepLR<T> schedule(opt, 1, 0.5);
    CHECK(schedule.base_learning_rate() == near<T>(0.2));
    check_rates<T>(run_schedule(schedule, {0, 0}), {0.1, 0.05});
  }
}

TEST_CASE_TEMPLATE("CosineAnnealingLR follows torch's closed form", T, float, double) {
  Scalar<T> x;
  SGD<T> opt(x.parameters(), SGDOptions(1.0));
  CosineAnnealingLR<T> schedule(opt, 4, 0.1);
  // eta_min + (1 - eta_min) * (1 + cos(pi e / 4)) / 2 for e = 1..6; past T_max it rises again.
  const double a = 0.1 + 0.45 * (1 + std::sqrt(0.5));  // 0.868198
  const double c = 0.1 + 0.45 * (1 - std::sqrt(0.5));  // 0.231802
  check_rates<T>(run_schedule(schedule, {0, 0, 0, 0, 0, 0}), {a, 0.55, c, 0.1, c, 0.55});
}

TEST_CASE_TEMPLATE("ReduceLROnPlateau reduces at the epochs torch's rule gives", T, float, double) {
  Scalar<T> x;
  SGD<T> opt(x.parameters(), SGDOptions(1.0));
  using Mode = PlateauOptions::Mode;
  using ThresholdMode = PlateauOptions::ThresholdMode;

  SUBCASE("min, rel threshold 0.1, patience 2, cooldown 1, factor 0.5") {
    ReduceLROnPlateau<T> schedule(
        opt, PlateauOptions().factor(0.5).patience(2).threshold(0.1).cooldown(1));
    // Better means metric < best * 0.9.
    // e1 10   better, best 10                           lr 1
    // e2 9.5  bad 1 (needs < 9)                         lr 1
    // e3 9.2  bad 2                                     lr 1
    // e4 9.1  bad 3 > 2: reduce, cooldown 1, bad 0      lr 0.5
    // e5 9.3  bad 1, in cooldown: cooldown 0, bad 0     lr 0.5
    // e6 8.0  better, best 8                            lr 0.5
    // e7 8.5  bad 1 (needs < 7.2)                       lr 0.5
    // e8 7.5  bad 2                                     lr 0.5
    // e9 7.3  bad 3: reduce                             lr 0.25
    // e10 7.1 better, best 7.1; cooldown 0              lr 0.25
    // e11 7.0 bad 1 (needs < 6.39)                      lr 0.25
    // e12 7.0 bad 2                                     lr 0.25
    // e13 7.0 bad 3: reduce                             lr 0.125
    const auto rates =
        run_schedule(schedule, {10, 9.5, 9.2, 9.1, 9.3, 8.0, 8.5, 7.5, 7.3, 7.1, 7.0, 7.0, 7.0});
    check_rates<T>(rates, {1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125});
    CHECK(schedule.best() == 7.1);
  }
  SUBCASE("cooldown epochs do not count towards patience") {
    ReduceLROnPlateau<T> schedule(opt, PlateauOptions().factor(0.5).patience(0).cooldown(2));
    // e1 best; e2 bad 1 > 0: reduce, cooldown 2; e3, e4 in cooldown (bad reset);
    // e5 bad 1: reduce; e6, e7 cooldown; e8 reduce.
    check_rates<T>(run_schedule(schedule, {1, 1, 1, 1, 1, 1, 1, 1}),
                   {1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125});
  }
  SUBCASE("max, abs threshold 0.5, patience 1, clamped at min_lr") {
    ReduceLROnPlateau<T> schedule(opt, PlateauOptions()
                                           .mode(Mode::max)
                                           .threshold_mode(ThresholdMode::abs)
                                           .threshold(0.5)
                                           .patience(1)
                                           .min_lr(0.005));
    // Better means metric > best + 0.5.
    // e1 1.0 best 1; e2 1.4 bad 1; e3 1.6 better, best 1.6; e4 1.0 bad 1;
    // e5 2.0 bad 2 (needs > 2.1): lr 0.1; e6, e7 bad 1, 2: lr 0.01; e8, e9: lr max(0.001, 0.005);
    // e10, e11: max(0.0005, 0.005) = 0.005 changes nothing.
    check_rates<T>(run_schedule(schedule, {1.0, 1.4, 1.6, 1.0, 2.0, 0, 0, 0, 0, 0, 0}),
                   {1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01, 0.005, 0.005, 0.005});
  }
  SUBCASE("a reduction no larger than eps is skipped; NaN never improves") {
    opt.set_learning_rate(T(1e-8));
    ReduceLROnPlateau<T> schedule(opt, PlateauOptions().factor(0.5).patience(0));
    const auto unchanged = static_cast<double>(T(1e-8));
    for (double rate : run_schedule(schedule, {1, nan_value, nan_value})) CHECK(rate == unchanged);
    CHECK(schedule.best() == 1.0);
    CHECK(schedule.bad_epochs() == 0);  // reset by the (skipped) reduction
  }
}

TEST_CASE_TEMPLATE("schedules reject bad hyperparameters, naming themselves", T, float, double) {
  Scalar<T> x;
  SGD<T> opt(x.parameters(), SGDOptions(1.0));
  CHECK_THROWS_WITH_AS(StepLR<T>(opt, 0), "StepLR: step_size must be >= 1, got 0", InvalidArgument);
  CHECK_THROWS_WITH_AS(StepLR<T>(opt, 2, nan_value), doctest::Contains("StepLR: gamma"),
                       InvalidArgument);
  CHECK_THROWS_WITH_AS(ExponentialLR<T>(opt, -0.5), doctest::Contains("ExponentialLR: gamma"),
                       InvalidArgument);
  CHECK_THROWS_WITH_AS(CosineAnnealingLR<T>(opt, 0), doctest::Contains("CosineAnnealingLR: T_max"),
                       InvalidArgument);
  CHECK_THROWS_WITH_AS(CosineAnnealingLR<T>(opt, 10, -1.0),
                       doctest::Contains("CosineAnnealingLR: eta_min"), InvalidArgument);
  CHECK_THROWS_WITH_AS(ReduceLROnPlateau<T>(opt, PlateauOptions().factor(1.0)),
                       "ReduceLROnPlateau: factor must be in (0, 1), got 1", InvalidArgument);
  CHECK_THROWS_WITH_AS(ReduceLROnPlateau<T>(opt, PlateauOptions().patience(-1)),
                       doctest::Contains("ReduceLROnPlateau: patience"), InvalidArgument);
  CHECK_THROWS_WITH_AS(ReduceLROnPlateau<T>(opt, PlateauOptions().min_lr(nan_value)),
                       doctest::Contains("ReduceLROnPlateau: min_lr"), InvalidArgument);
}
