#pragma once
// Deep ensembles (Lakshminarayanan, Pritzel and Blundell 2017): M networks of the same
// architecture, trained from different random seeds, predict with the mean of their class
// probabilities.
//
//   auto members = train_ensemble<float>(5, 42,
//       [&](Generator& gen) { return build_my_model(gen); },          // -> Sequential<float>
//       [&](Sequential<float>& m, Generator& gen) { fit(m, loss, ..., gen, options); });
//   McPrediction<float> p = ensemble_predict(members, x_test);      // p.probabilities
//
// Member m (0-based) is built and trained with Generator(seed + m), so each member, and the
// whole ensemble, is reproducible from `seed` alone; members train one after the other (one per
// MPI rank is the distributed version's job).
//
// ensemble_predict runs each member in eval mode and averages them with mc_predict's own code
// (detail::PredictionAverage), the M members in place of the T passes: with y_m member m's outputs and p_m its probabilities,
//   mean = (1/M) sum_m y_m,  variance = (1/M) sum_m (y_m - mean)^2,
//   probabilities = pbar = (1/M) sum_m p_m,  predictive_entropy = H[pbar],
//   expected_entropy = (1/M) sum_m H[p_m],  mutual_information = H[pbar] - E[H[p_m]] (>= 0)
// (see training/mc_dropout.hpp), so the same metrics apply to both.
// Throws InvalidArgument if there are no members, x is empty, or the members' output sizes
// differ; errors of build, train and predict propagate.

#include <cstdint>
#include <utility>
#include <vector>

#include "evaluate.hpp"
#include "mc_dropout.hpp"

namespace dropnet {

/// Builds and trains `members` models in turn; member m uses Generator(seed + m) for both.
/// `build(Generator&)` returns a Sequential<T>; `train(Sequential<T>&, Generator&)` trains it.
template <class T, class Build, class Train>
std::vector<Sequential<T>> train_ensemble(int members, std::uint64_t seed, Build build,
                                          Train train) {
  detail::require(members >= 1, "train_ensemble", "members must be >= 1, got ", members);
  std::vector<Sequential<T>> ensemble;
  ensemble.reserve(static_cast<std::size_t>(members));
  for (int m = 0; m < members; ++m) {
    Generator gen(seed + static_cast<std::uint64_t>(m));
    Sequential<T> model = build(gen);
    train(model, gen);
    ensemble.push_back(std::move(model));
  }
  return ensemble;
}

/// The ensemble's predictive distribution on x (see the header comment). `outputs` says what
/// the members output (logits by default); `batch_size` bounds predict's memory.
template <class T>
McPrediction<T> ensemble_predict(std::vector<Sequential<T>>& members, const Matrix<T>& x,
                                 McOutputs outputs = McOutputs::logits, Index batch_size = 1024) {
  detail::require(!members.empty(), "ensemble_predict", "the ensemble has no members");
  detail::PredictionAverage<T> average(x.cols(), outputs);
  for (std::size_t m = 0; m < members.size(); ++m) {
    const Matrix<T> y = predict(members[m], x, batch_size);
    detail::require(average.outputs() < 0 || y.rows() == average.outputs(), "ensemble_predict",
                    "member ", m, " has ", y.rows(), " outputs, member 0 has ", average.outputs());
    average.add(y, 0, static_cast<Index>(m + 1));
  }
  return average.finish(static_cast<int>(members.size()));
}

}  // namespace dropnet
