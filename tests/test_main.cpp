// The test binary's main: GoogleTest's, with one intra-op thread unless OMP_NUM_THREADS says
// otherwise. ctest runs tests in parallel processes; PyTorch 2.x's LibTorch would give each one
// a thread per core, and OpenMP threads that spin-wait on shared cores make a 1 s test take a
// minute. (Debian's LibTorch 1.13 starts with one thread already.)
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>

int main(int argc, char** argv) {
  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    torch::set_num_threads(1);
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
