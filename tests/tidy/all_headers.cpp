// The translation unit scripts/ci_tidy.sh analyzes: every public header, with the templates
// instantiated for float and double so that clang-tidy sees their bodies, not just their
// declarations. Not built by CMake (no main); compiled only for analysis. Every layer is
// instantiated through LayerRegistry<T> (its builtin() rows build each kind, with every
// activation), so a new layer needs no line here.

#include <dropnet/dropnet.hpp>
#include <dropnet/io/idx.hpp>
#include <dropnet/io/state_dict.hpp>

namespace dropnet {

#define DROPNET_TIDY_LAYERS(T)                                  \
  template class Sequential<T>;                                 \
  template class SoftmaxCrossEntropy<T>;                        \
  template class BinaryCrossEntropyWithLogits<T>;               \
  template class MeanSquaredError<T>;                           \
  template class SGD<T>;                                        \
  template class BasicAdam<T, false>;                           \
  template class BasicAdam<T, true>;                            \
  template class RMSprop<T>;                                    \
  template class Adagrad<T>;                                    \
  template class LayerRegistry<T>;                              \
  template class NonFiniteGuard<T>;                             \
  template class EarlyStopping<T>;                              \
  template class ModelCheckpoint<T>;                            \
  template class WeightsSnapshot<T>;                            \
  template class ModelState<T>;                                 \
  template class TrialCallback<T>;                              \
  template History fit<T, Labels>(Sequential<T>&, const Loss<T>&, Optimizer<T>&, \
                                  const Matrix<T>&, const Labels&, Generator&,   \
                                  const FitOptions<T>&);                         \
  template Matrix<T> predict<T>(Sequential<T>&, const Matrix<T>&, Index);        \
  template void save<T>(Sequential<T>&, const std::string&, Optimizer<T>*);      \
  template void save<T>(Sequential<T>&, std::ostream&, Optimizer<T>*);           \
  template Sequential<T> load<T>(const std::string&, const LayerRegistry<T>&);   \
  template Sequential<T> load<T>(std::istream&, const LayerRegistry<T>&);        \
  template void load_into<T>(Sequential<T>&, const std::string&, Optimizer<T>*); \
  template McPrediction<T> mc_predict<T>(Sequential<T>&, const Matrix<T>&, int, Generator&, \
                                         const McDropoutOptions&);               \
  template Matrix<T> load_idx_images<T>(const std::string&);                     \
  template void save_weights<T>(Sequential<T>&, const std::string&);             \
  template void load_weights<T>(Sequential<T>&, const std::string&);             \
  template class BinaryCrossEntropy<T>;                                          \
  template class NLLLoss<T>;                                                     \
  template StateDictResult load_state_dict<T>(Sequential<T>&, const std::string&, \
                                              const StateDictOptions&);         \
  template void save_state_dict<T>(Sequential<T>&, const std::string&,           \
                                   const StateDictOptions&);                     \
  template void export_onnx<T>(Sequential<T>&, const std::string&);

DROPNET_TIDY_LAYERS(float)
DROPNET_TIDY_LAYERS(double)

/// The hyperparameter search with a plain function as its objective.
using SearchObjective = void (*)(const Configuration&, Generator&, TrialMonitor&);
template SearchResult run_search<SearchObjective>(const std::vector<Configuration>&,
                                                  SearchObjective, const SearchOptions&);

}  // namespace dropnet
