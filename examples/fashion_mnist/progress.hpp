#pragma once
// The training progress the example prints: dropnet's Progress callback
// (dropnet/callbacks/progress.hpp), with the style chosen by --progress.

#include <cstdio>
#include <dropnet/callbacks/progress.hpp>
#include <string>

namespace fmnist {

using Progress = dropnet::Progress<float>;
using dropnet::thousands;

/// bar when `requested` is "bar", lines when "lines", else (auto) bar on a terminal.
dropnet::ProgressStyle progress_style(const std::string& requested);

}  // namespace fmnist
