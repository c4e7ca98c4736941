// The translation unit scripts/ci_tidy.sh analyzes: every public header, with the templates
// instantiated for float and double so that clang-tidy sees their bodies, not just their
// declarations. Not built by CMake (no main); compiled only for analysis. Every layer is
// instantiated through LayerRegistry<T> (its builtin() rows build each kind, with every
// activation), so a new layer needs no line here; the rest is dropnet::compiled's list.

#include <dropnet/dropnet.hpp>
#include <dropnet/io/idx.hpp>
#include <dropnet/io/state_dict.hpp>

namespace dropnet {

// The compiled library's list (dropnet/instantiations.hpp), and what it leaves out.
#define DROPNET_INSTANTIATE(...) template __VA_ARGS__;
#define DROPNET_TIDY_EXTRAS                                                                    \
  DROPNET_FOR_EACH_INSTANTIATION                                                               \
  DROPNET_INSTANTIATE(class NonFiniteGuard<DROPNET_SCALAR>)                                    \
  DROPNET_INSTANTIATE(class EarlyStopping<DROPNET_SCALAR>)                                     \
  DROPNET_INSTANTIATE(class ModelCheckpoint<DROPNET_SCALAR>)                                   \
  DROPNET_INSTANTIATE(class WeightsSnapshot<DROPNET_SCALAR>)                                   \
  DROPNET_INSTANTIATE(class TrialCallback<DROPNET_SCALAR>)                                     \
  DROPNET_INSTANTIATE(class DataParallel<DROPNET_SCALAR>)                                      \
  DROPNET_INSTANTIATE(class BinaryCrossEntropy<DROPNET_SCALAR>)                               \
  DROPNET_INSTANTIATE(class NLLLoss<DROPNET_SCALAR>)                                          \
  DROPNET_INSTANTIATE(StateDictResult load_state_dict(Sequential<DROPNET_SCALAR>&,            \
                                                      const std::string&,                     \
                                                      const StateDictOptions&))               \
  DROPNET_INSTANTIATE(void save_state_dict(Sequential<DROPNET_SCALAR>&, const std::string&,   \
                                           const StateDictOptions&))                          \
  DROPNET_INSTANTIATE(void export_onnx(Sequential<DROPNET_SCALAR>&, const std::string&))      \
  DROPNET_INSTANTIATE(McPrediction<DROPNET_SCALAR> mc_predict(                                 \
      Sequential<DROPNET_SCALAR>&, const Matrix<DROPNET_SCALAR>&, int, Generator&,             \
      const McDropoutOptions&))                                                                \
  DROPNET_INSTANTIATE(Matrix<DROPNET_SCALAR> load_idx_images<DROPNET_SCALAR>(const std::string&))

#define DROPNET_SCALAR float
DROPNET_TIDY_EXTRAS
#undef DROPNET_SCALAR
#define DROPNET_SCALAR double
DROPNET_TIDY_EXTRAS
#undef DROPNET_SCALAR
#undef DROPNET_INSTANTIATE

/// The hyperparameter search with a plain function as its objective.
using SearchObjective = void (*)(const Configuration&, Generator&, TrialMonitor&);
template SearchResult run_search<SearchObjective>(const std::vector<Configuration>&,
                                                  SearchObjective, const SearchOptions&);

}  // namespace dropnet
