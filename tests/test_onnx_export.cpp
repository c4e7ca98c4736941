// ONNX export (io/onnx_export.hpp): the protobuf wire format against its definition, the
// nodes each layer becomes (read back by a small independent protobuf decoder), and refusals.
// ONNX Runtime and the ONNX checker run the exported files in tests/peers/ (peer_onnxruntime,
// peer_onnx_checker).

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdint>
#include <dropnet/activations/elu.hpp>
#include <dropnet/activations/relu.hpp>
#include <dropnet/activations/sigmoid.hpp>
#include <dropnet/activations/softmax.hpp>
#include <dropnet/activations/swish.hpp>
#include <dropnet/io/onnx_export.hpp>
#include <dropnet/layers/batch_norm.hpp>
#include <dropnet/layers/conv2d.hpp>
#include <dropnet/layers/dense.hpp>
#include <dropnet/layers/drop_connect.hpp>
#include <dropnet/layers/dropout.hpp>
#include <dropnet/layers/flatten.hpp>
#include <dropnet/layers/pooling.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

using namespace dropnet;

namespace {

/// One field of a protobuf message, decoded independently of the writer.
struct Field {
  int number = 0;
  int wire = 0;
  std::uint64_t value = 0;  ///< varint or fixed32
  std::string bytes;        ///< length-delimited
};

std::uint64_t read_varint(const std::string& s, std::size_t& pos) {
  std::uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    REQUIRE(pos < s.size());
    const auto byte = static_cast<unsigned char>(s[pos++]);
    v |= std::uint64_t{byte & 0x7Fu} << shift;
    if (!(byte & 0x80u)) return v;
  }
}

std::vector<Field> decode(const std::string& s) {
  std::vector<Field> fields;
  std::size_t pos = 0;
  while (pos < s.size()) {
    const std::uint64_t key = read_varint(s, pos);
    Field f{static_cast<int>(key >> 3), static_cast<int>(key & 7), 0, {}};
    if (f.wire == 0) {
      f.value = read_varint(s, pos);
    } else if (f.wire == 2) {
      const std::uint64_t n = read_varint(s, pos);
      REQUIRE(pos + n <= s.size());
      f.bytes = s.substr(pos, static_cast<std::size_t>(n));
      pos += static_cast<std::size_t>(n);
    } else {
      REQUIRE(f.wire == 5);
      REQUIRE(pos + 4 <= s.size());
      f.value = detail::load_le(s.data() + pos, 4);
      pos += 4;
    }
    fields.push_back(f);
  }
  return fields;
}

std::vector<Field> all(const std::vector<Field>& fields, int number) {
  std::vector<Field> out;
  for (const auto& f : fields)
    if (f.number == number) out.push_back(f);
  return out;
}

/// The op_type of every node of an exported model, in order.
std::vector<std::string> op_types(const std::string& model) {
  const auto graphs = all(decode(model), 7);
  REQUIRE(graphs.size() == 1);
  std::vector<std::string> ops;
  for (const auto& node : all(decode(graphs[0].bytes), 1)) ops.push_back(all(decode(node.bytes), 4).at(0).bytes);
  return ops;
}

/// A layer no exporter knows.
class Doubler : public Layer<float> {
 public:
  std::string name() const override { return "Doubler"; }
  Index output_rows(Index rows) const override { return rows; }
  const Matrix<float>& forward(const Matrix<float>& x, Mode, Generator*) override {
    y_ = 2 * x;
    return y_;
  }
  const Matrix<float>& backward(const Matrix<float>& dy, bool) override {
    dx_ = 2 * dy;
    return dx_;
  }
  LayerConfig config() const override { return {"Doubler", {}, {}}; }

 private:
  Matrix<float> y_, dx_;
};

}  // namespace

TEST_CASE("the protobuf writer: varints, keys, floats and nested messages as the wire format") {
  detail::ProtoWriter w;
  w.varint(1, 300);        // key 0x08, varint 300 = AC 02
  w.varint(2, -1);         // int64 -1: ten bytes
  w.float32(3, 1.0f);      // key 0x1D, 00 00 80 3F
  w.bytes(4, "ab");        // key 0x22, length 2
  detail::ProtoWriter outer;
  outer.message(5, w);
  const std::string expected_inner = std::string("\x08\xAC\x02", 3) + "\x10" +
                                     std::string(9, '\xFF') + "\x01" +
                                     std::string("\x1D\x00\x00\x80\x3F", 5) + "\x22\x02" "ab";
  CHECK(w.str() == expected_inner);
  CHECK(outer.str() == "\x2A" + std::string(1, static_cast<char>(expected_inner.size())) + expected_inner);
}

TEST_CASE("the model header: IR version 7, opset 13, input and output with a symbolic batch") {
  Generator gen(1);
  Sequential<float> m(3);
  m.add(Dense<float, ReLU>(3, 2, gen));
  const auto model = decode(encode_onnx(m));
  CHECK(all(model, 1).at(0).value == 7);
  const auto opset = decode(all(model, 8).at(0).bytes);
  CHECK(all(opset, 2).at(0).value == 13);
  CHECK(all(opset, 1).at(0).bytes.empty());  // the default domain
  const auto graph = decode(all(model, 7).at(0).bytes);
  const auto input = decode(all(graph, 11).at(0).bytes);
  CHECK(all(input, 1).at(0).bytes == "input");
  const auto output = decode(all(graph, 12).at(0).bytes);
  CHECK(all(output, 1).at(0).bytes == "output");
  // output.type.tensor_type.shape: dims "N" and 2.
  const auto shape = decode(all(decode(all(decode(all(output, 2).at(0).bytes), 1).at(0).bytes), 2).at(0).bytes);
  CHECK(all(decode(all(shape, 1).at(0).bytes), 2).at(0).bytes == "N");
  CHECK(all(decode(all(shape, 1).at(1).bytes), 1).at(0).value == 2);
  // Initializers: W [2, 3] row-major floats, then b [2].
  const auto w = decode(all(graph, 5).at(0).bytes);
  CHECK(all(w, 1).size() == 2);
  CHECK(all(w, 2).at(0).value == 1);  // FLOAT
  const std::string raw = all(w, 9).at(0).bytes;
  const auto& dense = dynamic_cast<Dense<float, ReLU>&>(m.layer(0));
  REQUIRE(raw.size() == 24);
  CHECK(detail::load_le_scalar<float>(raw.data() + 4) == dense.weight()(0, 1));
  CHECK(detail::load_le_scalar<float>(raw.data() + 12) == dense.weight()(1, 0));
}

TEST_CASE("each layer becomes the documented nodes") {
  Generator gen(2);
  Sequential<float> cnn(16);
  cnn.add(Conv2D<float, Swish>({1, 4, 4}, 2, 3, gen, ConvOptions().padding(1)));
  cnn.add(BatchNorm<float>(2, 16));
  cnn.add(ActivationLayer<float, GELU>());
  cnn.add(MaxPool2D<float>({2, 4, 4}, 2));
  cnn.add(Flatten<float>({2, 2, 2}));
  cnn.add(Dropout<float>(0.5));
  cnn.add(DropConnectDense<float, ELU>(8, 4, 0.5, gen, Init::he_normal, ELU(0.5)));
  cnn.add(Dense<float, Softmax>(4, 3, gen));
  CHECK(op_types(encode_onnx(cnn)) ==
        std::vector<std::string>{"Reshape", "Conv", "Sigmoid", "Mul",                    // Swish
                                 "BatchNormalization",                                   // on maps
                                 "Mul", "Erf", "Mul", "Add", "Mul",                       // GELU
                                 "MaxPool", "Flatten", "Identity", "Gemm", "Elu", "Gemm",
                                 "Softmax", "Identity"});

  Sequential<float> mlp(4);
  mlp.add(Dense<float>(4, 3, gen));
  mlp.add(BatchNorm<float>(3));
  mlp.add(ActivationLayer<float, LogSoftmax>());
  CHECK(op_types(encode_onnx(mlp)) ==
        std::vector<std::string>{"Gemm", "BatchNormalization", "LogSoftmax", "Identity"});
}

TEST_CASE("DropConnect exports its mean-field weights q W") {
  Generator gen(3);
  Sequential<float> m(2);
  auto& layer = m.add(DropConnectDense<float>(2, 1, 0.25, gen));
  const auto graph = decode(all(decode(encode_onnx(m)), 7).at(0).bytes);
  const std::string raw = all(decode(all(graph, 5).at(0).bytes), 9).at(0).bytes;
  CHECK(detail::load_le_scalar<float>(raw.data()) == 0.75f * layer.weight()(0, 0));
}

TEST_CASE("unsupported layers are refused, naming the layer, and nothing is written") {
  Generator gen(4);
  Sequential<float> custom(3);
  custom.add(std::make_unique<Doubler>());
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("dropnet_onnx_" + std::to_string(::getpid()) + ".onnx"))
                               .string();
  CHECK_THROWS_WITH_AS(export_onnx(custom, path),
                       "export_onnx: layer 0 Doubler (kind Doubler) has no ONNX translation",
                       InvalidArgument);
  CHECK_FALSE(std::filesystem::exists(path));
  Sequential<float> gaussian(2);
  gaussian.add(DropConnectDense<float>(2, 2, 0.5, gen)).with_gaussian_inference(8);
  CHECK_THROWS_WITH_AS(encode_onnx(gaussian), doctest::Contains("Gaussian-moment inference"),
                       InvalidArgument);
  Sequential<float> empty(2);
  CHECK_THROWS_AS(encode_onnx(empty), InvalidArgument);
}
