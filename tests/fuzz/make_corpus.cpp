// Writes the model-file seed corpus (tests/fuzz/corpus_models.hpp) into a directory:
//   g++ -std=c++17 -Iinclude -I/usr/include/eigen3 tests/fuzz/make_corpus.cpp -o make_corpus
//   ./make_corpus build-fuzz/seeds/model
// scripts/ci_fuzz.sh does this before fuzzing, so no corpus binary is committed and the seeds
// always have the current format.

#include <filesystem>
#include <fstream>
#include <iostream>

#include "corpus_models.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_corpus <output directory>\n";
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  for (const auto& [name, bytes] : dropnet::fuzz::model_seeds()) {
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::cerr << "make_corpus: cannot write " << (dir / name).string() << '\n';
      return 1;
    }
  }
  std::cout << dropnet::fuzz::model_seeds().size() << " seeds in " << dir.string() << '\n';
  return 0;
}
