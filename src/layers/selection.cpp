// ChannelSelection: its channels are virtual axes (its index buffers), not weight dims.

#include "demon/channel_selection.h"
#include "layers/layer_spec.h"

namespace demon::detail {

void add_selection_specs(std::vector<LayerSpec>& specs) {
  LayerSpec spec;
  spec.name = "ChannelSelection";
  spec.kind = LayerKind::kChannelSelection;
  spec.matches = is_module_of_type<ChannelSelectionImpl>;
  spec.width = [](const torch::nn::Module& m) {
    return dynamic_cast<const ChannelSelectionImpl&>(m).out_channels();
  };
  spec.sync_options = [](torch::nn::Module& m) {
    dynamic_cast<ChannelSelectionImpl&>(m).sync_from_buffers();
  };
  specs.push_back(spec);
}

}  // namespace demon::detail
