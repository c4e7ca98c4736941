// Writes the model-loader seed corpus (tests/fuzz/corpus/model): small files covering every
// layer kind, both scalar types and the optimizer section. Run from the repository root after a
// format change:  g++ -std=c++17 -Iinclude -I/usr/include/eigen3 tests/fuzz/make_corpus.cpp
//                   -o /tmp/make_corpus && /tmp/make_corpus tests/fuzz/corpus/model

#include <dropnet/dropnet.hpp>
#include <iostream>
#include <string>

using namespace dropnet;

namespace {

template <class T>
Sequential<T> dense_only(Generator& gen) {
  Sequential<T> model(3);
  model.add(Dense<T, ReLU>(3, 2, gen));
  model.add(Dense<T>(2, 2, gen));
  return model;
}

template <class T>
Sequential<T> every_kind(Generator& gen) {
  Sequential<T> model(4);
  model.add(Dense<T, LeakyReLU>(4, 4, gen, Init::he_uniform, LeakyReLU(0.2))).with_l2(T(1e-3));
  model.add(BatchNorm<T>(2, 2)).with_momentum(T(0.2));
  model.add(Dropout<T>(0.25));
  model.add(AlphaDropout<T>(0.1));
  model.add(GaussianDropout<T>(0.2));
  model.add(SpatialDropout<T>(0.3, 2));
  model.add(ActivationLayer<T, Tanh>());
  model.add(DropConnectDense<T, ELU>(4, 3, 0.3, gen, Init::xavier_normal, ELU(0.5)))
      .with_per_sample_masks()
      .with_gaussian_inference(2)
      .with_max_norm(T(2));
  model.add(Dense<T, Softmax>(3, 2, gen));
  return model;
}

template <class T>
Sequential<T> conv_net(Generator& gen) {
  Sequential<T> model(1 * 6 * 6);
  model.add(Conv2D<T, ReLU>(ImageShape{1, 6, 6}, 2, 3, gen, ConvOptions().padding(1))).with_l2(T(1e-3));
  model.add(MaxPool2D<T>(ImageShape{2, 6, 6}, 2));
  model.add(AvgPool2D<T>(ImageShape{2, 3, 3}, 2, PoolOptions().stride(1)));
  model.add(Flatten<T>(ImageShape{2, 2, 2}));
  model.add(Dense<T>(8, 2, gen));
  return model;
}

template <class T>
void write(const std::string& dir, const std::string& name, Sequential<T>& model,
           Optimizer<T>* optimizer = nullptr) {
  save(model, dir + "/" + name, optimizer);
  std::cout << dir << "/" << name << '\n';
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_corpus <output directory>\n";
    return 2;
  }
  const std::string dir = argv[1];
  Generator gen(1);
  auto f = dense_only<float>(gen);
  write(dir, "dense_float.dnm", f);
  auto d = dense_only<double>(gen);
  write(dir, "dense_double.dnm", d);
  auto all_f = every_kind<float>(gen);
  write(dir, "every_kind_float.dnm", all_f);
  auto all_d = every_kind<double>(gen);
  write(dir, "every_kind_double.dnm", all_d);
  auto conv_f = conv_net<float>(gen);
  write(dir, "conv_float.dnm", conv_f);
  Adam<float> adam(f.parameters(), AdamOptions(1e-3).amsgrad(true));
  adam.step();
  write(dir, "dense_float_adam.dnm", f, static_cast<Optimizer<float>*>(&adam));
  SGD<double> sgd(all_d.parameters(), SGDOptions(0.1).momentum(0.9));
  sgd.step();
  write(dir, "every_kind_double_sgd.dnm", all_d, static_cast<Optimizer<double>*>(&sgd));
  return 0;
}
