#pragma once
// save_weights / load_weights: a model's weights in a model file (io/model_file.hpp), for code
// that thinks in weights rather than whole models (Keras' save_weights / load_weights).
//
//   save_weights(model, "w.dnm");   exactly save(model, "w.dnm"): architecture, parameters and
//                                   buffers, checksummed, written atomically
//   load_weights(model, "w.dnm");   the file's tensors into `model`
//
// load_weights reads and checks the file as load_into does (magic, version, scalar type,
// lengths against the bytes present, CRC-32), then requires the file's tensors to be the model's
// (parameters() then buffers(): names, shapes, order) and copies them. Unlike load_into it
// ignores the layers' hyperparameters (dropout rate, penalties, ...): weights saved from a model
// trained with one dropout rate load into the same network built with another. An optimizer
// section in the file is checked and ignored. Throws FormatError naming the file and the first
// problem; the model is then unchanged.
//
// The weights format of dropnet 0.x ("DNWT", no checksum and no size bound) is gone: such a file
// is refused with a FormatError that says what it is and what to do (docs/model_file.md).

#include <string>

#include "model_file.hpp"

namespace dropnet {

/// Writes `model`'s weights (as a whole model file) to `path` atomically. Throws
/// InvalidArgument if the model cannot be stored, FormatError if writing fails.
template <class T>
void save_weights(Sequential<T>& model, const std::string& path) {
  detail::replace_file_atomically(path, detail::encode_model<T>(model, nullptr), "save_weights");
}

/// Reads the tensors of the model file at `path` into `model`, whose tensors must have the same
/// names and shapes. Throws FormatError; `model` is then unchanged.
template <class T>
void load_weights(Sequential<T>& model, const std::string& path) {
  const std::string where = "load_weights('" + path + "')";
  detail::load_tensors_into(detail::read_model_file(path, where), model);
}

}  // namespace dropnet
