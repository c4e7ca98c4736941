#include "progress.hpp"

namespace fmnist {

dropnet::ProgressStyle progress_style(const std::string& requested) {
  if (requested == "bar") return dropnet::ProgressStyle::bar;
  if (requested == "lines") return dropnet::ProgressStyle::lines;
  return dropnet::ProgressStyle::automatic;
}

}  // namespace fmnist
