#pragma once
// export_onnx(model, path): the model's inference (eval-mode) graph as an ONNX file, for ONNX
// Runtime and every other ONNX consumer. Opset 13 (default domain), IR version 7; float32
// tensors whatever T (a double model is rounded); input "input" [N, features], output "output"
// [N, outputs], N a symbolic batch dimension. Rows of a dropnet batch are the features of one
// sample, so the ONNX tensors are the transposes of dropnet's batches: [N, C, H, W] for images
// (ImageShape's channel-major order is NCHW's).
//
//   layer                         ONNX nodes
//   Dense, ConcreteDropoutDense   Gemm(x, W [out, in], b, transB=1), then the activation
//   DropConnectDense              Gemm with the mean-field weights q W (q = 1 - p), then the
//                                 activation (Gaussian-moment inference cannot be exported)
//   Conv2D                        Conv(W [O, C, k, k], b, pads, strides), then the activation
//   BatchNorm                     BatchNormalization (eval statistics, epsilon), on [N, C] or
//                                 [N, C, H*W]
//   MaxPool2D, AvgPool2D          MaxPool, AveragePool (count_include_pad=1), on [N, C, H, W]
//   GlobalAvgPool                 GlobalAveragePool
//   Flatten                       Flatten(axis=1)
//   TemperatureScaling            Mul by 1/T
//   Dropout, AlphaDropout, GaussianDropout, GaussianNoise, SpatialDropout    Identity
//   activations                   Relu, LeakyRelu(alpha), Elu(alpha), Selu(alpha, gamma),
//                                 Sigmoid, Tanh, Softplus, Softmax(axis=1), LogSoftmax(axis=1);
//                                 Swish = x * Sigmoid(x); GELU = 0.5 x (1 + Erf(x / sqrt 2));
//                                 GELUTanh = 0.5 x (1 + Tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//                                 (opset 13 has no Gelu or Swish operator)
// Between layers that see a sample differently (a Dense after a Conv2D without Flatten, a
// BatchNorm over feature maps) a Reshape(0, ...) keeps the batch and changes the rest.
//
// The file is the protobuf wire format of onnx.proto (ModelProto), written directly: the
// subset needs varints, length-delimited fields and little-endian floats, so no protobuf
// library is linked. Throws InvalidArgument naming the layer for a kind or activation this
// table lacks (a user's custom layer, Gaussian DropConnect inference) or an empty model, before
// anything is written; FormatError when the file cannot be written (atomically: any previous
// file is then unchanged).

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../model/sequential.hpp"
#include "atomic_file.hpp"
#include "byte_codec.hpp"

namespace dropnet {

/// The ONNX opset export_onnx writes (default domain).
inline constexpr std::int64_t onnx_opset = 13;
/// The ONNX IR version export_onnx writes (the one that introduced opset 13's features).
inline constexpr std::int64_t onnx_ir_version = 7;

namespace detail {

/// Appends protobuf wire-format fields to a string; nested messages are built in their own
/// ProtoWriter and added with message().
class ProtoWriter {
 public:
  /// Field `field` as a varint (wire type 0): int32, int64 (two's complement), enum, bool.
  void varint(int field, std::int64_t value) {
    key(field, 0);
    raw_varint(static_cast<std::uint64_t>(value));
  }
  /// Field `field` as a 32-bit float (wire type 5).
  void float32(int field, float value) {
    key(field, 5);
    BinaryWriter(out_).scalar(value);
  }
  /// Field `field` as length-delimited bytes (wire type 2): a string, bytes or a message.
  void bytes(int field, const std::string& value) {
    key(field, 2);
    raw_varint(value.size());
    out_ += value;
  }
  /// A nested message.
  void message(int field, const ProtoWriter& m) { bytes(field, m.out_); }
  /// The bytes written so far.
  const std::string& str() const { return out_; }

 private:
  void key(int field, int wire_type) {
    raw_varint((static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(wire_type));
  }
  void raw_varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  std::string out_;
};

/// Builds an ONNX GraphProto node by node, tracking the shape of the current tensor (its dims
/// after the batch dimension).
class OnnxGraph {
 public:
  /// Starts at the graph's input, [N, features].
  explicit OnnxGraph(Index features) : current_("input"), dims_{features} {}

  /// A float initializer `name` of shape `dims`, from row-major `values`.
  template <class T>
  std::string initializer(const std::string& name, const std::vector<std::int64_t>& dims,
                          const std::vector<T>& values) {
    ProtoWriter t;
    for (const std::int64_t d : dims) t.varint(1, d);
    t.varint(2, 1);  // FLOAT
    t.bytes(8, name);
    std::string raw;
    BinaryWriter w(raw);
    for (const T v : values) w.scalar(static_cast<float>(v));
    t.bytes(9, raw);
    graph_.message(5, t);
    return name;
  }
  /// An INT64 initializer (Reshape's shape).
  std::string int64_initializer(const std::string& name, const std::vector<std::int64_t>& values) {
    ProtoWriter t;
    t.varint(1, static_cast<std::int64_t>(values.size()));
    t.varint(2, 7);  // INT64
    t.bytes(8, name);
    std::string raw;
    BinaryWriter w(raw);
    for (const std::int64_t v : values) w.i64(v);
    t.bytes(9, raw);
    graph_.message(5, t);
    return name;
  }

  /// An attribute of a node: one int, one float, or a list of ints.
  struct Attribute {
    std::string name;
    int type = 0;  ///< AttributeProto.AttributeType: 1 FLOAT, 2 INT, 7 INTS
    float f = 0;
    std::vector<std::int64_t> ints;
  };
  static Attribute int_attribute(std::string name, std::int64_t v) { return {std::move(name), 2, 0, {v}}; }
  static Attribute float_attribute(std::string name, double v) {
    return {std::move(name), 1, static_cast<float>(v), {}};
  }
  static Attribute ints_attribute(std::string name, std::vector<std::int64_t> v) {
    return {std::move(name), 7, 0, std::move(v)};
  }

  /// Appends node `op` reading `inputs` (the current tensor when empty); returns its output's
  /// name. The current tensor becomes it unless `advance` is false.
  std::string node(const std::string& op, std::vector<std::string> inputs,
                   const std::vector<Attribute>& attributes = {}, bool advance = true) {
    if (inputs.empty()) inputs.push_back(current_);
    std::string output = "t" + std::to_string(count_++) + "_" + op;
    ProtoWriter n;
    for (const auto& in : inputs) n.bytes(1, in);
    n.bytes(2, output);
    n.bytes(3, output);
    n.bytes(4, op);
    for (const Attribute& a : attributes) {
      ProtoWriter w;
      w.bytes(1, a.name);
      if (a.type == 1) w.float32(2, a.f);
      if (a.type == 2) w.varint(3, a.ints.at(0));
      if (a.type == 7)
        for (const std::int64_t v : a.ints) w.varint(8, v);
      w.varint(20, a.type);
      n.message(5, w);
    }
    graph_.message(1, n);
    if (advance) current_ = output;
    return output;
  }

  /// A scalar float constant (as an initializer).
  std::string constant(double value) {
    return initializer("c" + std::to_string(count_++), {}, std::vector<float>{static_cast<float>(value)});
  }

  /// Reshapes the current tensor to [N, dims...] unless it has that shape already.
  void reshape(const std::vector<Index>& dims) {
    if (dims == dims_) return;
    std::vector<std::int64_t> shape{0};  // 0: keep the batch dimension
    for (const Index d : dims) shape.push_back(d);
    const std::string name = int64_initializer("shape" + std::to_string(count_++), shape);
    node(dims.size() == 1 && dims_.size() > 1 ? "Flatten" : "Reshape",
         dims.size() == 1 && dims_.size() > 1 ? std::vector<std::string>{current_}
                                              : std::vector<std::string>{current_, name},
         dims.size() == 1 && dims_.size() > 1 ? std::vector<Attribute>{int_attribute("axis", 1)}
                                              : std::vector<Attribute>{});
    dims_ = dims;
  }
  /// Reshapes to [N, features].
  void flatten() {
    Index n = 1;
    for (const Index d : dims_) n *= d;
    reshape({n});
  }

  /// The current tensor and its dims after the batch.
  const std::string& current() const { return current_; }
  /// The dims after the batch of the current tensor.
  const std::vector<Index>& dims() const { return dims_; }
  /// Sets the dims after an operation that changes them.
  void set_dims(std::vector<Index> dims) { dims_ = std::move(dims); }

  /// The GraphProto: the nodes so far, then "output" (an Identity of the flattened current
  /// tensor), the input and output declarations.
  ProtoWriter finish(Index input_features) {
    flatten();
    ProtoWriter identity;
    identity.bytes(1, current_);
    identity.bytes(2, "output");
    identity.bytes(3, "output");
    identity.bytes(4, "Identity");
    graph_.message(1, identity);
    graph_.bytes(2, "dropnet");
    graph_.message(11, value_info("input", input_features));
    graph_.message(12, value_info("output", dims_.at(0)));
    return graph_;
  }

 private:
  static ProtoWriter value_info(const std::string& name, Index features) {
    ProtoWriter batch, width, shape, tensor, type, info;
    batch.bytes(2, "N");
    width.varint(1, features);
    shape.message(1, batch);
    shape.message(1, width);
    tensor.varint(1, 1);  // FLOAT
    tensor.message(2, shape);
    type.message(1, tensor);
    info.bytes(1, name);
    info.message(2, type);
    return info;
  }

  ProtoWriter graph_;
  std::string current_;
  std::vector<Index> dims_;
  int count_ = 0;
};

/// Appends the nodes of activation `name` (with its parameter) on the current tensor.
inline void onnx_activation(OnnxGraph& g, const std::string& name, double parameter,
                            const std::string& layer) {
  using A = OnnxGraph;
  if (name == "Identity") return;
  if (name == "ReLU") g.node("Relu", {});
  else if (name == "LeakyReLU") g.node("LeakyRelu", {}, {A::float_attribute("alpha", parameter)});
  else if (name == "ELU") g.node("Elu", {}, {A::float_attribute("alpha", parameter)});
  else if (name == "SELU")
    g.node("Selu", {}, {A::float_attribute("alpha", 1.6732632423543772848170429916717),
                        A::float_attribute("gamma", 1.0507009873554804934193349852946)});
  else if (name == "Sigmoid") g.node("Sigmoid", {});
  else if (name == "Tanh") g.node("Tanh", {});
  else if (name == "Softplus") g.node("Softplus", {});
  else if (name == "Softmax" || name == "LogSoftmax") {
    g.flatten();
    g.node(name, {}, {A::int_attribute("axis", 1)});
  } else if (name == "Swish") {
    const std::string x = g.current();
    g.node("Mul", {x, g.node("Sigmoid", {x}, {}, false)});
  } else if (name == "GELU" || name == "GELUTanh") {
    const std::string x = g.current();
    std::string inner;
    if (name == "GELU") {
      inner = g.node("Erf", {g.node("Mul", {x, g.constant(0.70710678118654752440)}, {}, false)}, {}, false);
    } else {
      const std::string cube = g.node("Mul", {x, g.node("Mul", {x, x}, {}, false)}, {}, false);
      const std::string sum = g.node("Add", {x, g.node("Mul", {cube, g.constant(0.044715)}, {}, false)}, {}, false);
      inner = g.node("Tanh", {g.node("Mul", {sum, g.constant(0.79788456080286535588)}, {}, false)}, {}, false);
    }
    const std::string half_x = g.node("Mul", {x, g.constant(0.5)}, {}, false);
    g.node("Mul", {half_x, g.node("Add", {inner, g.constant(1.0)}, {}, false)});
  } else {
    throw InvalidArgument(concat("export_onnx: ", layer, ": activation ", name,
                                 " has no ONNX translation"));
  }
}

/// A column-major tensor view as row-major values of its matrix, times `scale`.
template <class T>
std::vector<T> row_major(const ParameterView<T>& v, double scale = 1.0) {
  std::vector<T> out(static_cast<std::size_t>(v.size()));
  for (Index i = 0; i < v.rows; ++i)
    for (Index j = 0; j < v.cols; ++j)
      out[static_cast<std::size_t>(i * v.cols + j)] = static_cast<T>(v.value[i + j * v.rows] * scale);
  return out;
}

template <class T>
const ParameterView<T>& onnx_tensor(const ParameterList<T>& list, const std::string& name) {
  for (const auto& v : list)
    if (v.name == name) return v;
  throw InvalidArgument("export_onnx: no tensor " + name);
}

/// Appends one layer's nodes.
template <class T>
void onnx_layer(OnnxGraph& g, Layer<T>& layer, Index index) {
  using A = OnnxGraph;
  const LayerConfig c = layer.config();
  const std::string& kind = c.kind;
  const std::string id = std::to_string(index);
  const auto activation = [&] {
    onnx_activation(g, c.string("activation"), c.number("activation_parameter"), layer.name());
  };
  const auto number = [&](const char* key) { return static_cast<Index>(c.number(key)); };
  ParameterList<T> tensors = layer.parameters();
  for (auto& b : layer.buffers()) tensors.push_back(b);
  if (kind == "Dense" || kind == "DropConnectDense" || kind == "ConcreteDropoutDense") {
    if (kind == "DropConnectDense" && c.number("gaussian_samples") != 0)
      throw InvalidArgument("export_onnx: " + layer.name() +
                            ": Gaussian-moment inference draws noise; export needs mean-field");
    const double scale = kind == "DropConnectDense" ? 1.0 - c.number("p") : 1.0;
    const auto& w = onnx_tensor(tensors, "weight");
    const auto& b = onnx_tensor(tensors, "bias");
    g.flatten();
    g.node("Gemm", {g.current(), g.initializer(id + ".weight", {w.rows, w.cols}, row_major(w, scale)),
                    g.initializer(id + ".bias", {b.rows}, row_major(b))},
           {A::int_attribute("transB", 1)});
    g.set_dims({w.rows});
    activation();
  } else if (kind == "Conv2D") {
    const Index channels = number("channels"), k = number("kernel"), s = number("stride"),
                p = number("padding");
    const auto& w = onnx_tensor(tensors, "weight");
    const auto& b = onnx_tensor(tensors, "bias");
    g.reshape({channels, number("height"), number("width")});
    g.node("Conv", {g.current(), g.initializer(id + ".weight", {w.rows, channels, k, k}, row_major(w)),
                    g.initializer(id + ".bias", {b.rows}, row_major(b))},
           {A::ints_attribute("kernel_shape", {k, k}), A::ints_attribute("pads", {p, p, p, p}),
            A::ints_attribute("strides", {s, s})});
    g.set_dims({w.rows, (number("height") + 2 * p - k) / s + 1, (number("width") + 2 * p - k) / s + 1});
    activation();
  } else if (kind == "BatchNorm") {
    const Index channels = number("channels"), spatial = number("spatial");
    const auto& dims = g.dims();
    const bool maps = dims.size() == 3 && dims[0] == channels && dims[1] * dims[2] == spatial;
    if (!maps) g.reshape(spatial == 1 ? std::vector<Index>{channels} : std::vector<Index>{channels, spatial});
    std::vector<std::string> inputs{g.current()};
    for (const char* name : {"gamma", "beta", "running_mean", "running_var"})
      inputs.push_back(g.initializer(id + "." + name, {channels}, row_major(onnx_tensor(tensors, name))));
    g.node("BatchNormalization", inputs, {A::float_attribute("epsilon", c.number("eps"))});
  } else if (kind == "MaxPool2D" || kind == "AvgPool2D") {
    const Index k = number("kernel"), s = number("stride"), p = number("padding");
    g.reshape({number("channels"), number("height"), number("width")});
    std::vector<A::Attribute> attributes{A::ints_attribute("kernel_shape", {k, k}),
                                         A::ints_attribute("pads", {p, p, p, p}),
                                         A::ints_attribute("strides", {s, s})};
    if (kind == "AvgPool2D") attributes.push_back(A::int_attribute("count_include_pad", 1));
    g.node(kind == "MaxPool2D" ? "MaxPool" : "AveragePool", {}, attributes);
    g.set_dims({number("channels"), (number("height") + 2 * p - k) / s + 1,
                (number("width") + 2 * p - k) / s + 1});
  } else if (kind == "GlobalAvgPool") {
    g.reshape({number("channels"), number("height"), number("width")});
    g.node("GlobalAveragePool", {});
    g.set_dims({number("channels"), 1, 1});
  } else if (kind == "Flatten") {
    g.flatten();
  } else if (kind == "Activation") {
    activation();
  } else if (kind == "TemperatureScaling") {
    g.node("Mul", {g.current(), g.constant(1.0 / c.number("temperature"))});
  } else if (kind == "Dropout" || kind == "AlphaDropout" || kind == "GaussianDropout" ||
             kind == "GaussianNoise" || kind == "SpatialDropout") {
    g.node("Identity", {});
  } else {
    throw InvalidArgument(concat("export_onnx: layer ", index, " ", layer.name(), " (kind ", kind,
                                 ") has no ONNX translation"));
  }
}

}  // namespace detail

/// The ONNX ModelProto bytes of `model`'s eval-mode graph (see the file comment); throws
/// InvalidArgument naming a layer that cannot be exported.
template <class T>
std::string encode_onnx(Sequential<T>& model) {
  detail::require(!model.empty(), "export_onnx", "the model has no layers");
  const Index features = model.input_features();
  detail::require(features > 0, "export_onnx", "the model's input_features is not fixed");
  detail::OnnxGraph graph(features);
  for (Index i = 0; i < model.size(); ++i) detail::onnx_layer(graph, model.layer(i), i);
  detail::ProtoWriter opset, onnx;
  opset.bytes(1, "");
  opset.varint(2, onnx_opset);
  onnx.varint(1, onnx_ir_version);
  onnx.bytes(2, "dropnet");
  onnx.message(7, graph.finish(features));
  onnx.message(8, opset);
  return onnx.str();
}

/// Writes encode_onnx(model) to `path` atomically; throws InvalidArgument as encode_onnx (nothing
/// is written then) and FormatError when the file cannot be written.
template <class T>
void export_onnx(Sequential<T>& model, const std::string& path) {
  detail::replace_file_atomically(path, encode_onnx(model), "export_onnx");
}

}  // namespace dropnet
