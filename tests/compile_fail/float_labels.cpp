// Must NOT compile: class labels held as floats (Eigen::VectorXf). ctest builds it and passes
// only when the compiler prints fit's static_assert sentence (tests/CMakeLists.txt); without
// DROPNET_COMPILE_FAIL the same file compiles.

#include <dropnet/dropnet.hpp>

int main() {
  using namespace dropnet;
  Generator gen(1);
  Sequential<float> model(2);
  model.add(Dense<float>(2, 3, gen));
  SoftmaxCrossEntropy<float> loss;
  SGD<float> optimizer(model.parameters(), SGDOptions(0.1));
  const Matrix<float> x = Matrix<float>::Zero(2, 4);
#ifdef DROPNET_COMPILE_FAIL
  const Eigen::VectorXf y = Eigen::VectorXf::Zero(4);
#else
  const Labels y = Labels::Zero(4);
#endif
  fit(model, loss, optimizer, x, y, gen);
  return 0;
}
