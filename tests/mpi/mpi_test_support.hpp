#pragma once
// What the MPI tests share: the check that a fault on one rank ends every rank.

#include <doctest/doctest.h>

#include <dropnet/distributed/communicator.hpp>

#include <string>

namespace dropnet::testing {

/// Runs `work` expecting every rank to throw: the failing rank `OwnError`, the others
/// RemoteError; both messages contain `text`.
template <class OwnError, class Work>
void expect_every_rank_fails(distributed::Communicator& world, bool failing, const std::string& text,
                             Work&& work) {
  std::string message;
  bool right_type = false;
  try {
    work();
  } catch (const distributed::RemoteError& e) {
    message = e.what();
    right_type = !failing;
  } catch (const OwnError& e) {
    message = e.what();
    right_type = failing;
  }
  INFO("rank ", world.rank(), ": ", message);
  CHECK(right_type);
  CHECK(message.find(text) != std::string::npos);
}

}  // namespace dropnet::testing
