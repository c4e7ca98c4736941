// The dropnet side of the peer checks (tests/peers/): moves the networks of peer_models.hpp
// through safetensors and ONNX files for the scripts that run PyTorch and ONNX Runtime.
//
//   peer_tool export <dir> <images>    for each of mlp, bn, cnn, zoo (seeded weights): writes
//                                      <dir>/<kind>.safetensors (save_state_dict),
//                                      <dir>/<kind>.onnx (export_onnx) and
//                                      <dir>/<kind>.logits.safetensors: "images" [n, 784], the
//                                      first <images> Fashion-MNIST test images, and "logits"
//                                      [n, 10], dropnet's eval-mode outputs on them
//   peer_tool forward <kind> <state> <inputs> <out>
//                                      loads the state_dict file <state> (strict) into network
//                                      <kind>, runs it on <inputs>' "images" [n, 784] and writes
//                                      "logits" [n, 10] to <out>
// Exit status 0 on success; an exception's message and 1 otherwise.

#include <cstdio>
#include <dropnet/io/fashion_mnist.hpp>
#include <dropnet/io/onnx_export.hpp>
#include <dropnet/io/state_dict.hpp>
#include <exception>
#include <string>
#include <vector>

#include "peer_models.hpp"

using namespace dropnet;

namespace {

/// Row-major [n, rows] values of a features x n batch (each sample's column is one row).
std::vector<float> rows_of(const Matrix<float>& batch) {
  return std::vector<float>(batch.data(), batch.data() + batch.size());
}

Matrix<float> batch_of(const SafetensorsFile& file, const std::string& name) {
  const SafeTensor& t = file.at(name);
  if (t.shape.size() != 2) throw FormatError(file.where() + ": " + name + " is not [n, features]");
  Matrix<float> batch(t.shape[1], t.shape[0]);
  file.read_values(t, batch.data());  // row-major [n, f] is column-major f x n
  return batch;
}

void write_logits(const std::string& path, const Matrix<float>& images, const Matrix<float>& logits) {
  std::vector<SafeTensor> tensors;
  if (images.size() > 0)
    tensors.push_back(SafeTensor::of<float>("images", {images.cols(), images.rows()}, rows_of(images).data()));
  tensors.push_back(SafeTensor::of<float>("logits", {logits.cols(), logits.rows()}, rows_of(logits).data()));
  write_safetensors(path, tensors);
}

void export_all(const std::string& dir, Index count) {
  const auto test = fashion_mnist::load<float>(fashion_mnist::default_directory, fashion_mnist::Part::test);
  const Matrix<float> images = test.images.leftCols(count);
  std::uint64_t seed = 100;
  for (const std::string kind : {"mlp", "bn", "cnn", "zoo"}) {
    Sequential<float> model = peers::build(kind, seed++);
    save_state_dict(model, dir + "/" + kind + ".safetensors");
    export_onnx(model, dir + "/" + kind + ".onnx");
    const Matrix<float> logits = model.forward(images, Mode::eval);
    write_logits(dir + "/" + kind + ".logits.safetensors", images, logits);
    std::printf("peer_tool: wrote %s/%s.{safetensors,onnx,logits.safetensors}\n", dir.c_str(), kind.c_str());
  }
}

void forward(const std::string& kind, const std::string& state, const std::string& inputs,
             const std::string& out) {
  Sequential<float> model = peers::build(kind, 1);
  load_state_dict(model, state);
  const Matrix<float> logits = model.forward(batch_of(read_safetensors(inputs), "images"), Mode::eval);
  write_logits(out, Matrix<float>(), logits);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 3 && args[0] == "export") {
      export_all(args[1], std::stol(args[2]));
    } else if (args.size() == 5 && args[0] == "forward") {
      forward(args[1], args[2], args[3], args[4]);
    } else {
      std::fprintf(stderr, "usage: peer_tool export <dir> <images> | forward <kind> <state> <inputs> <out>\n");
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "peer_tool: %s\n", e.what());
    return 1;
  }
  return 0;
}
