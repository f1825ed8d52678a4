#include "demon/noise.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "demon/errors.h"

namespace demon {
namespace {

// sigma·N(0, 1) into `out` (flat, on the CPU). ATen draws CPU normals from one sequential
// Mersenne twister, which made the noise the largest part of DemonPruner's per-step cost. Here
// chunks of fixed size each get a generator seeded from one draw of `generator`, and are filled
// in parallel: the result depends on the seed only, not on the number of threads.
void parallel_normal_(torch::Tensor& out, double sigma, at::Generator& generator) {
  constexpr int64_t kChunk = int64_t{1} << 16;
  const int64_t n = out.numel();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  uint64_t base = 0;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    base = generator.get<at::CPUGeneratorImpl>()->random64();
  }
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      auto chunk_generator = at::make_generator<at::CPUGeneratorImpl>(
          base + static_cast<uint64_t>(c) * 0x9E3779B97F4A7C15ULL);
      out.slice(0, c * kChunk, std::min(n, (c + 1) * kChunk)).normal_(0.0, sigma, chunk_generator);
    }
  });
}

}  // namespace

AsymmetricNoise::AsymmetricNoise(std::vector<torch::Tensor> params, NoiseMode mode, uint64_t seed)
    : params_(std::move(params)), mode_(mode), seed_(seed) {}

at::Generator AsymmetricNoise::fresh_generator(const torch::Device& device) const {
  // A private copy of the device's default generator type, so that our draws neither depend on
  // nor disturb the user's global RNG stream.
  at::Generator generator = at::globalContext().defaultGenerator(device).clone();
  generator.set_current_seed(seed_);
  return generator;
}

at::Generator& AsymmetricNoise::generator_for(const torch::Device& device) {
  const std::string key = device.str();
  auto found = generators_.find(key);
  if (found == generators_.end()) {
    found = generators_.emplace(key, fresh_generator(device)).first;
  }
  return found->second;
}

std::vector<AsymmetricNoise::Bucket> AsymmetricNoise::make_buckets() const {
  std::vector<Bucket> buckets;
  std::vector<std::pair<torch::Device, torch::ScalarType>> keys;
  for (const auto& param : params_) {
    if (mode_ == NoiseMode::kLiveOnly && !param.grad().defined()) {
      continue;  // no gradient this step: nothing is live
    }
    const std::pair<torch::Device, torch::ScalarType> key{param.device(), param.scalar_type()};
    size_t index = 0;
    while (index < keys.size() && keys[index] != key) {
      ++index;
    }
    if (index == keys.size()) {
      keys.push_back(key);
      buckets.emplace_back();
    }
    buckets[index].params.push_back(param);
  }
  return buckets;
}

void AsymmetricNoise::capture_live_mask() {
  if (mode_ != NoiseMode::kLiveOnly) {
    return;
  }
  torch::NoGradGuard no_grad;
  captured_ = make_buckets();
  for (auto& bucket : captured_) {
    std::vector<torch::Tensor> grads;
    grads.reserve(bucket.params.size());
    for (const auto& param : bucket.params) {
      grads.push_back(param.grad().reshape({-1}));
    }
    bucket.live = torch::cat(grads).ne(0);
  }
}

void AsymmetricNoise::apply(double sigma) {
  std::vector<Bucket> buckets = std::move(captured_);
  captured_.clear();
  if (sigma == 0.0) {
    return;
  }
  if (mode_ == NoiseMode::kAll) {
    buckets = make_buckets();
  } else if (buckets.empty() && !params_.empty()) {
    for (const auto& param : params_) {
      if (param.grad().defined()) {
        throw StateError(
            "demon::AsymmetricNoise: apply() without capture_live_mask() after backward");
      }
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& bucket : buckets) {
    std::vector<int64_t> numels;
    int64_t total = 0;
    for (const auto& param : bucket.params) {
      numels.push_back(param.numel());
      total += param.numel();
    }
    if (bucket.live.defined() && bucket.live.numel() != total) {
      throw StateError(
          "demon::AsymmetricNoise: parameters changed size between capture_live_mask() and "
          "apply()");
    }
    const auto& first = bucket.params.front();
    torch::Tensor noise = torch::empty({total}, first.options().requires_grad(false));
    if (first.device().is_cpu()) {
      parallel_normal_(noise, sigma, generator_for(first.device()));
    } else {
      noise.normal_(0.0, sigma, generator_for(first.device()));
    }
    if (bucket.live.defined()) {
      noise.mul_(bucket.live);
    }
    std::vector<torch::Tensor> pieces = noise.split_with_sizes(numels);
    for (size_t i = 0; i < pieces.size(); ++i) {
      pieces[i] = pieces[i].view(bucket.params[i].sizes());
    }
    torch::_foreach_add_(bucket.params, pieces);
  }
}

std::map<std::string, torch::Tensor> AsymmetricNoise::generator_states() const {
  std::map<std::string, torch::Tensor> states;
  for (const auto& [device, generator] : generators_) {
    states[device] = generator.get_state();
  }
  return states;
}

void AsymmetricNoise::set_generator_states(const std::map<std::string, torch::Tensor>& states) {
  // All or nothing: a bad device name or state throws before any generator changes. Devices
  // without a state start afresh from the seed, as they would in a new run.
  std::map<std::string, at::Generator> generators;
  for (const auto& [device, state] : states) {
    try {
      const torch::Device parsed(device);
      at::Generator generator = fresh_generator(parsed);
      generator.set_state(state);
      generators.emplace(parsed.str(), std::move(generator));
    } catch (const c10::Error& error) {
      throw ValueError("demon::AsymmetricNoise::set_generator_states: the state for device \"" +
                       device + "\" was refused: " + error.what_without_backtrace());
    }
  }
  generators_ = std::move(generators);
}

}  // namespace demon
