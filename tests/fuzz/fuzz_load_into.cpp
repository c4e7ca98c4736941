// libFuzzer target: load_into(model, stream, &optimizer) with a model and an optimizer of a fixed
// architecture (tests/fuzz/corpus_models.hpp: Dense-BatchNorm-Dense, float, AMSGrad).
//
// Every input is tried as is and "resealed" (correct body length and CRC-32), so mutations
// reach the optimizer section instead of dying at the checksum. Properties beyond "no crash,
// no sanitizer report":
//   - load_into succeeds or throws FormatError; any other exception escapes (a finding)
//   - when it throws, the model's tensors and the optimizer's state, learning rate and step
//     count are bit-identical to before (issue 18: a float file with lr 1e39 overwrote both,
//     then threw)

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "corpus_models.hpp"

using namespace dropnet;

namespace {

using T = float;

/// Every bit the load may write: tensors, optimizer state, learning rate and step count.
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Sequential<T> model = fuzz::load_into_model<T>();
  static Adam<T> adam(model.parameters(), fuzz::load_into_optimizer_options());
  const std::string raw(reinterpret_cast<const char*>(data), size);
  for (const std::string& bytes : {raw, fuzz::reseal(raw)}) {
    const std::string before = state_bits(model, adam);
    try {
      std::istringstream in(bytes, std::ios::binary);
      load_into(model, in, static_cast<Optimizer<T>*>(&adam));
    } catch (const FormatError&) {
      if (state_bits(model, adam) != before) std::abort();  // a failed load changed something
    }
  }
  return 0;
}
