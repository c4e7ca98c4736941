#pragma once
// The single place dropnet's version is written; CMake reads it from here.

#define DROPNET_VERSION_MAJOR 0
#define DROPNET_VERSION_MINOR 1
#define DROPNET_VERSION_PATCH 0

namespace dropnet {
inline constexpr const char* version = "0.1.0";
}  // namespace dropnet
