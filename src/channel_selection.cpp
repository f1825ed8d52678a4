#include "demon/channel_selection.h"

#include <sstream>
#include <stdexcept>
#include <string>

#include "demon/errors.h"

namespace demon {

ChannelSelectionImpl::ChannelSelectionImpl(int64_t num_channels) : initial_channels_(num_channels) {
  if (num_channels < 1) {
    throw ValueError("demon::ChannelSelection: channels must be >= 1, got " +
                     std::to_string(num_channels));
  }
  reset();
}

void ChannelSelectionImpl::reset() {
  source = register_buffer("source", torch::arange(initial_channels_, torch::kLong));
  target = register_buffer("target", torch::arange(initial_channels_, torch::kLong));
  channels = register_buffer("channels",
                             torch::tensor({initial_channels_, initial_channels_}, torch::kLong));
  refresh_cache();
}

void ChannelSelectionImpl::refresh_cache() {
  const auto counts = channels.to(torch::kCPU);
  in_channels_ = counts[0].item<int64_t>();
  out_channels_ = counts[1].item<int64_t>();
  const auto target_cpu = target.to(torch::kCPU);
  dense_ = target_cpu.numel() == out_channels_ &&
           torch::equal(target_cpu, torch::arange(out_channels_, torch::kLong));
}

void ChannelSelectionImpl::sync_from_buffers() {
  refresh_cache();
}

torch::Tensor ChannelSelectionImpl::forward(const torch::Tensor& input) {
  if (input.dim() < 2 || input.size(1) != in_channels_) {
    std::ostringstream message;
    message << "demon::ChannelSelection: expected " << in_channels_
            << " channels in dim 1, got an input of shape " << input.sizes();
    throw ValueError(message.str());
  }
  auto picked = input.index_select(1, source);
  if (dense_) {
    return picked;
  }
  auto sizes = input.sizes().vec();
  sizes[1] = out_channels_;
  return torch::zeros(sizes, input.options()).index_copy(1, target, picked);
}

void ChannelSelectionImpl::select(const std::vector<int64_t>& keep_inputs,
                                  const std::vector<int64_t>& keep_outputs) {
  // New position of each old channel of a side (-1: dropped), checked before anything changes.
  const auto positions = [](const std::vector<int64_t>& keep, int64_t count, const char* side) {
    std::vector<int64_t> at(static_cast<size_t>(count), -1);
    for (size_t i = 0; i < keep.size(); ++i) {
      if (keep[i] < 0 || keep[i] >= count) {
        throw IndexError(std::string("demon::ChannelSelection::select: ") + side + " index " +
                         std::to_string(keep[i]) + " is outside [0, " + std::to_string(count) +
                         ")");
      }
      at[static_cast<size_t>(keep[i])] = static_cast<int64_t>(i);
    }
    return at;
  };
  const auto new_input = positions(keep_inputs, in_channels_, "input");
  const auto new_output = positions(keep_outputs, out_channels_, "output");
  const auto old_source = source.to(torch::kCPU).contiguous();
  const auto old_target = target.to(torch::kCPU).contiguous();
  const int64_t* source_data = old_source.data_ptr<int64_t>();
  const int64_t* target_data = old_target.data_ptr<int64_t>();
  std::vector<int64_t> kept_source, kept_target;
  for (int64_t k = 0; k < old_source.numel(); ++k) {
    const int64_t in = new_input[source_data[k]];
    const int64_t out = new_output[target_data[k]];
    if (in >= 0 && out >= 0) {
      kept_source.push_back(in);
      kept_target.push_back(out);
    }
  }
  torch::NoGradGuard no_grad;
  const auto device = source.device();
  source.set_data(torch::tensor(kept_source, torch::kLong).to(device));
  target.set_data(torch::tensor(kept_target, torch::kLong).to(device));
  channels.set_data(torch::tensor({static_cast<int64_t>(keep_inputs.size()),
                                   static_cast<int64_t>(keep_outputs.size())},
                                  torch::kLong)
                        .to(device));
  refresh_cache();
}

void ChannelSelectionImpl::pretty_print(std::ostream& stream) const {
  stream << "demon::ChannelSelection(in=" << in_channels_ << ", out=" << out_channels_
         << ", entries=" << source.numel() << ")";
}

}  // namespace demon
