#include "graph/channel_ids.h"

#include <algorithm>

namespace demon::detail {

std::vector<int64_t> ChannelIds::make(int64_t count) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < count; ++i) {
    ids.push_back(size());
    parent_.push_back(size());
    pin_reason_.emplace_back();
    unobservable_.push_back(false);
    read_sites_.emplace_back();
  }
  return ids;
}

std::vector<int64_t> ChannelIds::make_pinned(int64_t count, const std::string& reason) {
  auto ids = make(count);
  pin_all(ids, reason);
  return ids;
}

int64_t ChannelIds::root(int64_t id) {
  while (parent_.at(id) != id) {
    parent_[id] = parent_[parent_[id]];  // path halving
    id = parent_[id];
  }
  return id;
}

void ChannelIds::unite(int64_t a, int64_t b) {
  a = root(a);
  b = root(b);
  if (a != b) {
    parent_[std::max(a, b)] = std::min(a, b);
  }
}

void ChannelIds::unite_all(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    unite(a[i], b[i]);
  }
}

void ChannelIds::pin(int64_t id, const std::string& reason) {
  if (pin_reason_.at(id).empty()) {
    pin_reason_[id] = reason;
  }
}

void ChannelIds::pin_all(const std::vector<int64_t>& ids, const std::string& reason) {
  for (auto id : ids) {
    pin(id, reason);
  }
}

void ChannelIds::mark_unobservable(int64_t id) {
  unobservable_.at(id) = true;
}

void ChannelIds::add_reads(int64_t id, const std::vector<int32_t>& sites) {
  auto& reads = read_sites_.at(id);
  reads.insert(reads.end(), sites.begin(), sites.end());
}

int32_t ZeroSources::intern(std::vector<int32_t> sites) {
  std::sort(sites.begin(), sites.end());
  sites.erase(std::unique(sites.begin(), sites.end()), sites.end());
  if (sites.empty()) {
    return 0;
  }
  auto [it, inserted] = index_.emplace(sites, static_cast<int32_t>(sets_.size()));
  if (inserted) {
    sets_.push_back(sites);
  }
  return it->second;
}

int32_t ZeroSources::both(int32_t a, int32_t b) {
  if (a == 0 || b == 0) {
    return 0;
  }
  if (a == b) {
    return a;
  }
  auto merged = sets_.at(a);
  merged.insert(merged.end(), sets_.at(b).begin(), sets_.at(b).end());
  return intern(merged);
}

}  // namespace demon::detail
