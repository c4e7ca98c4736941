// libFuzzer target: the safetensors reader (io/safetensors.hpp) and load_state_dict on top of it
// (io/state_dict.hpp).
//
// Every input must parse or throw FormatError; anything else escapes and is reported as a crash.
// On success the results are checked for consistency (each tensor's bytes inside the data and
// matching its shape), every floating-point tensor is converted, and the file is loaded into a
// small model (Dense, BatchNorm, Dense) in non-strict mode: that must succeed or throw
// FormatError, and a throw must leave the model unchanged.

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dropnet/activations/relu.hpp>
#include <dropnet/io/state_dict.hpp>
#include <dropnet/layers/batch_norm.hpp>
#include <dropnet/layers/dense.hpp>
#include <dropnet/model/model_state.hpp>
#include <string>
#include <vector>

#include "corpus_models.hpp"

using namespace dropnet;

namespace {

void check_file(const SafetensorsFile& file) {
  for (const SafeTensor& t : file.tensors()) {
    if (t.end < t.begin || t.end - t.begin != t.elements() * detail::safetensors_dtype_size(t.dtype))
      std::abort();
    if (t.dtype == "F32" || t.dtype == "F64" || t.dtype == "F16" || t.dtype == "BF16")
      (void)file.values<double>(t.name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Sequential<float> model = fuzz::load_into_model<float>();  // Dense, BatchNorm, Dense
  static Vector<float> before;
  try {
    const SafetensorsFile file(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    check_file(file);
    ModelState<float>(model).pack_values(before);
    StateDictOptions options;
    options.strict = false;
    try {
      load_state_dict(model, file, options);
    } catch (const FormatError&) {
      Vector<float> after;
      ModelState<float>(model).pack_values(after);
      if (after.size() != before.size() ||
          std::memcmp(after.data(), before.data(), sizeof(float) * static_cast<std::size_t>(after.size())) != 0)
        std::abort();  // a failed load changed the model
    }
  } catch (const FormatError&) {
  }
  return 0;
}
