#pragma once
// The command line: CLI11 parses it, a preset fills the defaults, flags override them.

#include "options.hpp"

namespace fmnist {

struct ParsedCommandLine {
  Options options;
  bool exit = false;  ///< true after --help or an error: return exit_code from main
  int exit_code = 0;  ///< 0 after --help, non-zero (CLI11's codes) after an error
};

/// Parses argv. On a bad option prints CLI11's message (which option, what was wrong) and a
/// pointer to --help on stderr, and returns exit = true with a non-zero code. Never throws.
ParsedCommandLine parse_command_line(int argc, char** argv);

}  // namespace fmnist
