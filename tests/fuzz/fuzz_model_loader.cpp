// libFuzzer target: the model loader (io/model_file.hpp): load<T>, and load_into with and
// without an optimizer.
//
// Every input is loaded as is (exercising the header, length and checksum checks) and
// "resealed" with a correct body length and CRC-32, so that mutations reach the body parser,
// the layer registry and the optimizer section instead of dying at the checksum. Properties
// checked beyond "no crash, no sanitizer report, no allocation above -malloc_limit_mb":
//   - load either succeeds or throws FormatError; any other exception escapes (a finding)
//   - a loaded model saves back to exactly the bytes load consumed (the format is a fixed point;
//     the optimizer section, which load does not read, is the only part that may be dropped;
//     bytes after the checksum are the stream's next content, not part of the model)
//   - load_into a fixed small model also succeeds or throws FormatError
//   - load_into(model, stream, &optimizer) with a model and an optimizer of a fixed architecture
//     (corpus_models.hpp: Dense-BatchNorm-Dense, float, AMSGrad) succeeds or throws FormatError,
//     and when it throws, the model's tensors and the optimizer's state, learning rate and step
//     count are bit-identical to before (issue 18: a float file with lr 1e39 overwrote both,
//     then threw)
//   - a loaded model of modest width runs an eval and a train forward without crashing
// (One binary for the three entry points: they share the loader's code, and each fuzz target
// is a full sanitizer build of it.)

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "corpus_models.hpp"

using namespace dropnet;

namespace {


/// Rows after every layer stay small enough for a quick forward pass.
template <class T>
bool small_enough(const Sequential<T>& model) {
  const Index rows = model.input_features();
  if (rows < 1 || rows > 256) return false;
  for (Index i = 0; i < model.size(); ++i)
    if (model.layer_output_rows(i) > 4096) return false;
  return true;
}

template <class T>
void exercise(Sequential<T>& model) {
  if (!small_enough(model)) return;
  Generator gen(1);
  const Matrix<T> x = Matrix<T>::Ones(model.input_features(), 3);
  for (Mode mode : {Mode::eval, Mode::train, Mode::mc_sample}) {
    try {
      model.forward(x, mode, gen);
    } catch (const InvalidArgument&) {
      // e.g. a layer that rejects this input shape; not a loader bug
    }
  }
}

template <class T>
void try_load(const std::string& bytes) {
  try {
    std::istringstream in(bytes, std::ios::binary);
    Sequential<T> model = load<T>(in);
    std::ostringstream out(std::ios::binary);
    save(model, out);
    // load/save is a fixed point; a file with an optimizer section saves back without it, so
    // then only the model part of the body must match.
    const std::string saved = out.str();
    const std::size_t consumed = static_cast<std::size_t>(in.tellg());
    const bool with_optimizer = (detail::load_le(bytes.data() + 16, 4) & 1u) != 0;
    const std::size_t body = saved.size() - detail::model_header_bytes - 4;
    if (with_optimizer ? bytes.compare(detail::model_header_bytes, body, saved,
                                       detail::model_header_bytes, body) != 0
                       : bytes.compare(0, consumed, saved) != 0)
      std::abort();
    exercise(model);
  } catch (const FormatError&) {
  }
}

template <class T>
void try_load_into(const std::string& bytes) {
  static Generator gen(0);
  static Sequential<T> model = [] {
    Sequential<T> m(3);
    m.add(Dense<T, ReLU>(3, 2, gen));
    return m;
  }();
  try {
    std::istringstream in(bytes, std::ios::binary);
    load_into(model, in);
  } catch (const FormatError&) {
  }
}

/// Every bit a load_into with an optimizer may write: tensors, optimizer state, learning rate
/// and step count.
template <class T>
std::string state_bits(Sequential<T>& model, Optimizer<T>& optimizer) {
  Vector<T> values;
  ModelState<T>(model).pack_values(values);
  std::string bits(reinterpret_cast<const char*>(values.data()),
                   sizeof(T) * std::size_t(values.size()));
  for (const Vector<T>* s : optimizer.state())
    bits.append(reinterpret_cast<const char*>(s->data()), sizeof(T) * std::size_t(s->size()));
  const T rate = optimizer.learning_rate();
  const std::int64_t steps = optimizer.step_count();
  bits.append(reinterpret_cast<const char*>(&rate), sizeof rate);
  bits.append(reinterpret_cast<const char*>(&steps), sizeof steps);
  return bits;
}

template <class T>
void try_load_into_with_optimizer(const std::string& bytes) {
  static Sequential<T> model = fuzz::load_into_model<T>();
  static Adam<T> adam(model.parameters(), fuzz::load_into_optimizer_options());
  const std::string before = state_bits(model, adam);
  try {
    std::istringstream in(bytes, std::ios::binary);
    load_into(model, in, static_cast<Optimizer<T>*>(&adam));
  } catch (const FormatError&) {
    if (state_bits(model, adam) != before) std::abort();  // a failed load changed something
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string raw(reinterpret_cast<const char*>(data), size);
  const std::string sealed = fuzz::reseal(raw);
  for (const std::string* bytes : {&raw, &sealed}) {
    try_load<float>(*bytes);
    try_load<double>(*bytes);
    try_load_into<float>(*bytes);
    try_load_into_with_optimizer<float>(*bytes);
  }
  return 0;
}
