#include "demon/checkpoint.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "demon/errors.h"
#include "demon/pruner.h"
#include "demon/warnings.h"
#include "detail/atomic_file.h"
#include "detail/module_tree.h"
#include "detail/optimizer_spec.h"
#include "detail/optimizer_state.h"
#include "detail/torch_compat.h"
#include "layers/layer_spec.h"

namespace demon {
namespace {

constexpr const char* kFormat = "demon-checkpoint";
constexpr int kVersion = 1;

// The archive key of the model's `index`-th tensor: "t0", "t1", … Built by appending: GCC 12
// warns, falsely, that `"t" + std::to_string(index)` overflows (-Wstringop-overflow) when it
// inlines C++20's constexpr std::string, the standard LibTorch 2.15 builds with.
std::string tensor_key(size_t index) {
  std::string key(1, 't');
  key += std::to_string(index);
  return key;
}

struct NamedTensor {
  std::string name;
  torch::Tensor tensor;
  bool is_buffer;
};

// Parameters then buffers, in the model's own order. Archive keys are positional ("t0", ...):
// LibTorch's archives do not accept dotted names.
std::vector<NamedTensor> model_tensors(const torch::nn::Module& model) {
  std::vector<NamedTensor> tensors;
  for (const auto& item : model.named_parameters()) {
    tensors.push_back({item.key(), item.value(), false});
  }
  for (const auto& item : model.named_buffers()) {
    tensors.push_back({item.key(), item.value(), true});
  }
  return tensors;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  return c10::str(c10::IntArrayRef(shape));
}

// The state of an optimizer or pruner as bytes, and back: the undo of a failed load.
template <typename Stateful>
std::string to_bytes(const Stateful& object) {
  torch::serialize::OutputArchive archive;
  object.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

template <typename Stateful>
void from_bytes(Stateful& object, const std::string& bytes) {
  torch::serialize::InputArchive archive;
  std::istringstream in(bytes);
  archive.load_from(in);
  object.load(archive);
}

[[noreturn]] void damaged(const std::string& path, const std::string& what) {
  throw ValueError("demon::load_checkpoint: \"" + path + "\" has a damaged manifest (" + what +
                   ")");
}

[[noreturn]] void mismatch(const std::string& path, const std::string& what) {
  throw ValueError("demon::load_checkpoint: \"" + path + "\" does not fit the model: " + what);
}

// Each optimizer state tensor must have the shape (and, for built-in optimizers, the dtype) its
// parameter gets from the checkpoint, and none its step needs may be missing: LibTorch attaches
// saved state to parameters by position and checks none of this, so a checkpoint of other
// parameters would otherwise fail only at the next optimizer step, or step them wrongly.
void check_optimizer_state(const std::string& path, torch::optim::Optimizer& optimizer,
                           const std::vector<NamedTensor>& tensors,
                           const std::vector<torch::Tensor>& loaded) {
  std::map<const c10::TensorImpl*, size_t> index;
  for (size_t i = 0; i < tensors.size(); ++i)
    index[tensors[i].tensor.unsafeGetTensorImpl()] = i;
  auto& states = optimizer.state();
  for (auto& group : optimizer.param_groups()) {
    for (auto& param : group.params()) {
      const auto state = states.find(detail::optimizer_state_key(param));
      const auto at = index.find(param.unsafeGetTensorImpl());
      if (state == states.end() || at == index.end())
        continue;
      const auto& name = tensors[at->second].name;
      if (!state->second)  // LibTorch leaves a null entry for a parameter listed twice
        mismatch(path, "the optimizer state of \"" + name + "\" is listed twice");
      const std::string problem =
          detail::optimizer_state_problem(*state->second, group.options(), loaded[at->second]);
      if (!problem.empty())
        mismatch(path, "the optimizer state of \"" + name + "\" cannot step it: " + problem);
      const auto shape = loaded[at->second].sizes();
      detail::slice_optimizer_state(*state->second, [&](const torch::Tensor& value) {
        if (value.sizes() != shape) {
          mismatch(path, "the optimizer state of \"" + name + "\" has shape " +
                             c10::str(value.sizes()) + ", the tensor " + c10::str(shape));
        }
        return value;
      });
    }
  }
}

// The archive at `path`, read onto `device`, and its manifest, checked for this format and
// version.
nlohmann::json read_manifest(const std::string& path, torch::serialize::InputArchive& archive,
                             const torch::Device& device) {
  try {
    archive.load_from(path, device);
  } catch (const c10::Error& error) {
    throw ValueError("demon::load_checkpoint: cannot read \"" + path +
                     "\": " + error.what_without_backtrace());
  }
  c10::IValue value;
  if (!archive.try_read("manifest", value) || !value.isString()) {
    throw ValueError("demon::load_checkpoint: \"" + path +
                     "\" is not a demon checkpoint (no manifest)");
  }
  auto manifest = nlohmann::json::parse(value.toStringRef(), nullptr, /*exceptions=*/false);
  if (!manifest.is_object() || !manifest.contains("tensors") || !manifest["tensors"].is_array()) {
    damaged(path, "not a JSON object with \"tensors\"");
  }
  const std::string format =
      manifest.contains("format") && manifest["format"].is_string() ? manifest["format"] : "none";
  const int version = manifest.contains("version") && manifest["version"].is_number_integer()
                          ? manifest["version"].get<int>()
                          : 0;
  if (format != kFormat || version != kVersion) {
    throw ValueError("demon::load_checkpoint: \"" + path + "\" is format \"" + format +
                     "\" version " + std::to_string(version) + "; this demon reads \"" + kFormat +
                     "\" version " + std::to_string(kVersion));
  }
  return manifest;
}

// A model bigger than the run's start is another width of the architecture, or the dense model
// of a run that began from a pruned one (a second pruning stage): every tensor fits either way,
// so this is a warning (empty when there is none), given once the load succeeded.
std::string width_warning(const std::string& path, const nlohmann::json& manifest,
                          const torch::nn::Module& model) {
  if (!manifest.contains("initial_parameters"))
    return {};
  const auto& recorded = manifest["initial_parameters"];
  // Written as a count, it parses as a non-negative (unsigned) integer.
  if (!recorded.is_number_unsigned() ||
      recorded.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    damaged(path, "initial_parameters");
  const auto initial = recorded.get<int64_t>();
  int64_t parameters = 0;
  for (const auto& p : model.parameters())
    parameters += p.numel();
  if (parameters <= initial)
    return {};
  return "demon::load_checkpoint: \"" + path + "\" comes from a run that started from a model of " +
         std::to_string(initial) + " parameters; this model has " + std::to_string(parameters) +
         " (another width? fine for a run that began from a pruned model)";
}

// The checkpoint's value of each of the model's `tensors` (same order), on the tensor's device:
// every entry named, typed and shaped to fit (a pruned model only shrinks), none missing.
std::vector<torch::Tensor> read_model_tensors(const std::string& path,
                                              torch::serialize::InputArchive& archive,
                                              const nlohmann::json& entries,
                                              const std::vector<NamedTensor>& tensors) {
  std::unordered_map<std::string, size_t> model_index;
  for (size_t i = 0; i < tensors.size(); ++i)
    model_index[tensors[i].name] = i;
  std::vector<torch::Tensor> loaded(tensors.size());
  for (size_t e = 0; e < entries.size(); ++e) {
    const auto& entry = entries[e];
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
        !entry.contains("shape") || !entry["shape"].is_array() || !entry.contains("dtype") ||
        !entry["dtype"].is_string() || !entry.contains("buffer") || !entry["buffer"].is_boolean()) {
      damaged(path, "tensor entry " + std::to_string(e));
    }
    for (const auto& size : entry["shape"]) {
      if (!size.is_number_integer() || size.get<int64_t>() < 0) {
        damaged(path, "shape of tensor entry " + std::to_string(e));
      }
    }
    const std::string name = entry.at("name");
    const auto found = model_index.find(name);
    if (found == model_index.end()) {
      mismatch(path, "it has \"" + name + "\", the model has no such parameter or buffer");
    }
    const auto& current = tensors[found->second].tensor;
    const std::vector<int64_t> shape = entry.at("shape");
    const std::string dtype = entry.at("dtype");
    if (dtype != c10::toString(current.scalar_type())) {
      mismatch(path, "\"" + name + "\" is " + dtype + " in the checkpoint, " +
                         c10::toString(current.scalar_type()) + " in the model");
    }
    bool fits = static_cast<int64_t>(shape.size()) == current.dim();
    for (size_t d = 0; fits && d < shape.size(); ++d)
      fits = shape[d] <= current.size(d);
    if (!fits) {
      mismatch(path, "\"" + name + "\" has shape " + shape_text(shape) + " in the checkpoint, " +
                         c10::str(current.sizes()) + " in the model (a pruned model only shrinks)");
    }
    torch::Tensor tensor;
    if (!archive.try_read(tensor_key(e), tensor, entry.at("buffer").get<bool>())) {
      damaged(path, "tensor entry " + std::to_string(e) + " has no data");
    }
    if (tensor.sizes().vec() != shape || tensor.scalar_type() != current.scalar_type()) {
      damaged(path, "\"" + name + "\" is stored as " + c10::toString(tensor.scalar_type()) +
                        c10::str(tensor.sizes()) + ", its entry says " + dtype + shape_text(shape));
    }
    loaded[found->second] = tensor.to(current.device());
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!loaded[i].defined()) {
      mismatch(path, "the model has \"" + tensors[i].name + "\", the checkpoint does not");
    }
  }
  return loaded;
}

// The pruner's and the optimizer's sections (they do not depend on the model's shapes), loaded
// while the model is untouched. The pruner goes first: its check of the options refuses another
// run before anything changed. Should the optimizer's load fail after that (LibTorch may have
// filled some groups by then), both are restored and the error rethrown.
void load_sections(const std::string& path, torch::serialize::InputArchive& archive,
                   torch::optim::Optimizer* optimizer, DemonPruner* pruner,
                   const std::vector<NamedTensor>& tensors,
                   const std::vector<torch::Tensor>& loaded) {
  const std::string pruner_before = pruner != nullptr ? to_bytes(*pruner) : std::string();
  const std::string optimizer_before = optimizer != nullptr ? to_bytes(*optimizer) : std::string();
  std::vector<std::unique_ptr<torch::optim::OptimizerOptions>> options_before;
  if (optimizer != nullptr) {
    for (auto& group : optimizer->param_groups())
      options_before.push_back(group.options().clone());
  }
  auto restore = [&] {
    if (pruner != nullptr)
      from_bytes(*pruner, pruner_before);
    if (optimizer != nullptr) {
      // An optimizer's load only sets the state it finds: what the failed load added stays
      // unless the state is emptied first. The options it may have taken go back, too.
      optimizer->state().clear();
      from_bytes(*optimizer, optimizer_before);
      for (size_t i = 0; i < options_before.size(); ++i)
        optimizer->param_groups()[i].set_options(options_before[i]->clone());
    }
  };
  const char* section = "pruner";
  try {
    if (pruner != nullptr) {
      torch::serialize::InputArchive state;
      archive.read("pruner", state);
      pruner->load(state);
    }
    section = "optimizer";
    if (optimizer != nullptr) {
      torch::serialize::InputArchive state;
      archive.read("optimizer", state);
      // LibTorch's load only sets the state it finds: a parameter without saved state would keep
      // the state this optimizer had (of another shape, once the model is cut to the checkpoint).
      optimizer->state().clear();
      optimizer->load(state);
      detail::adopt_saved_options(state, *optimizer);
      check_optimizer_state(path, *optimizer, tensors, loaded);
    }
  } catch (const c10::Error& error) {
    // LibTorch's own message ("isInt() INTERNAL ASSERT FAILED") names neither file nor section.
    restore();
    throw ValueError("demon::load_checkpoint: \"" + path + "\": its " + section +
                     " state does not load (another " + section +
                     ", or damaged): " + error.what_without_backtrace());
  } catch (...) {
    restore();
    throw;
  }
}

// Shrinks and fills the model's tensors in place (same TensorImpls), then lets the module
// options follow their new widths.
void adopt_model_tensors(torch::nn::Module& model, const std::vector<NamedTensor>& tensors,
                         const std::vector<torch::Tensor>& loaded) {
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < tensors.size(); ++i) {
      auto target = tensors[i].tensor;
      detail::set_data_of_new_shape(target, loaded[i]);
      if (target.requires_grad())
        target.mutable_grad() = torch::Tensor();
    }
  }
  for (const auto& [name, module] : detail::named_modules_of(model)) {
    detail::sync_module_options(*module);
  }
}

}  // namespace

void save_checkpoint(const std::string& path, const ModelRef& model_ref,
                     const OptimizerRef& optimizer_ref, const DemonPruner* pruner,
                     const nlohmann::json& extra) {
  if (!model_ref) {
    throw ValueError("demon::save_checkpoint: the model is null");
  }
  const torch::nn::Module& model = model_ref.get();
  const torch::optim::Optimizer* optimizer = optimizer_ref.get();
  torch::serialize::OutputArchive archive;
  nlohmann::json manifest = {{"format", kFormat}, {"version", kVersion}};
  nlohmann::json entries = nlohmann::json::array();
  const auto tensors = model_tensors(model);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    entries.push_back({{"name", t.name},
                       {"shape", t.tensor.sizes().vec()},
                       {"dtype", std::string(c10::toString(t.tensor.scalar_type()))},
                       {"buffer", t.is_buffer}});
    archive.write(tensor_key(i), t.tensor.detach(), t.is_buffer);
  }
  manifest["tensors"] = entries;
  manifest["extra"] = extra;
  manifest["has_optimizer"] = optimizer != nullptr;
  manifest["has_pruner"] = pruner != nullptr;
  if (pruner != nullptr) {
    // The run's starting size: load_checkpoint warns about a model bigger than that.
    manifest["initial_parameters"] = pruner->summary().initial_parameters;
  }
  archive.write("manifest", c10::IValue(manifest.dump()));
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive state;
    optimizer->save(state);
    archive.write("optimizer", state);
  }
  if (pruner != nullptr) {
    torch::serialize::OutputArchive state;
    pruner->save(state);
    archive.write("pruner", state);
  }
  // Serialized in memory first: LibTorch's file writer meets a full disk with an error thrown
  // from a destructor (std::terminate) and leaves its temporary file behind.
  std::ostringstream bytes;
  archive.save_to(bytes);
  detail::replace_file_atomically(path, bytes.str());
}

nlohmann::json load_checkpoint(const std::string& path, const ModelRef& model_ref,
                               const OptimizerRef& optimizer_ref, DemonPruner* pruner) {
  if (!model_ref) {
    throw ValueError("demon::load_checkpoint: the model is null");
  }
  torch::nn::Module& model = model_ref.get();
  torch::optim::Optimizer* optimizer = optimizer_ref.get();
  const auto tensors = model_tensors(model);
  const torch::Device device =
      tensors.empty() ? torch::Device(torch::kCPU) : tensors.front().tensor.device();
  torch::serialize::InputArchive archive;
  const nlohmann::json manifest = read_manifest(path, archive, device);

  // 1. Everything must fit before anything changes.
  const std::string warning = width_warning(path, manifest, model);
  const std::vector<torch::Tensor> loaded =
      read_model_tensors(path, archive, manifest.at("tensors"), tensors);
  if (optimizer != nullptr && !manifest.value("has_optimizer", false)) {
    mismatch(path, "an optimizer was given but the checkpoint holds no optimizer state");
  }
  if (pruner != nullptr && !manifest.value("has_pruner", false)) {
    mismatch(path, "a pruner was given but the checkpoint holds no pruner state");
  }
  // 2. The pruner and the optimizer, undone together if either fails.
  load_sections(path, archive, optimizer, pruner, tensors, loaded);
  // 3. The model, which cannot fail any more.
  adopt_model_tensors(model, tensors, loaded);
  if (!warning.empty())
    warn(warning);
  return manifest.value("extra", nlohmann::json::object());
}

}  // namespace demon
