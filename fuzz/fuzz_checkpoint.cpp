// load_checkpoint, and through it the manifest parser and DemonPruner::load, on checkpoints a
// mutation has damaged. Byte mutations of the file itself would only meet the zip reader's CRC
// check, so the mutations act on the archive's contents: the input picks one entry of a real
// checkpoint (the manifest, a tensor, a value of the optimizer's or the pruner's state) and
// removes it, replaces it, reshapes it or changes its type.
//
// Input: 2 bytes entry index, 1 byte operation, then the operation's payload.
// Promises (checkpoint.h): a checkpoint is loaded or refused with an exception; when refused, the
// model, the optimizer and the pruner are exactly as before; when loaded, training goes on.

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/torch.h>

#include <memory>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "demon/checkpoint.h"
#include "demon/pruner.h"
#include "demon/warnings.h"
#include "detail/torch_compat.h"
#include "fuzz_support.h"
#include "models.h"

namespace {

using demon::testing::Block;
using demon::testing::ResNet;

// An archive as a tree: entries in the order they were written.
struct Tree;
struct Entry {
  std::string key;
  std::variant<c10::IValue, torch::Tensor, std::shared_ptr<Tree>> value;
};
struct Tree {
  std::vector<Entry> entries;
};

Tree read_tree(torch::serialize::InputArchive& archive) {
  Tree tree;
  for (const auto& key : archive.keys()) {
    if (key == "training") {  // every archive's module attribute, not an entry
      continue;
    }
    torch::serialize::InputArchive child;
    torch::Tensor tensor;
    c10::IValue value;
    if (archive.try_read(key, child)) {
      tree.entries.push_back({key, std::make_shared<Tree>(read_tree(child))});
    } else if (archive.try_read(key, tensor)) {
      tree.entries.push_back({key, tensor});
    } else if (archive.try_read(key, value)) {
      tree.entries.push_back({key, value});
    }
  }
  return tree;
}

// Entries are shared by copies of a Tree; a mutation works on a deep copy of the pristine one.
Tree deep_copy(const Tree& tree) {
  Tree copy;
  for (const auto& entry : tree.entries) {
    if (const auto* child = std::get_if<std::shared_ptr<Tree>>(&entry.value)) {
      copy.entries.push_back({entry.key, std::make_shared<Tree>(deep_copy(**child))});
    } else {
      copy.entries.push_back(entry);
    }
  }
  return copy;
}

void write_tree(const Tree& tree, torch::serialize::OutputArchive& archive) {
  for (const auto& entry : tree.entries) {
    if (const auto* value = std::get_if<c10::IValue>(&entry.value)) {
      archive.write(entry.key, *value);
    } else if (const auto* tensor = std::get_if<torch::Tensor>(&entry.value)) {
      archive.write(entry.key, *tensor, /*is_buffer=*/true);
    } else {
      torch::serialize::OutputArchive child;
      write_tree(*std::get<std::shared_ptr<Tree>>(entry.value), child);
      archive.write(entry.key, child);
    }
  }
}

// Every entry that is not itself an archive, depth first: what a mutation can pick.
void collect(Tree& tree, std::vector<std::pair<Tree*, size_t>>& leaves) {
  for (size_t i = 0; i < tree.entries.size(); ++i) {
    if (auto* child = std::get_if<std::shared_ptr<Tree>>(&tree.entries[i].value)) {
      collect(**child, leaves);
    } else {
      leaves.emplace_back(&tree, i);
    }
  }
}

demon::DemonOptions pruning_options() {
  return demon::DemonOptions(60).lambda_peak(0.5).sigma_peak(1e-4).prune_every(10).seed(3);
}

// A model, its optimizer and its pruner, freshly built: what a resumed run starts from.
struct Run {
  Run() {
    torch::manual_seed(0);
    model = std::make_shared<ResNet>(Block::Shortcut::kBare);
    optimizer = std::make_shared<torch::optim::AdamW>(model->parameters(),
                                                      torch::optim::AdamWOptions(1e-2));
    pruner = std::make_unique<demon::DemonPruner>(model, optimizer, pruning_options());
  }
  void train(int64_t steps) {
    for (int64_t s = 0; s < steps; ++s) {
      torch::manual_seed(100 + s);
      auto input = model->example_input(8);
      auto labels = torch::randint(0, 5, {8}, torch::kLong);
      pruner->zero_grad();
      pruner->backward(torch::cross_entropy_loss(model->forward(input), labels));
      pruner->step();
    }
  }
  std::shared_ptr<ResNet> model;
  std::shared_ptr<torch::optim::AdamW> optimizer;
  std::unique_ptr<demon::DemonPruner> pruner;
};

template <typename Stateful>
std::string state_bytes(const Stateful& object) {
  torch::serialize::OutputArchive archive;
  object.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

// The AdamW state per parameter, in parameter order, as text and bytes. Not the serialized
// archive: LibTorch writes the state in its hash map's order, which a restore may change.
std::string optimizer_state(torch::optim::AdamW& optimizer) {
  std::ostringstream out;
  for (auto& group : optimizer.param_groups()) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    out << options.lr() << ' ' << options.weight_decay() << ' ' << options.eps() << '\n';
    for (const auto& param : group.params()) {
      const auto found = optimizer.state().find(demon::detail::optimizer_state_key(param));
      if (found == optimizer.state().end()) {
        out << "none\n";
        continue;
      }
      const auto& state = static_cast<const torch::optim::AdamWParamState&>(*found->second);
      out << state.step() << '\n';
      for (const auto& tensor : {state.exp_avg(), state.exp_avg_sq(), state.max_exp_avg_sq()}) {
        if (!tensor.defined()) {
          out << "undefined\n";
          continue;
        }
        const auto bytes = tensor.contiguous().flatten().view(torch::kUInt8);
        out << tensor.sizes() << ' ' << tensor.scalar_type() << ' '
            << std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()),
                           static_cast<size_t>(bytes.numel()))
            << '\n';
      }
    }
  }
  return out.str();
}

std::vector<torch::Tensor> model_state(torch::nn::Module& model) {
  std::vector<torch::Tensor> state;
  for (const auto& p : model.named_parameters())
    state.push_back(p.value().detach().clone());
  for (const auto& b : model.named_buffers())
    state.push_back(b.value().detach().clone());
  return state;
}

bool same_state(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].sizes() != b[i].sizes() || a[i].scalar_type() != b[i].scalar_type() ||
        !torch::equal(a[i].flatten().view(torch::kUInt8), b[i].flatten().view(torch::kUInt8))) {
      return false;
    }
  }
  return true;
}

// A checkpoint of a run that has pruned (narrower tensors than a fresh model), with optimizer and
// pruner state: the file, and read as a tree.
const std::string& pristine_file() {
  static const demon::fuzz::ScratchFile file("base.pt");
  static const bool written = [] {
    Run run;
    run.train(25);
    if (run.pruner->prune_events() == 0) {
      demon::fuzz::broken("the base run did not prune; the fuzzer would miss narrowed shapes");
    }
    demon::save_checkpoint(file.path(), run.model, run.optimizer, run.pruner.get(), {{"epoch", 2}});
    return true;
  }();
  (void)written;
  return file.path();
}

const Tree& pristine() {
  static const Tree tree = [] {
    torch::serialize::InputArchive archive;
    archive.load_from(pristine_file());
    return read_tree(archive);
  }();
  return tree;
}

enum Operation : uint8_t { kRemove, kReplace, kReshape, kRetype, kOperations };

// Applies the input's mutation to a copy of the pristine tree; false when it names nothing.
bool mutate(Tree& tree, const uint8_t* data, size_t size) {
  if (size < 3)
    return false;
  std::vector<std::pair<Tree*, size_t>> leaves;
  collect(tree, leaves);
  const auto [parent, index] = leaves[(data[0] << 8 | data[1]) % leaves.size()];
  const auto operation = static_cast<Operation>(data[2] % kOperations);
  const std::string payload(reinterpret_cast<const char*>(data + 3), size - 3);
  auto number = [&](size_t at) {
    int64_t n = 0;
    for (size_t i = 0; i < 8 && at + i < payload.size(); ++i)
      n |= static_cast<int64_t>(static_cast<uint8_t>(payload[at + i])) << (8 * i);
    return n;
  };
  auto& entry = parent->entries[index];
  switch (operation) {
    case kRemove:
      parent->entries.erase(parent->entries.begin() + static_cast<std::ptrdiff_t>(index));
      return true;
    case kReplace:
      if (auto* value = std::get_if<c10::IValue>(&entry.value)) {
        if (value->isString()) {
          *value = payload;
        } else if (value->isInt()) {
          *value = number(0);
        } else if (value->isDouble()) {
          double d = 0;
          std::memcpy(&d, payload.data(), std::min(payload.size(), sizeof d));
          *value = d;
        } else if (value->isBool()) {
          *value = !value->toBool();
        } else {
          *value = payload;
        }
      } else if (auto* tensor = std::get_if<torch::Tensor>(&entry.value)) {
        // Overwrite the tensor's leading bytes with the payload: NaN, Inf, huge counts.
        auto bytes = tensor->contiguous().clone();
        auto flat = bytes.flatten().view(torch::kUInt8);
        const int64_t n = std::min<int64_t>(flat.numel(), static_cast<int64_t>(payload.size()));
        if (n > 0)
          std::memcpy(flat.data_ptr<uint8_t>(), payload.data(), static_cast<size_t>(n));
        *tensor = bytes;
      }
      return true;
    case kReshape:
      if (auto* tensor = std::get_if<torch::Tensor>(&entry.value)) {
        if (tensor->dim() == 0 || payload.empty()) {
          *tensor = tensor->reshape({-1});
        } else {
          const int64_t dim = static_cast<uint8_t>(payload[0]) % tensor->dim();
          const int64_t length = number(1) % (2 * tensor->size(dim) + 2);
          *tensor = length <= tensor->size(dim)
                        ? tensor->narrow(dim, 0, std::max<int64_t>(0, length)).clone()
                        : torch::cat({*tensor, tensor->narrow(dim, 0, tensor->size(dim))}, dim);
        }
        return true;
      }
      return false;
    case kRetype:
      if (auto* tensor = std::get_if<torch::Tensor>(&entry.value)) {
        const torch::ScalarType types[] = {torch::kDouble, torch::kHalf, torch::kLong, torch::kBool,
                                           torch::kUInt8};
        *tensor = tensor->to(types[payload.empty() ? 0 : static_cast<uint8_t>(payload[0]) % 5]);
      } else if (auto* value = std::get_if<c10::IValue>(&entry.value)) {
        *value = value->isString() ? c10::IValue(number(0)) : c10::IValue(payload);
      }
      return true;
    default:
      return false;
  }
}

std::vector<std::string> seeds() {
  // Each string value replaced by itself, so that mutations start from real JSON; each other
  // entry once with each operation.
  Tree tree = deep_copy(pristine());
  std::vector<std::pair<Tree*, size_t>> leaves;
  collect(tree, leaves);
  std::vector<std::string> out;
  for (size_t i = 0; i < leaves.size(); ++i) {
    const auto& entry = leaves[i].first->entries[leaves[i].second];
    const std::string index{static_cast<char>(i >> 8), static_cast<char>(i & 0xff)};
    const auto* value = std::get_if<c10::IValue>(&entry.value);
    if (value != nullptr && value->isString()) {
      out.push_back(index + static_cast<char>(kReplace) + value->toStringRef());
    } else if (i % 7 == 0) {
      for (uint8_t op = 0; op < kOperations; ++op)
        out.push_back(index + static_cast<char>(op) + std::string("\x01\x02\xff\x7f", 4));
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);
  // The pruner's warnings (non-finite gradients from damaged state, say) are expected here.
  demon::set_warning_handler([](const std::string&) {});
  demon::fuzz::write_seeds_if_asked(seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Tree tree = deep_copy(pristine());
  if (!mutate(tree, data, size))
    return 0;
  static const demon::fuzz::ScratchFile file("mutated.pt");
  {
    torch::serialize::OutputArchive archive;
    write_tree(tree, archive);
    archive.save_to(file.path());
  }
  // A resumed run, so that "exactly as before" is checked against state that exists: optimizer
  // moments, drawn noise generators, a model already cut to the checkpoint's shapes.
  Run run;
  demon::load_checkpoint(pristine_file(), run.model, run.optimizer, run.pruner.get());
  const auto model_before = model_state(*run.model);
  const auto optimizer_before = optimizer_state(*run.optimizer);
  const auto pruner_before = state_bytes(*run.pruner);
  try {
    demon::load_checkpoint(file.path(), run.model, run.optimizer, run.pruner.get());
  } catch (const std::exception& error) {
    if (!same_state(model_before, model_state(*run.model)))
      demon::fuzz::broken(std::string("a refused checkpoint changed the model: ") + error.what());
    if (optimizer_state(*run.optimizer) != optimizer_before)
      demon::fuzz::broken(std::string("a refused checkpoint changed the optimizer: ") +
                          error.what());
    if (state_bytes(*run.pruner) != pruner_before)
      demon::fuzz::broken(std::string("a refused checkpoint changed the pruner: ") + error.what());
    return 0;
  }
  try {
    run.train(1);
  } catch (const std::exception& error) {
    demon::fuzz::broken(std::string("a checkpoint that loaded does not train: ") + error.what());
  }
  return 0;
}
