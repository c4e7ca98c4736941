// Loads a network trained in PyTorch (train.py: the seed notebook's 784-120-60-10 ReLU model)
// from its state_dict in a safetensors file, evaluates it on the Fashion-MNIST test set, and
// prints both accuracies: PyTorch's (from the file's metadata) and dropnet's.
//
//   python3 train.py model.safetensors        # PyTorch: train, save the state_dict
//   ./from_pytorch model.safetensors [model.onnx]   # dropnet: load, evaluate (and export ONNX)
//
// The names match without a map: nn.Sequential(Linear, ReLU, Linear, ReLU, Linear) has the
// keys 0.*, 2.*, 4.*, and a Dense with a fused ReLU counts as the two modules Linear + ReLU.

#include <cstdio>
#include <dropnet/activations/relu.hpp>
#include <dropnet/io/fashion_mnist.hpp>
#include <dropnet/io/onnx_export.hpp>
#include <dropnet/io/state_dict.hpp>
#include <dropnet/layers/dense.hpp>
#include <dropnet/losses/softmax_cross_entropy.hpp>
#include <dropnet/training/evaluate.hpp>
#include <exception>
#include <string>

int main(int argc, char** argv) {
  using namespace dropnet;
  if (argc < 2) {
    std::fprintf(stderr, "usage: from_pytorch model.safetensors [model.onnx]\n");
    return 2;
  }
  try {
    Generator gen(0);  // the initial weights are overwritten by the file's
    Sequential<float> model(784);
    model.add(Dense<float, ReLU>(784, 120, gen));
    model.add(Dense<float, ReLU>(120, 60, gen));
    model.add(Dense<float>(60, 10, gen));

    const SafetensorsFile file = read_safetensors(argv[1]);
    load_state_dict(model, file);  // strict: every key present, none unexpected, shapes equal
    const auto test = fashion_mnist::load<float>(fashion_mnist::default_directory,
                                                 fashion_mnist::Part::test);
    const Evaluation result = evaluate(model, SoftmaxCrossEntropy<float>(), test.images, test.labels);
    const auto torch_accuracy = file.metadata().find("torch_test_accuracy");
    std::printf("PyTorch test accuracy: %s\n", torch_accuracy == file.metadata().end()
                                                   ? "(not in the file)"
                                                   : torch_accuracy->second.c_str());
    std::printf("dropnet test accuracy: %.4f (%lld images)\n", result.accuracy,
                static_cast<long long>(test.size()));
    if (argc > 2) {
      export_onnx(model, argv[2]);
      std::printf("exported %s (ONNX opset %lld)\n", argv[2], static_cast<long long>(onnx_opset));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "from_pytorch: %s\n", e.what());
    return 1;
  }
  return 0;
}
