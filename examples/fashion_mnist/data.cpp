#include "data.hpp"

#include <dropnet/io/fashion_mnist.hpp>

namespace fmnist {

namespace fm = dropnet::fashion_mnist;

namespace {

void normalize_all(Data& data, const std::string& normalization) {
  dropnet::Matrix<float> blank = dropnet::Matrix<float>::Zero(data.train.images.rows(), 1);
  if (normalization == "per-pixel") {
    dropnet::PixelStandardizer<float> standardizer;
    standardizer.fit(data.train.images);  // training statistics only: valid and test stay unseen
    for (auto* set : {&data.train, &data.valid, &data.test}) standardizer.apply(set->images);
    standardizer.apply(blank);
  } else {
    for (auto* set : {&data.train, &data.valid, &data.test})
      dropnet::normalize(set->images, 0.5f, 0.5f);
    dropnet::normalize(blank, 0.5f, 0.5f);
  }
  data.blank = blank.col(0);
}

}  // namespace

Data load_data(const DataSpec& spec, dropnet::Generator& gen) {
  Data data;
  {
    auto split = fm::split(fm::load<float>(spec.dir, fm::Part::train), spec.valid_size, gen);
    data.train = std::move(split.train);
    data.valid = std::move(split.valid);
  }
  if (spec.train_limit > 0 && spec.train_limit < data.train.size())
    data.train = fm::take(data.train, spec.train_limit);
  data.test = fm::load<float>(spec.dir, fm::Part::test);
  if (spec.test_limit > 0 && spec.test_limit < data.test.size())
    data.test = fm::take(data.test, spec.test_limit);
  normalize_all(data, spec.normalization);
  return data;
}

}  // namespace fmnist
